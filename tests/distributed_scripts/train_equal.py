"""Train a small model for 3 epochs; data-parallel when run under mpiexec with --distributed.

Usage: python train_equal.py OUT.npz DTYPE [--distributed] [--batch-size B] [--two-outputs]
                             [--fail-rank R [--fail-outside]]
Writes the final weights and the per-epoch logs to OUT.npz (rank 0 only); --fail-rank makes
rank R raise inside its 3rd training step (or, with --fail-outside, in a callback).
--two-outputs trains a functional model with two inputs and two outputs instead: masked
per-time-step tags (sparse cross-entropy) and a final-step value (MSE, loss weight 0.5)
from a shared LSTM, so the outputs' losses count different positions.
"""

import argparse
import sys

import numpy as np

import rnnkit
from rnnkit import layers

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("dtype")
p.add_argument("--distributed", action="store_true")
p.add_argument("--rows", type=int, default=40)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--fail-rank", type=int, default=None)
p.add_argument("--fail-outside", action="store_true")
p.add_argument("--two-outputs", action="store_true")
a = p.parse_args()

rank = 0
if a.distributed:
    import rnnkit.distributed as dist
    world = dist.init()
    rank = world.rank

rnnkit.set_floatx(a.dtype)
rnnkit.utils.set_random_seed(3)
data = np.random.default_rng(0)
x = data.normal(size=(a.rows, 7, 3)).astype(a.dtype)
lengths = data.integers(3, 8, size=a.rows)
for i, n in enumerate(lengths):       # ragged: post-padding masked by a Masking layer
    x[i, n:] = 0.0
y = data.integers(0, 4, size=(a.rows, 7))
sw = data.uniform(0.2, 2.0, size=a.rows)

if a.two_outputs:
    aux = data.normal(size=(a.rows, 2)).astype(a.dtype)
    seq, side = rnnkit.Input((7, 3)), rnnkit.Input((2,))
    h = layers.Masking(0.0)(seq)
    h = layers.LSTM(6, return_sequences=True,
                    kernel_regularizer=rnnkit.regularizers.L2(1e-3))(h)
    tags = layers.Dense(4, activation="softmax", name="tags")(h)
    summary = layers.Concatenate()([layers.GRU(5)(h), side])
    value = layers.Dense(2, name="value")(summary)
    model = rnnkit.Model([seq, side], [tags, value])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01),
                  loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  metrics=[["accuracy"], ["mae"]])
    x, y = [x, aux], [y, data.normal(size=(a.rows, 2)).astype(a.dtype)]
else:
    model = rnnkit.Sequential([
        layers.Masking(0.0),
        layers.LSTM(6, return_sequences=True, kernel_regularizer=rnnkit.regularizers.L2(1e-3)),
        layers.GRU(5, return_sequences=True),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class FailOnRank(rnnkit.losses.SparseCategoricalCrossentropy):
    """Raises inside the training step on one rank at the 3rd step."""
    calls = 0

    def gradient_logits(self, *args, **kw):
        FailOnRank.calls += 1
        if rank == a.fail_rank and FailOnRank.calls == 3:
            raise RuntimeError(f"simulated failure on rank {rank}")
        return super().gradient_logits(*args, **kw)


# callbacks that decide from the (reduced) logs; they must act alike on every rank
callbacks = [rnnkit.callbacks.EarlyStopping(monitor="val_loss", patience=2),
             rnnkit.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
             rnnkit.callbacks.ModelCheckpoint(a.out + ".ckpt.rnnkit")]
if a.fail_rank is not None and not a.fail_outside:
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01), loss=FailOnRank(),
                  metrics=["accuracy"])
if a.fail_rank is not None and a.fail_outside:
    def boom(batch, logs=None):
        if rank == a.fail_rank and batch == 2:
            raise RuntimeError(f"simulated failure on rank {rank} outside the step")
    callbacks.append(rnnkit.callbacks.LambdaCallback(on_train_batch_begin=boom))

hist = model.fit(x, y, sample_weight=sw, batch_size=a.batch_size, epochs=3, verbose=0,
                 validation_split=0.25, callbacks=callbacks)
evaluated = model.evaluate(x, y, sample_weight=sw, batch_size=a.batch_size, verbose=0)
if rank == 0:
    np.savez(a.out, *model.get_weights(), evaluate=evaluated,
             **{f"history_{k}": v for k, v in hist.history.items()})
print(f"done rank {rank} epochs {len(hist.epoch)} lr {model.optimizer.learning_rate:.6g}",
      file=sys.stderr)
