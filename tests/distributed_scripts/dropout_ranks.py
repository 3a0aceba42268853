"""Dropout (input, recurrent, Dropout layer) in a data-parallel run: each rank draws its own
masks, yet every rank ends with the same weights; train_on_batch / test_on_batch return the
same reduced numbers on every rank. Prints one line per rank: ``RANK SAME_WEIGHTS RESULT``."""

import sys

import numpy as np

import rnnkit
import rnnkit.distributed as dist

world = dist.init()
rnnkit.utils.set_random_seed(1)
x = np.random.default_rng(0).normal(size=(30, 6, 3)).astype("float32")
y = np.random.default_rng(1).normal(size=(30, 1)).astype("float32")
m = rnnkit.Sequential([rnnkit.layers.LSTM(5, dropout=0.3, recurrent_dropout=0.2),
                       rnnkit.layers.Dropout(0.2), rnnkit.layers.Dense(1)])
m.compile(optimizer="adam", loss="mse", metrics=["mae"])
m.fit(x, y, batch_size=8, epochs=2, verbose=0)
trained = m.train_on_batch(x[:5], y[:5])
tested = m.test_on_batch(x[:5], y[:5])
flat = np.concatenate([a.ravel() for a in m.get_weights()])
same = all(np.array_equal(flat, other) for other in world.comm.allgather(flat))
print(f"RESULT {world.rank} {same} {trained} {tested}", file=sys.stderr, flush=True)
