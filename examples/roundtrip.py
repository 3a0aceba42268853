"""Round-trip an rnnkit model to PyTorch, Keras and ONNX Runtime and compare predictions.

Usage:
    python examples/roundtrip.py                # train a small model on Japanese Vowels first
    python examples/roundtrip.py model.rnnkit   # use a saved model (e.g. from `rnnkit train`)

For each target the script prints the largest absolute difference between its predictions and
rnnkit's on the Japanese Vowels test set, given to rnnkit as a ragged list of sequences (7 to
29 steps) and to the others as the end-padded batch plus its mask (PyTorch, Keras) or its
lengths (ONNX ``sequence_lens``). "Identical" means within 1e-5. The exit status is 1 if any
target differs by more.
"""

import os
import sys
import tempfile
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import layers as L  # noqa: E402
from rnnkit.data import load_japanese_vowels, pad_sequences  # noqa: E402
from rnnkit.interop import export_onnx, from_keras, to_keras, to_torch  # noqa: E402

TOL = 1e-5


def train_small_model(x, y, x_test, y_test):
    """A masked bidirectional LSTM + GRU classifier of the 9 speakers (a few seconds)."""
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([
        L.Input((None, 12)), L.Masking(),
        L.Bidirectional(L.LSTM(16, return_sequences=True)),
        L.GRU(16), L.Dropout(0.2), L.Dense(9, activation="softmax"),
    ])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"trained on {len(x)} utterances: test loss {loss:.3f}, accuracy {acc:.3f}")
    return model


def load(path):
    """An rnnkit Sequential from a saved file (a task pipeline's inner model is used too)."""
    obj = rnnkit.load_model(path)
    if isinstance(obj, rnnkit.Sequential):
        return obj
    for attr in ("model", "model_"):
        inner = getattr(obj, attr, None)
        if isinstance(inner, rnnkit.Sequential):
            return inner
    sys.exit(f"{path}: expected an rnnkit Sequential model file, got {type(obj).__name__}.")


def ragged_inputs_for(model, x_test):
    """A list of sequences of different lengths: Japanese Vowels test utterances if the model
    takes 12 features, else random sequences of the model's input shape."""
    shape = (model._input_layer.shape if model._input_layer is not None
             else tuple(model.layers[0].input_shape[1:]))
    rng = np.random.default_rng(0)
    if shape[0] is None and len(shape) == 2 and shape[1] == 12:
        return [np.asarray(s, np.float32) for s in x_test]
    lengths = rng.integers(1, (shape[0] or 20) + 1, size=32)
    lengths[0] = shape[0] or 20
    if isinstance(model.layers[0], L.Embedding):
        return [rng.integers(1, model.layers[0].input_dim, size=n) for n in lengths]
    return [rng.normal(size=(n,) + tuple(shape[1:])).astype(np.float32) for n in lengths]


def main(argv):
    x_train, y_train, x_test, y_test = load_japanese_vowels()
    if len(argv) > 1:
        model = load(argv[1])
        print(f"loaded {argv[1]}")
    else:
        x = pad_sequences(x_train, dtype="float32", padding="post")
        xt = pad_sequences(x_test, maxlen=x.shape[1], dtype="float32", padding="post",
                           truncating="post")
        model = train_small_model(x, y_train, xt, y_test)
    # rnnkit pads a ragged list at the end and masks the padding; the other frameworks get
    # the same padded array plus the mask (torch, Keras) or the lengths (ONNX).
    seqs = ragged_inputs_for(model, x_test)
    want = model.predict(seqs)
    x, mask = rnnkit.utils.pad_ragged(seqs)
    lengths = mask.sum(axis=1).astype(np.int32)
    diffs = {}
    with tempfile.TemporaryDirectory() as tmp:
        import torch
        module = to_torch(model)
        with torch.no_grad():
            diffs["PyTorch (to_torch)"] = module(torch.tensor(x), torch.tensor(mask)).numpy()

        import keras
        path = os.path.join(tmp, "model.keras")
        to_keras(model, path)
        kmodel = keras.saving.load_model(path)
        with torch.no_grad(), warnings.catch_warnings():
            # Keras warns that the Sequential wrapper "destroys" the mask, but it hands it to
            # its first layer, which is all that is needed here.
            warnings.simplefilter("ignore", UserWarning)
            diffs["Keras (load_model)"] = keras.ops.convert_to_numpy(
                kmodel(torch.tensor(x), mask=torch.tensor(mask)))
        diffs["rnnkit (from_keras)"] = from_keras(path).predict(seqs)

        import onnxruntime as ort
        path = os.path.join(tmp, "model.onnx")
        export_onnx(model, path, sequence_lens_input=True)
        diffs["ONNX Runtime"] = ort.InferenceSession(path).run(
            None, {"input": x, "sequence_lens": lengths})[0]

    print(f"predictions on {len(seqs)} sequences of {lengths.min()} to {lengths.max()} steps, "
          f"output shape {want.shape}:")
    ok = True
    for name, got in diffs.items():
        err = float(np.max(np.abs(np.asarray(got, np.float64) - want)))
        same = err <= TOL
        ok &= same
        print(f"  {name:<22} max abs diff {err:.2e}  {'identical' if same else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
