"""``rnnkit generate MODEL``: sample text from a character language model, streamed."""

from __future__ import annotations

import argparse
import sys

from ._common import CLIError, Output, load_pipeline, number_arg


def register(subparsers):
    """Add the ``generate`` subcommand."""
    p = subparsers.add_parser(
        "generate", help="generate text with a saved character language model",
        description="Stream characters from a model trained with `rnnkit train --task lm`: "
        "the prime text is read once, then each generated character is fed back with the "
        "recurrent state carried from step to step.",
        epilog="examples:\n  rnnkit generate tempest.rnnkit --length 500 --temperature 0.7\n"
        "  rnnkit generate tempest.rnnkit --prime 'PROSPERO:' --top-k 5 --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="language-model file from `rnnkit train`")
    p.add_argument("--length", type=number_arg("length"), default=300, metavar="N",
                   help="characters to generate (default: 300)")
    p.add_argument("--temperature", type=number_arg("temperature"), default=1.0, metavar="T",
                   help="sampling temperature: < 1 safer, > 1 wilder, 0 greedy (default: 1.0)")
    p.add_argument("--top-k", type=number_arg("top_k"), default=None, metavar="K",
                   help="sample only among the K most likely characters (default: all)")
    p.add_argument("--seed", type=number_arg("seed"), default=None, metavar="S",
                   help="random seed for reproducible samples (default: unseeded)")
    p.add_argument("--prime", default=None, metavar="TEXT",
                   help="text to start from (default: a newline)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line {\"text\": ..., ...} instead of streaming")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``rnnkit generate``; returns the exit status."""
    pipe = load_pipeline(args.model)
    if pipe.task != "lm":
        raise CLIError(f"{args.model} is a {pipe.task!r} model; generate needs a language "
                       "model (rnnkit train --task lm).")
    chars = pipe.stream(args.length, temperature=args.temperature, top_k=args.top_k,
                        seed=args.seed, prime=args.prime)
    if args.json:
        text = "".join(chars)
        Output(json_mode=True).result({"model": args.model, "prime": args.prime or "",
                                       "text": text, "length": len(text),
                                       "temperature": args.temperature, "top_k": args.top_k,
                                       "seed": args.seed})
        return 0
    if args.prime:
        sys.stdout.write(args.prime)
    for ch in chars:
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
