"""``rnnkit diagnose MODEL --data ... --out ...``: gradient flow of a saved model.

Loads the model (:func:`rnnkit.load_model`), measures :func:`rnnkit.diagnostics.gradient_flow`
on a batch of data, writes the gradient-flow figure (a PNG, or an HTML page with PNGs) and
prints the verdict.
"""

from __future__ import annotations

import html
import json
import os
import sys

import numpy as np

DATA_HELP = ("data to measure on: 'builtin:adding' (the adding problem, length --T), "
             "'builtin:japanese_vowels' (the test split), a labelled .ts file, or PATH.npz "
             "holding arrays 'x' and 'y'. A model saved by `rnnkit train` gets its own "
             "preprocessing (saved scaler, label encoding) applied to the raw data first")


def register(subparsers):
    """Add the ``diagnose`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "diagnose", help="measure vanishing/exploding gradients of a saved model",
        description="Measure how the loss gradient flows back through time in every recurrent "
                    "layer of a saved model, write a figure and print the verdict "
                    "('vanishing', 'exploding' or 'healthy').")
    p.add_argument("model", metavar="MODEL", help="model file written by model.save(...)")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, metavar="PNG_OR_DIR",
                   help="output: a .png file, a .html page (PNGs are written next to it), or a "
                        "folder (gradient_flow.png and jacobian_spectrum.png are written in it)")
    p.add_argument("--samples", type=int, default=128,
                   help="number of sequences used for the measurement (default 128)")
    p.add_argument("--T", type=int, default=None,
                   help="sequence length for builtin:adding (default: the model's input length, "
                        "else 100)")
    p.add_argument("--loss", default=None,
                   help="loss name when the model file has no compile record (default: the "
                        "saved loss, else 'mse')")
    p.add_argument("--seed", type=int, default=0, help="seed for builtin:adding (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print the full result as one JSON line on stdout instead of the table")
    p.set_defaults(func=run)
    return p


def _fail(msg, status=1):
    """Print the error the way the ``rnnkit`` command does; 1 = bad file or value, 2 = usage."""
    print(f"rnnkit diagnose: error: {msg}", file=sys.stderr)
    return status


def _raw_data(spec, model, samples, T, seed):
    """Raw ``(x, y)`` for ``--data`` (at most ``samples`` sequences); raises ValueError."""
    from rnnkit import data as _data

    if spec == "builtin:adding":
        if T is None:
            shape = getattr(model.layers[0], "input_shape", None)
            T = shape[1] if shape and len(shape) == 3 and shape[1] else 100
        return _data.adding_problem(samples, T, seed=seed)
    if spec == "builtin:japanese_vowels":
        _, _, x, y = _data.load_japanese_vowels()
        return x[:samples], np.asarray(y)[:samples]
    if spec.startswith("builtin:"):
        raise ValueError(f"unknown built-in dataset {spec!r}; expected 'builtin:adding' or "
                         "'builtin:japanese_vowels'.")
    if not spec.endswith((".npz", ".ts")):
        raise ValueError(f"--data must be 'builtin:adding', 'builtin:japanese_vowels', a .ts "
                         f"or a .npz file, got {spec!r}.")
    if not os.path.exists(spec):
        raise ValueError(f"data file {spec!r} does not exist.")
    if spec.endswith(".ts"):
        x, y = _data.load_ts(spec)
        if y is None:
            raise ValueError(f"{spec} has no labels (@classLabel / @targetLabel); the gradient "
                             "of the loss needs targets.")
        return x[:samples], np.asarray(y)[:samples]
    with np.load(spec, allow_pickle=False) as f:
        keys = list(f.keys())
        if "x" not in keys or "y" not in keys:
            raise ValueError(f"{spec} must hold arrays named 'x' and 'y' (save them with "
                             f"np.savez(path, x=x, y=y)); it holds {keys}.")
        return f["x"][:samples], f["y"][:samples]


def _load_data(spec, model, samples, T, seed):
    """``(x, y, preprocessing note)`` as the model sees them; raises ValueError.

    A model saved by a task pipeline (``rnnkit train``, ``rnnkit.tasks``) gets its own saved
    preprocessing — channel scaler and label encoding — so the gradients measured are those
    of the trained model on data it understands.
    """
    from rnnkit.tasks import pipeline_from_model, task_of
    from rnnkit.utils import to_categorical

    x, y = _raw_data(spec, model, samples, T, seed)
    if task_of(model) in ("classify", "regress"):
        pipe = pipeline_from_model(model)
        x, y = pipe.transform(x, y)
        return x, y, "the model's saved preprocessing applied (channel scaler, label encoding)"
    if model.loss is not None and model.loss.name == "categorical_crossentropy" and \
            np.ndim(y) == 1:
        units = model.layers[-1].units if hasattr(model.layers[-1], "units") else None
        y = to_categorical(np.asarray(y, np.int64), units)
    return x, y, "raw data (the model file records no preprocessing)"


def _input_of(model, index, x):
    """The input (and mask) that ``model.layers[index]`` receives for ``x``."""
    x, mask = model._prepare_x(x)
    for layer in model.layers[:index]:
        out = layer.forward(x, training=False, mask=mask)
        mask = layer.compute_mask(x, mask)
        x = out
    return x, mask


def run(args) -> int:
    """Run ``rnnkit diagnose``; returns the exit code (0 ok, 1 bad file or data, 2 usage)."""
    import rnnkit
    from rnnkit import diagnostics as dg
    from rnnkit.diagnostics._replay import recurrent_layers
    from rnnkit.kernels.threads import parallel

    if args.samples < 1:
        return _fail(f"--samples must be a positive integer, got {args.samples}.", 2)
    if args.T is not None and args.T < 2:
        return _fail(f"--T must be an integer >= 2, got {args.T}.", 2)
    if not os.path.exists(args.model):
        return _fail(f"model file {args.model!r} does not exist.")
    try:
        model = rnnkit.load_model(args.model)
    except (rnnkit.RnnkitFileError, OSError) as e:
        return _fail(f"cannot load {args.model!r}: {e}")
    loss = args.loss if (args.loss or model.loss is None) else None
    if loss is None and model.loss is None:
        loss = "mse"
    try:
        x, y, note = _load_data(args.data, model, args.samples, args.T, args.seed)
        # Small products: one BLAS thread each is many times faster than two fighting over
        # a busy 2-core machine (42 s -> a few seconds on Japanese Vowels).
        with parallel():
            result = dg.gradient_flow(model, x, y, loss=loss)
            idx, name, layer = recurrent_layers(model)[0]
            xin, mask = _input_of(model, idx, x)
            spectrum = dg.jacobian_spectrum(layer, xin, 0, mask)
    except (ValueError, TypeError) as e:
        return _fail(str(e))

    out = args.out
    label = os.path.basename(args.model)
    if out.lower().endswith(".png"):
        dg.plot_gradient_flow({label: result}, out)
        written = [out]
    else:
        if out.lower().endswith(".html"):
            folder = os.path.dirname(os.path.abspath(out))
            stem = os.path.splitext(os.path.basename(out))[0]
            flow_png = os.path.join(folder, f"{stem}_gradient_flow.png")
            jac_png = os.path.join(folder, f"{stem}_jacobian_spectrum.png")
        else:
            folder = out
            flow_png = os.path.join(folder, "gradient_flow.png")
            jac_png = os.path.join(folder, "jacobian_spectrum.png")
        os.makedirs(folder, exist_ok=True)
        dg.plot_gradient_flow({label: result}, flow_png)
        dg.plot_jacobian_spectrum({f"{label} / {name}": spectrum}, jac_png)
        written = [flow_png, jac_png]
        if out.lower().endswith(".html"):
            _write_html(out, label, args.data, result, spectrum, flow_png, jac_png)
            written.append(out)
    if args.json:  # stdout holds only the JSON record; human lines go to stderr
        record = {"data": args.data, "preprocessing": note, **json.loads(result.to_json())}
        print(json.dumps(record))
        print("Wrote " + ", ".join(written), file=sys.stderr)
    else:
        print(f"Data: {args.data}, {len(x)} sequence(s); {note}.")
        result.summary()
        spectrum.summary()
        print("Wrote " + ", ".join(written))
    return 0


def _write_html(path, label, data, result, spectrum, flow_png, jac_png):
    from rnnkit.saving import atomic_write_bytes

    text = result.summary(print_fn=None) + "\n\n" + spectrum.summary(print_fn=None)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>rnnkit diagnose: {html.escape(label)}</title></head>
<body style="font-family: sans-serif; max-width: 60em">
<h1>Gradient flow of {html.escape(label)}</h1>
<p>Data: {html.escape(data)}. Verdict: <b>{html.escape(result.verdict)}</b>.
{html.escape(result.reason)}</p>
<img src="{html.escape(os.path.basename(flow_png))}" alt="gradient norm vs steps back">
<img src="{html.escape(os.path.basename(jac_png))}" alt="Jacobian product spectral norm">
<pre>{html.escape(text)}</pre>
</body></html>
"""
    atomic_write_bytes(path, page.encode("utf-8"))
