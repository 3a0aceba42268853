"""``rnnkit info MODEL``: what a saved model is, how it was trained and what it expects.
``rnnkit info --kernels``: which compiled kernel paths are in use, compiled and cached."""

from __future__ import annotations

import argparse
import json
import os

from ._common import CLIError, Output, fmt, load_model_file


def register(subparsers):
    """Add the ``info`` subcommand."""
    p = subparsers.add_parser(
        "info", help="show a saved model's layers, parameters, metadata and preprocessing",
        description="Describe a model file: rnnkit version and creation time, the task, the "
        "layer table with parameter counts, the loss and optimizer, the preprocessing saved "
        "with it (scaler, labels, vocabulary, forecasting transforms) and the training "
        "settings and test metrics recorded by `rnnkit train`. With --kernels: which "
        "compiled kernel path each cell takes, where numba's compiled-code cache is and "
        "which kernels it already holds.",
        epilog="examples:\n  rnnkit info rnnkit_model.rnnkit\n  rnnkit info --kernels",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", nargs="?", help="model file written by rnnkit")
    p.add_argument("--kernels", action="store_true",
                   help="describe the compiled kernels (paths in use, cache directory, which "
                        "kernels are compiled and cached) instead of / before a model")
    p.add_argument("--json", action="store_true",
                   help="print everything as one JSON line instead")
    p.set_defaults(func=run)
    return p


def file_metadata(path):
    """The string metadata of a model file (rnnkit_version, created, ...), config excluded."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = dict(f.metadata() or {})
    return {k: v for k, v in meta.items() if k in ("format", "format_version",
                                                   "rnnkit_version", "created", "compile",
                                                   "training")}


def preprocessing_summary(pre):
    """Short human-readable lines describing ``model.preprocessing``."""
    lines = []
    task = pre.get("task")
    if not pre:
        return ["(none recorded: the model was not saved by an rnnkit.tasks pipeline)"]
    lines.append(f"task: {task}")
    if pre.get("scaler"):
        n = len(pre["scaler"].get("mean", []))
        lines.append(f"input standardisation: {n} channel(s), statistics from training data")
    if "classes" in pre:
        cl = pre["classes"]
        lines.append(f"classes ({len(cl)}): {', '.join(str(c) for c in cl[:20])}"
                     + (" ..." if len(cl) > 20 else ""))
    if "y_scaler" in pre:
        lines.append(f"targets: {pre.get('n_outputs')} value(s), standardised in training")
    if task == "forecast":
        lines.append(f"horizon {pre['horizon']}, window {pre['window']}, strategy "
                     f"{pre['strategy']}, channels {pre['n_channels']} (target "
                     f"{pre['target_column']})")
        lines.append(f"log channels {pre['log_channels']}, differencing lags {pre['lags']}, "
                     f"seasonal period {pre['seasonal_period']}, ensemble of "
                     f"{1 + len(pre.get('ensemble_weights') or [])} network(s)")
    if "vocab" in pre:
        toks = pre["vocab"].get("tokens") or []
        lines.append(f"character vocabulary: {len(toks)} ids (incl. <pad>, <unk>), sequence "
                     f"length {pre.get('seq_len')}")
        if pre.get("baseline_unigram") is not None:
            lines.append(f"unigram baseline on validation text: "
                         f"{fmt(pre['baseline_unigram'])} nats/char")
    info = pre.get("info") or {}
    if info.get("data"):
        lines.append(f"trained on: {info['data']}; tested on: {info.get('test')}")
    if info.get("test_metrics"):
        lines.append("test metrics: " + ", ".join(f"{k} {fmt(v)}"
                                                  for k, v in info["test_metrics"].items()))
    if info.get("train_settings"):
        s = info["train_settings"]
        keep = {k: v for k, v in s.items() if v is not None and v is not False}
        lines.append("train settings: " + ", ".join(f"{k}={v}" for k, v in keep.items()))
    return lines


def run(args) -> int:
    """Run ``rnnkit info``; returns the exit status."""
    if args.kernels:
        from ..kernels.status import format_status, kernel_status
        st = kernel_status()
        if args.json:
            Output(json_mode=True).result({"kernels": st})
        else:
            print("\n".join(format_status(st)))
        if args.model is None:
            return 0
        print()
    elif args.model is None:
        raise CLIError("rnnkit info needs a MODEL file to describe (e.g. `rnnkit info "
                       "rnnkit_model.rnnkit`) or --kernels to describe the compiled kernels; "
                       "got neither.")
    model = load_model_file(args.model)
    meta = file_metadata(args.model)
    pre = model.preprocessing or {}
    compile_rec = json.loads(meta.pop("compile", "null") or "null")
    training = json.loads(meta.pop("training", "null") or "null") or {}
    if args.json:
        Output(json_mode=True).result({
            "model": args.model, "metadata": meta, "task": pre.get("task"),
            "params": model.count_params(), "config": model.get_config(),
            "compile": compile_rec, "epochs_done": training.get("epochs_done"),
            "preprocessing": {k: v for k, v in pre.items()
                              if k not in ("ensemble_weights", "unigram_counts")}})
        return 0
    print(f"file: {args.model} ({os.path.getsize(args.model):,} bytes)")
    print(f"rnnkit version: {meta.get('rnnkit_version')}, file format "
          f"{meta.get('format_version')}, created {meta.get('created')}")
    print()
    model.summary()
    if compile_rec:
        opt = compile_rec.get("optimizer", {})
        print(f"loss: {compile_rec.get('loss', {}).get('class_name', compile_rec.get('loss'))}"
              f"; optimizer: {opt.get('class_name', opt)} "
              f"{json.dumps(opt.get('config', {}))}; metrics: {compile_rec.get('metrics')}")
    if training.get("epochs_done") is not None:
        print(f"epochs trained: {training['epochs_done']}")
    print()
    print("preprocessing:")
    for line in preprocessing_summary(pre):
        print(f"  {line}")
    return 0
