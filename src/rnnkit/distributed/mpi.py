"""Synchronous data-parallel training over MPI (``pip install "rnnkit[mpi]"``).

Run an unchanged training script on N processes::

    mpiexec -n 4 python -m mpi4py train.py      # train.py calls rnnkit.distributed.init()

After :func:`init`, ``fit`` / ``evaluate`` / ``train_on_batch`` / ``test_on_batch`` are
*collective*: every rank calls them with the same arguments (the same data, or data of the
same size and order). Every rank walks the same global batches (one shared shuffle) and
computes on its own rows of each batch; one allreduce per step combines the gradients::

    rank r:  g_r = dL_r/dθ     L_r = sum(l·w over its rows) / n_r     (n_r: its positions)
    all:     g   = Σ_r n_r·g_r / Σ_r n_r  =  dL/dθ of the whole global batch

so uneven shards, empty shards, masks and sample weights give exactly the single-process
gradient (up to float rounding). The regularisation gradient, present on every rank, comes out
once because ``Σ_r n_r = n``. The gradients, the loss and the metric increments travel in ONE
flat buffer with ONE ``Allreduce`` per step; then every rank applies the same optimizer step.

A failure inside a step on any rank (an exception in forward, loss or backward) is carried by
the same allreduce: every rank then raises :class:`DistributedError` naming the rank and the
error. Any other uncaught exception aborts the whole job (``MPI_Abort``) after printing a
message, so no rank waits forever in a collective call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import weakref

import numpy as np

from .. import _backend

_WORLD = None     # the GradientReducer made by init(), or None


class DistributedError(RuntimeError):
    """A rank failed during a collective training step; raised on every rank."""


def current():
    """The active :class:`GradientReducer` (after :func:`init`), or None."""
    return _WORLD


def is_root() -> bool:
    """True on rank 0, or when no data-parallel run is active (a single process)."""
    return _WORLD is None or _WORLD.rank == 0


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def init(comm=None, threads="auto", quiet_workers=True):
    """Start data-parallel training: call once, early, in a script run under ``mpiexec``.

    It imports mpi4py, broadcasts rank 0's random state (so all ranks shuffle alike), sets the
    threads per rank so the ranks sharing a node do not over-subscribe its cores, installs an
    exception hook that aborts the whole job with a clear message, and silences ``print`` on
    ranks other than 0. From then on every model's ``fit`` trains data-parallel.

    Args:
        comm: an ``mpi4py.MPI.Comm`` (default ``COMM_WORLD``).
        threads: threads per rank; 'auto' = the node's cores // the ranks on that node
            (at least 1). None leaves the thread count alone.
        quiet_workers: redirect ``sys.stdout`` of ranks other than 0 to /dev/null (progress
            bars are already off there).

    Returns:
        The :class:`GradientReducer` (``.rank``, ``.size``, ``.is_root``).

    Example:
        >>> import rnnkit.distributed as dist      # doctest: +SKIP
        >>> world = dist.init()                    # doctest: +SKIP
        >>> model.fit(x, y, batch_size=64)         # doctest: +SKIP
    """
    global _WORLD
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("rnnkit.distributed.init needs mpi4py: pip install \"rnnkit[mpi]\" "
                          "(mpi4py and the mpich wheel, which provides mpiexec).") from None
    comm = MPI.COMM_WORLD if comm is None else comm
    reducer = GradientReducer(comm)
    state = comm.bcast(_backend.get_rng_state() if reducer.rank == 0 else None, root=0)
    _backend.set_rng_state(state)
    if threads is not None:
        reducer.set_threads(threads)
    _install_abort_hook(reducer)
    if quiet_workers and reducer.rank != 0 and not isinstance(sys.stdout, _Null):
        sys.stdout = _Null()
    _WORLD = reducer
    return reducer


def shutdown():
    """End data-parallel mode in this process (models train alone again). MPI stays up."""
    global _WORLD
    _WORLD = None
    if hasattr(sys.excepthook, "previous"):
        sys.excepthook = sys.excepthook.previous
    if isinstance(sys.stdout, _Null):
        sys.stdout = sys.__stdout__


class _Null:
    """A text stream that drops everything (stdout of ranks other than 0)."""

    def write(self, s):
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


def _install_abort_hook(reducer):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        print(f"rnnkit.distributed: rank {reducer.rank} of {reducer.size} failed "
              f"({kind.__name__}: {value}); aborting all ranks.", file=sys.stderr, flush=True)
        reducer.abort(1, together=issubclass(kind, DistributedError))

    hook.previous = previous
    sys.excepthook = hook


class GradientReducer:
    """Everything a model needs to train data-parallel on an MPI communicator.

    The model calls :meth:`train_step` (from ``Model._train_step``) and :meth:`evaluate` (from
    ``Model._evaluate_adapter``) when :func:`current` returns a reducer; it needs nothing else.

    Args:
        comm: an ``mpi4py.MPI.Comm``.

    Attributes:
        rank, size: this process's rank and the number of ranks.
        is_root: ``rank == 0`` (the rank that prints and writes files).
        last_allreduce_seconds: wall time of the last step's allreduce (benchmarks).
    """

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        # failure handling meets on its own communicator: a rank that failed outside a step
        # must not match its barrier with the allreduce the other ranks wait in
        self._failure_comm = comm.Dup() if hasattr(comm, "Dup") else comm
        self.is_root = self.rank == 0
        self.last_allreduce_seconds = 0.0
        self._synced = weakref.WeakSet()   # models whose weights came from rank 0
        self._rng = None                   # this rank's dropout stream (see _local_random)

    # -- set-up ----------------------------------------------------------------------------
    def set_threads(self, threads="auto"):
        """Set this rank's thread count (rnnkit's kernels and OpenBLAS).

        Args:
            threads: a positive int, or 'auto': the cores of this node // the ranks on this
                node (at least 1), so the ranks sharing a node do not over-subscribe it.
        """
        from ..kernels import _blas
        if threads == "auto":
            from mpi4py import MPI
            local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
            threads = max(1, _cores() // local.Get_size())
            local.Free()
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer or 'auto', got {threads!r}.")
        _blas.set_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        self.threads = threads

    def abort(self, code=1, together=False):
        """End every rank of the job (``MPI_Abort``).

        The first rank to abort kills the others, so each rank first waits (at most 2 s, or
        10 s when ``together``) for every rank to arrive here too: when all of them are
        failing, each prints its message before the job ends. A rank failing alone waits the
        2 s and aborts.

        Args:
            code: exit status.
            together: every rank is known to be failing (a :class:`DistributedError`).
        """
        import time
        limit = 10.0 if together else 2.0
        request, t0 = self._failure_comm.Ibarrier(), time.monotonic()
        while not request.Test() and time.monotonic() - t0 < limit:
            time.sleep(0.01)
        self.comm.Abort(code)

    def shard(self, *arrays):
        """This rank's contiguous block of rows of each array (None stays None).

        Rank r of N takes rows ``[B·r // N, B·(r+1) // N)`` of a batch of B rows, so shards
        differ by at most one row and may be empty when B < N.

        Args:
            *arrays: arrays (or None) with the same first dimension B, e.g. x (B, T, F),
                y, sample_weight (B,) or (B, T), mask (B, T).

        Returns:
            tuple of the row blocks, (B_r, ...) each.
        """
        n = len(arrays[0])
        lo, hi = n * self.rank // self.size, n * (self.rank + 1) // self.size
        return tuple(None if a is None else a[lo:hi] for a in arrays)

    def broadcast_weights(self, model):
        """Overwrite every rank's weights with rank 0's (in place, one Bcast per array).

        Args:
            model: a built model; ``model.weights`` are the arrays sent.
        """
        for w in model.weights:
            self.comm.Bcast(w, root=0)

    def _sync(self, model, x):
        """Before a model's first step: build it, broadcast rank 0's weights, check shuffles."""
        if model in self._synced:
            return
        if not getattr(model, "built", True):
            model.build(np.shape(x))
        self.broadcast_weights(model)
        digest = hashlib.sha1(json.dumps(_backend.get_rng_state(), sort_keys=True,
                                         default=str).encode()).hexdigest()
        digests = self.comm.allgather(digest)
        if len(set(digests)) > 1:
            raise DistributedError(
                "the ranks' random generators differ, so they would shuffle the data "
                "differently and train on different global batches. Call "
                "rnnkit.utils.set_random_seed(<the same seed>) on every rank, or call it "
                "before rnnkit.distributed.init() (which copies rank 0's generator).")
        self._synced.add(model)

    @contextlib.contextmanager
    def _local_random(self):
        """Dropout on this rank draws from its own stream, so the shared stream, and with it
        the shuffle, stays the same on all ranks. The rank's stream starts at the first step,
        seeded from the shared generator's state (without advancing it) and the rank: a
        seeded script draws the same masks every run."""
        shared = _backend.rng()
        if self._rng is None:
            seed = int.from_bytes(hashlib.sha1(json.dumps(
                shared.bit_generator.state, sort_keys=True, default=str).encode()).digest()[:8],
                "little")
            self._rng = np.random.default_rng([seed, self.rank])
        _backend.set_rng(self._rng)
        try:
            yield
        finally:
            _backend.set_rng(shared)

    # -- the collective step ---------------------------------------------------------------
    def _allreduce(self, buf):
        import time

        from mpi4py import MPI
        out = np.empty_like(buf)
        t0 = time.perf_counter()
        self.comm.Allreduce(buf, out, op=MPI.SUM)
        self.last_allreduce_seconds = time.perf_counter() - t0
        return out

    def _raise_if_failed(self, failed, error, where):
        if not failed:
            return
        msg = None if error is None else f"{type(error).__name__}: {error}"
        messages = self.comm.allgather(msg)
        bad = [(r, m) for r, m in enumerate(messages) if m is not None]
        text = "; ".join(f"rank {r} of {self.size} failed {where}: {m}" for r, m in bad)
        raise DistributedError(text) from error

    @staticmethod
    def _metric_states(metrics):
        return [np.asarray(m.get_state(), dtype=np.float64) for m in metrics]

    def train_step(self, model, x, y, sample_weight=None, mask=None):
        """One data-parallel step on a global batch; returns the global batch loss.

        Every rank passes the same global batch; each computes loss and gradients on its
        rows (:meth:`shard`), the gradients, loss and metric increments are summed in ONE
        allreduce, and every rank applies the same optimizer update with the global gradient.

        Args:
            model: the compiled model.
            x, y, sample_weight, mask: the global batch (B rows each; None where absent).

        Returns:
            float, the loss of the whole global batch (what a single process would return).

        Raises:
            DistributedError: on every rank, when the step failed on any rank.
        """
        self._sync(model, x)
        xs, ys, sws, ms = self.shard(x, y, sample_weight, mask)
        params, _ = model._trainable()
        metrics = model.metrics
        before = self._metric_states(metrics)
        for m in metrics:
            m.reset()
        local_loss, n_local, error, grads = 0.0, 0.0, None, None
        try:
            if len(xs):
                with self._local_random():
                    local_loss, y_pred, out_mask = model._loss_and_grad(xs, ys, sws, ms)
                grads = model._trainable()[1]
                n_local = model.loss.count(y_pred.shape[:-1], out_mask)
                for m in metrics:
                    m.update(ys, y_pred, sws, out_mask)
        except Exception as e:  # carried to every rank by the allreduce below
            error = e
        dtype = params[0].dtype if params else np.float64
        sizes = [p.size for p in params]
        deltas = self._metric_states(metrics)
        tail = [n_local * local_loss if error is None else 0.0, n_local, float(error is not None)]
        buf = np.zeros(sum(sizes) + 3 + sum(d.size for d in deltas), dtype)
        if grads is not None and error is None:
            off = 0
            for g, k in zip(grads, sizes):
                np.multiply(g.reshape(-1), n_local, out=buf[off:off + k])
                off += k
        off = sum(sizes)
        buf[off:off + 3] = tail
        if deltas:
            buf[off + 3:] = np.concatenate(deltas)
        total = self._allreduce(buf)
        sum_loss, n, failed = (float(v) for v in total[off:off + 3])
        self._raise_if_failed(failed, error, f"in a training step of {model.name!r}")
        scale = 1.0 / max(n, 1.0)
        total[:off] *= scale
        loss = sum_loss * scale
        k = off + 3
        for m, b, d in zip(metrics, before, deltas):
            m.set_state(b + total[k:k + d.size].astype(np.float64))
            k += d.size
        if math.isfinite(loss):
            g_all, i = [], 0
            for p, s in zip(params, sizes):
                g_all.append(total[i:i + s].reshape(p.shape))
                i += s
            model.optimizer.apply(params, g_all)
        return loss

    def evaluate(self, model, data):
        """Loss and metrics of a whole data set, each rank computing on its rows of each batch.

        One allreduce at the end (per-batch loss sums and counts, and metric totals). Every
        rank passes the same batches.

        Args:
            model: the compiled model.
            data: iterable of global batches ``(x, y, sample_weight, mask)``.

        Returns:
            dict ``{"loss": ..., <metric>: ...}``, what ``Model.evaluate(return_dict=True)``
            returns on one process for the same data.

        Raises:
            DistributedError: on every rank, when evaluating failed on any rank.
        """
        metrics = model.metrics
        for m in metrics:
            m.reset()
        sums, counts, rows, error = [], [], [], None
        for xb, yb, swb, mb in data:
            xs, ys, sws, ms = self.shard(xb, yb, swb, mb)
            rows.append(len(yb))
            s, n = 0.0, 0.0
            if error is None and len(xs):
                try:
                    y_pred, out_mask = model.forward(xs, training=False, mask=ms)
                    out_mask = model._output_mask(y_pred, out_mask)
                    n = model.loss.count(y_pred.shape[:-1], out_mask)
                    s = n * model.loss(ys, y_pred, sws, out_mask)
                    for m in metrics:
                        m.update(ys, y_pred, sws, out_mask)
                except Exception as e:  # carried to every rank by the allreduce below
                    error = e
            sums.append(s)
            counts.append(n)
        if not rows:
            raise ValueError("evaluate got no batches (no data): the data is empty, or a "
                             "generator was already used up.")
        states = self._metric_states(metrics)
        buf = np.concatenate([np.asarray(sums), np.asarray(counts), [float(error is not None)]]
                             + states)
        total = self._allreduce(buf)
        nb = len(rows)
        self._raise_if_failed(total[2 * nb], error, f"evaluating {model.name!r}")
        batch_loss = total[:nb] / np.maximum(total[nb:2 * nb], 1.0)
        loss = float(np.dot(batch_loss, rows) / sum(rows))
        k = 2 * nb + 1
        for m, st in zip(metrics, states):
            m.set_state(total[k:k + st.size])
            k += st.size
        return {"loss": loss + model.regularization_loss(),
                **{m.name: m.result() for m in metrics}}
