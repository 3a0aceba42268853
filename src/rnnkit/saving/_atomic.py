"""Atomic file writes: a temporary file next to the target, flushed, fsynced, renamed.

A crash (even SIGKILL) at any moment leaves either the old file or the new one at the target
path, never a partial file (``docs/files.md`` section 3).
"""

from __future__ import annotations

import os
import secrets

_TMP_SUFFIX = ".part"


def _tmp_prefix(base):
    return f".{base}."


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, rename).

    The temporary file is ``.<name>.<pid>.<random>.part`` in the target's folder (same file
    system, so the rename is atomic). After a successful rename, temporary files of the same
    target left by processes that no longer exist (killed mid-write) are removed.

    Args:
        path: target file path.
        data: the complete file content.

    In data-parallel training (:mod:`rnnkit.distributed`) only rank 0 writes; on the other
    ranks this returns without writing.
    """
    from ..distributed.mpi import is_root
    if not is_root():
        return
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"Cannot save to {path!r}: it is a directory; pass a file path such "
                         "as 'model.rnnkit'.")
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f"{_tmp_prefix(base)}{os.getpid()}.{secrets.token_hex(6)}"
                               f"{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    _remove_stale_temps(folder, base)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # not ours to judge: keep the file
        return True
    return True


def _remove_stale_temps(folder, base):
    """Delete ``.<base>.<pid>.*.part`` files whose writing process is gone (POSIX only)."""
    if os.name != "posix":
        return
    prefix = _tmp_prefix(base)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for n in names:
        if not (n.startswith(prefix) and n.endswith(_TMP_SUFFIX)):
            continue
        pid = n[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, n))
        except OSError:
            pass
