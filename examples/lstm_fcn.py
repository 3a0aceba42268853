"""LSTM-FCN time-series classification (Karim et al., 2017) with the functional API.

Two branches read the same series and are joined before the classifier:

    x ──> LSTM(8) ──> Dropout ─────────────────────────────────────────────┐
    │                                                                       ├─> Concatenate ─> Dense(softmax)
    └──> [Conv1D ─> BatchNormalization ─> ReLU] × 3 ─> GlobalAveragePooling1D ┘

The paper's filters are 128, 256, 128 with kernels 8, 5, 3; ``--filters`` scales them down
for a quick run. Data: the built-in Japanese Vowels set (9 speakers, 12 LPC coefficients,
7–29 frames), standardised and zero-padded at the end to 29 frames; the padded steps are
masked for the LSTM (Masking), and the convolutional branch sees them as zeros, as in the
paper's zero-padded UCR/UEA data.

Run:  python examples/lstm_fcn.py [--epochs 30] [--filters 128,256,128]
"""

import argparse

import rnnkit
from rnnkit import layers as L
from rnnkit.data import StandardScaler, load_japanese_vowels, pad_sequences


def build(timesteps, features, classes, filters=(128, 256, 128), lstm_units=8, dropout=0.8):
    """The LSTM-FCN graph: an LSTM branch and a fully convolutional branch, concatenated."""
    x = rnnkit.Input(shape=(timesteps, features), name="series")
    h = L.LSTM(lstm_units)(L.Masking()(x))
    h = L.Dropout(dropout)(h)
    c = x
    for f, k in zip(filters, (8, 5, 3)):
        c = L.Conv1D(f, k, padding="same", kernel_initializer="he_uniform")(c)
        c = L.BatchNormalization()(c)
        c = L.Activation("relu")(c)
    c = L.GlobalAveragePooling1D()(c)
    y = L.Dense(classes, activation="softmax")(L.Concatenate()([h, c]))
    return rnnkit.Model(x, y, name="lstm_fcn")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--filters", default="128,256,128")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rnnkit.utils.set_random_seed(args.seed)

    x_train, y_train, x_test, y_test = load_japanese_vowels()
    scaler = StandardScaler().fit(x_train)
    x_train = pad_sequences(scaler.transform(x_train), padding="post", dtype="float32")
    x_test = pad_sequences(scaler.transform(x_test), maxlen=x_train.shape[1], padding="post",
                           dtype="float32")
    y_train = rnnkit.utils.to_categorical(y_train, 9)
    y_test = rnnkit.utils.to_categorical(y_test, 9)

    model = build(x_train.shape[1], x_train.shape[2], 9,
                  filters=tuple(int(f) for f in args.filters.split(",")))
    model.summary()
    model.compile(loss="categorical_crossentropy", optimizer=rnnkit.optimizers.Adam(1e-3),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
