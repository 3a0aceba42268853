"""An encoder–decoder with attention learns to reverse sequences of digits.

    encoder:  ids ─> Embedding ─> LSTM(return_sequences, return_state) ─> states h_1..h_T, (h, c)
    decoder:  [GO, y_1, .., y_{T-1}] ─> Embedding ─> LSTM(initial_state=(h, c)) ─> s_1..s_T
    attention: context_t = Attention()([s, h])   (Luong: softmax(s_t · h_j) over the input steps)
    output:   Dense(softmax)(Concatenate([s_t, context_t]))  ─> y_t

Trained with teacher forcing (the decoder reads the true previous digit), evaluated by greedy
decoding (it reads its own previous prediction) on sequences it has not seen. Reversal needs
step t of the output to look at step T-1-t of the input: the attention weights learn that
anti-diagonal, which ``--show-attention`` prints.

Run:  python examples/seq2seq_attention.py [--epochs 25] [--length 6]
"""

import argparse

import numpy as np

import rnnkit
from rnnkit import layers as L


def make_data(n, length, digits, rng):
    """Random digit sequences (ids 1..digits) and their reversals; id digits+1 is GO."""
    x = rng.integers(1, digits + 1, size=(n, length))
    return x, x[:, ::-1].copy()


def build(length, digits, units=48, embed=16):
    """The teacher-forced training graph (inputs: source ids, decoder input ids)."""
    V = digits + 2                                   # 0 unused, 1..digits, GO
    src = rnnkit.Input((length,), dtype="int32", name="source")
    dec = rnnkit.Input((length,), dtype="int32", name="decoder_input")
    enc_seq, h, c = L.LSTM(units, return_sequences=True, return_state=True,
                           name="encoder")(L.Embedding(V, embed)(src))
    dec_seq = L.LSTM(units, return_sequences=True, name="decoder")(
        L.Embedding(V, embed)(dec), initial_state=[h, c])
    context = L.Attention(name="attention")([dec_seq, enc_seq])
    y = L.Dense(V, activation="softmax", name="next_digit")(L.Concatenate()([dec_seq, context]))
    return rnnkit.Model([src, dec], y, name="seq2seq_attention")


def greedy_decode(model, x, go):
    """Feed the model its own predictions one step at a time; returns (N, length) ids."""
    n, length = x.shape
    dec = np.full((n, length), go)
    for t in range(length):
        p = model.predict([x, dec], verbose=0, batch_size=256)
        if t + 1 < length:
            dec[:, t + 1] = p[:, t].argmax(-1)
    return p.argmax(-1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--length", type=int, default=6)
    p.add_argument("--digits", type=int, default=8)
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show-attention", action="store_true")
    args = p.parse_args(argv)
    rnnkit.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    go = args.digits + 1

    x, y = make_data(args.train, args.length, args.digits, rng)
    x_test, y_test = make_data(500, args.length, args.digits, rng)
    teacher = np.concatenate([np.full((len(y), 1), go), y[:, :-1]], axis=1)

    model = build(args.length, args.digits)
    model.summary()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=rnnkit.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    model.fit([x, teacher], y, epochs=args.epochs, batch_size=64, verbose=2)

    pred = greedy_decode(model, x_test, go)
    token_acc = float((pred == y_test).mean())
    seq_acc = float((pred == y_test).all(axis=1).mean())
    print(f"greedy decoding on unseen sequences: token accuracy {token_acc:.4f} - "
          f"sequence accuracy {seq_acc:.4f}")
    if args.show_attention:
        # the attention layer has no weights (use_scale=False): a fresh one on the same
        # encoder and decoder states gives the trained model's attention weights
        states = rnnkit.Model(model.inputs, [model.get_layer("decoder").output,
                                             model.get_layer("encoder").output[0]])
        dec_in = np.concatenate([[go], y_test[0, :-1]])[None]
        s, h = states.predict([x_test[:1], dec_in], verbose=0)
        _, w = L.Attention()([s, h], return_attention_scores=True)
        print(f"input {x_test[0]} -> output {pred[0]}; attention weights (rows: output steps, "
              "columns: input steps):")
        print(np.array2string(w[0], precision=2, suppress_small=True))
    return token_acc, seq_acc


if __name__ == "__main__":
    main()
