"""``python -m rnnkit`` runs the ``rnnkit`` command."""

from .cli import main

raise SystemExit(main())
