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
A model with several outputs adds one small allreduce of its per-output loss counts before
the backward pass (see :meth:`GradientReducer.train_step`).

A failure inside a step on any rank (an exception in forward, loss or backward) is carried by
the same allreduce: every rank then raises :class:`DistributedError` naming the rank and the
error. Any other uncaught exception aborts the whole job (``MPI_Abort``) after printing a
message, so no rank waits forever in a collective call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import weakref

import numpy as np

from .. import _backend
from .._data_adapter import _rows, _take

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

    The model calls :meth:`train_step` (from ``Engine._train_step``) and :meth:`evaluate` (from
    ``Engine._evaluate_adapter``) when :func:`current` returns a reducer; it needs nothing else.

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
            *arrays: arrays (or None, or a list of arrays: one per input / output) with the
                same first dimension B, e.g. x (B, T, F), y, sample_weight (B,) or (B, T),
                mask (B, T).

        Returns:
            tuple of the row blocks, (B_r, ...) each.
        """
        n = _rows(arrays[0])
        lo, hi = n * self.rank // self.size, n * (self.rank + 1) // self.size
        return tuple(_take(a, slice(lo, hi)) for a in arrays)

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
    def _metric_states(model):
        """The summable states of the output metrics (the per-output loss trackers of a
        several-output model are set from the reduced losses instead)."""
        return [np.asarray(m.get_state(), dtype=np.float64)
                for ms in model._output_metrics for m in ms]

    @staticmethod
    def _set_metric_states(model, states, flat):
        k = 0
        for m, st in zip((m for ms in model._output_metrics for m in ms), states):
            m.set_state(st + flat[k:k + st.size].astype(np.float64))
            k += st.size

    def train_step(self, model, x, y, sample_weight=None, mask=None):
        """One data-parallel step on a global batch; returns the global batch loss.

        Every rank passes the same global batch; each computes loss and gradients on its
        rows (:meth:`shard`), the gradients, loss parts and metric increments are summed in
        ONE allreduce, and every rank applies the same optimizer update with the global
        gradient. A model with K > 1 outputs first sums its K per-output loss counts in a
        second, K-float allreduce: output k's mean runs over its own N_k positions (masks
        differ between outputs), so each rank scales output k's gradient by
        ``n_k·B / (N_k·B_r)`` before its backward pass and is then weighted by its rows B_r.

        Args:
            model: the compiled model.
            x, y, sample_weight, mask: the global batch (B rows each; None where absent;
                a list with one array per input / output for several).

        Returns:
            float, the loss of the whole global batch (what a single process would return).

        Raises:
            DistributedError: on every rank, when the step failed on any rank.
        """
        self._sync(model, x)
        xs, ys, sws, ms = self.shard(x, y, sample_weight, mask)
        rows, n_out = _rows(xs), model._n_outputs
        params, _ = model._trainable()
        before = self._metric_states(model)
        tracked = [t.get_state() for t in model._loss_trackers]
        for m in model.metrics:
            m.reset()
        reg = model.regularization_loss()   # before the update, as a single process logs it
        step = {"n": [0.0] * n_out, "parts": [0.0] * n_out}

        def weigh(preds, masks, parts):     # called by the engine between loss and backward
            step["n"] = [fn.count(p.shape[:-1], mk)
                         for fn, p, mk in zip(model._losses, preds, masks)]
            step["parts"] = parts
            if n_out == 1:
                return None
            step["N"] = self._allreduce(np.asarray(step["n"], np.float64))
            return [n * _rows(x) / (max(big, 1.0) * rows)
                    for n, big in zip(step["n"], step["N"])]

        error, grads = None, None
        try:
            if rows:
                with self._local_random():
                    _, preds, masks = model._loss_and_grad(xs, ys, sws, ms, weigh)
                grads = model._trainable()[1]
                model._update_metrics(model._targets(ys), preds, sws, masks)
        except Exception as e:  # carried to every rank by the allreduce below
            error = e
        if n_out > 1 and "N" not in step:   # join the count allreduce the other ranks made
            step["N"] = self._allreduce(np.zeros(n_out))
        # the rank's weight c_r: its loss count (one output) or its rows (several)
        weight = step["n"][0] if n_out == 1 else float(rows)
        dtype = params[0].dtype if params else np.float64
        sizes = [p.size for p in params]
        deltas = self._metric_states(model)
        ok = error is None
        tail = [weight, float(not ok)] + [n * v if ok else 0.0
                                           for n, v in zip(step["n"], step["parts"])]
        off = sum(sizes)
        buf = np.zeros(off + len(tail) + sum(d.size for d in deltas), dtype)
        if grads is not None and ok:
            i = 0
            for g, k in zip(grads, sizes):
                np.multiply(g.reshape(-1), weight, out=buf[i:i + k])
                i += k
        buf[off:off + len(tail)] = tail
        if deltas:
            buf[off + len(tail):] = np.concatenate(deltas)
        total = self._allreduce(buf)
        self._raise_if_failed(total[off + 1], error, f"in a training step of {model.name!r}")
        counts = [float(total[off])] if n_out == 1 else step["N"]
        parts = [float(s) / max(c, 1.0) for s, c in zip(total[off + 2:off + len(tail)], counts)]
        loss = reg + sum(w * v for w, v in zip(model._loss_w, parts))
        for tracker, state, v in zip(model._loss_trackers, tracked, parts):
            tracker.set_state(state)     # it saw this rank's losses; log the global ones
            tracker.update_value(v, _rows(x))
        self._set_metric_states(model, before, total[off + len(tail):])
        total[:off] /= max(float(total[off]), 1.0)
        g_all, i = [], 0
        for p, k in zip(params, sizes):
            g_all.append(total[i:i + k].reshape(p.shape))
            i += k
        model._apply_gradients(loss, g_all)
        return loss

    def evaluate(self, model, data):
        """Loss and metrics of a whole data set, each rank computing on its rows of each batch.

        One allreduce at the end (per-batch, per-output loss sums and counts, and metric
        totals). Every rank passes the same batches.

        Args:
            model: the compiled model.
            data: iterable of global batches ``(x, y, sample_weight, mask)``.

        Returns:
            dict ``{"loss": ..., <metric>: ...}``, what ``Model.evaluate(return_dict=True)``
            returns on one process for the same data.

        Raises:
            DistributedError: on every rank, when evaluating failed on any rank.
        """
        for m in model.metrics:
            m.reset()
        before = self._metric_states(model)
        n_out = model._n_outputs
        sums, counts, rows, error = [], [], [], None
        for xb, yb, swb, mb in data:
            xs, ys, sws, ms = self.shard(xb, yb, swb, mb)
            rows.append(_rows(xb))
            s, n = [0.0] * n_out, [0.0] * n_out
            if error is None and _rows(xs):
                try:
                    preds, masks = model._run_outputs(xs, False, ms)
                    masks = [model._output_mask(p, mk) for p, mk in zip(preds, masks)]
                    targets = model._targets(ys)
                    n = [fn.count(p.shape[:-1], mk)
                         for fn, p, mk in zip(model._losses, preds, masks)]
                    s = [c * fn(yt, p, sws, mk) for c, fn, yt, p, mk
                         in zip(n, model._losses, targets, preds, masks)]
                    model._update_metrics(targets, preds, sws, masks)
                except Exception as e:  # carried to every rank by the allreduce below
                    error = e
            sums += s
            counts += n
        if not rows:
            raise ValueError("evaluate got no batches (no data): the data is empty, or a "
                             "generator was already used up.")
        states = self._metric_states(model)
        buf = np.concatenate([np.asarray(sums), np.asarray(counts), [float(error is not None)]]
                             + states)
        total = self._allreduce(buf)
        k = len(sums)
        self._raise_if_failed(total[2 * k], error, f"evaluating {model.name!r}")
        parts = (total[:k] / np.maximum(total[k:2 * k], 1.0)).reshape(len(rows), n_out)
        batch_loss = parts @ np.asarray(model._loss_w)
        loss = float(np.dot(batch_loss, rows) / sum(rows))
        for tracker, col in zip(model._loss_trackers, parts.T):
            tracker.set_state([float(np.dot(col, rows)), float(sum(rows))])
        self._set_metric_states(model, before, total[2 * k + 1:])
        return {"loss": loss + model.regularization_loss(),
                **{m.name: m.result() for m in model.metrics}}
