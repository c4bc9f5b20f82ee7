"""Opening files to read without being stuck on what is not a file: a FIFO
blocks whoever opens it (until a writer comes), a device such as
``/dev/zero`` never ends. Readers of stream files open them here and read
only regular files; the rest is reported by what it is."""
from __future__ import annotations

import errno
import os
import stat as stat_mod

__all__ = ["NotRegularFile", "file_kind", "open_regular"]

_KINDS = ((stat_mod.S_ISFIFO, "a FIFO"), (stat_mod.S_ISCHR, "a character device"),
          (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISSOCK, "a socket"), (stat_mod.S_ISDIR, "a folder"))


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words (for a non-regular one)."""
    return next((kind for test, kind in _KINDS if test(mode)), "of an unknown kind")


class NotRegularFile(OSError):
    """A path that is not a regular file where one is read (a FIFO would
    block the reader, a device never ends); ``kind`` says what it is."""

    def __init__(self, path: str, kind: str):
        super().__init__(errno.EINVAL, f"not a regular file ({kind}); not read", path)
        self.kind = kind


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file at ``path``; raises
    :class:`NotRegularFile` for anything else, without blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat_mod.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
    except BaseException:
        os.close(fd)
        raise
    return fd
