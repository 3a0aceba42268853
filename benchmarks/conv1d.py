"""Conv1D forward + backward time: rnnkit (im2col, one BLAS product) against PyTorch.

The LSTM-FCN convolution stack (filters 128, 256, 128; kernels 8, 5, 3; padding 'same') on a
batch of long series. Run:  python benchmarks/conv1d.py [--batch 32] [--steps 1000]
"""

import argparse
import time

import numpy as np


def _best(f, repeat):
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--features", type=int, default=12)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    import torch

    from rnnkit import layers as L
    rng = np.random.default_rng(0)
    c_in = a.features
    print(f"batch {a.batch}, {a.steps} steps; forward+backward, best of {a.repeat}")
    for f, k in ((128, 8), (256, 5), (128, 3)):
        x = rng.standard_normal((a.batch, a.steps, c_in)).astype(np.float32)
        conv = L.Conv1D(f, k, padding="same")
        y = conv(x)
        dy = np.ones_like(y)

        def ours(conv=conv, x=x, dy=dy):
            conv.forward(x, training=True)
            conv.backward(dy)

        tconv = torch.nn.Conv1d(c_in, f, k, padding="same")
        xt = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
        dyt = torch.ones(a.batch, f, a.steps)

        def theirs(tconv=tconv, xt=xt, dyt=dyt):
            tconv.zero_grad()
            xt.grad = None
            tconv(xt).backward(dyt)

        r, t = _best(ours, a.repeat), _best(theirs, a.repeat)
        print(f"Conv1D({c_in}->{f}, k={k}): rnnkit {r * 1e3:7.1f} ms   torch {t * 1e3:7.1f} ms   "
              f"ratio {r / t:4.2f}")
        c_in = f


if __name__ == "__main__":
    main()
