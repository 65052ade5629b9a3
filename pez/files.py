"""Files pez writes: one writer per file (:func:`writer_lock`, on the file a path resolves to), and a file that can
be created where it is asked for (:func:`check_creatable`), checked before any work starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pez.errors import PezError

log = logging.getLogger(__name__)


@contextmanager
def writer_lock(path: str | os.PathLike, option: str = "--out") -> Iterator[None]:
    """Hold ``FILE.lock`` while this process writes ``path``, so two runs on one file never both write it.

    ``FILE`` is the file ``path`` resolves to (symlinks, ``..``): two paths to one file take one lock. The lock is
    the kernel's (``flock``) on a file that holds the writer's pid: it ends with its process however that ends (a
    killed run leaves no lock behind, only a file the next run takes over).

    Args:
        path: the file to write.
        option: the option that named it, for the message (``--out``, ``--checkpoint``).

    Raises:
        PezError: another process holds it (the message names its pid).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (two runs on one file there may both write it)
        yield
        return
    path = os.fspath(path)
    lock = f"{os.path.realpath(path)}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise PezError(f"cannot write {lock} ({e.strerror}): give an {option} in a writable folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            real = os.path.realpath(path)
            who = f"{path} (pid {pid})" if real == os.path.abspath(path) else f"{real} (pid {pid}; {path} links to it)"
            raise PezError(f"another pez is writing {who}: wait for it to end, or give another {option}") from None
        except OSError as e:  # a file system without locks: go on unlocked
            log.warning("cannot lock %s (%s): two runs on this file would both write it", lock, e.strerror)
            break
        try:
            same_file = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:  # not a file its last holder removed after we opened it
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        try:
            os.unlink(lock)  # removed while still held: a waiting opener sees another inode and tries again
        except FileNotFoundError:
            pass
        os.close(fd)


def check_creatable(path: str | os.PathLike, option: str) -> None:
    """Refuse now a file that could not be written later: the file is opened for appending (an existing one is
    left as it was), or created and removed again. ``os.access`` is not enough: root may write anywhere by
    permissions, and still not create a file in /proc or on a read-only mount.

    Raises:
        PezError: the file cannot be created or written, saying why.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)  # a symlink, dangling or not: the file it names
    existed = os.path.exists(target)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | (0 if existed else os.O_CREAT | os.O_EXCL), 0o644)
    except OSError as e:
        raise PezError(f"{option} {path} cannot be written ({e.strerror}): give a file in a writable folder") from None
    os.close(fd)
    if not existed:
        os.unlink(target)


def check_folder_creatable(path: str | os.PathLike, option: str) -> None:
    """:func:`check_creatable` for an output folder: a probe file is created in it (or in the folder that will
    hold it) and removed."""
    path = os.fspath(path)
    where = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    probe = os.path.join(where, f".pez-write-check-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    except OSError as e:
        raise PezError(f"{option} {path} cannot be written ({e.strerror}): give a writable folder") from None
    os.close(fd)
    os.unlink(probe)
