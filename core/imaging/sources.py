"""Bytes in: an upload as it is, or a path read safely (regular files only, at most the limit plus
one byte, never blocking on a FIFO or a device)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.imaging.common import ImageReadError, EXPECTED, too_many_bytes


def load_bytes(source, max_bytes: int) -> tuple[bytes, str]:
    """Return the raw bytes and a short description of where they came from."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "the upload"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = f"'{path.name or path}'"
        data = _read_regular_file(path, label, max_bytes)
    else:
        raise TypeError(f"source must be bytes or a path, not {type(source).__name__}"
                        " (for a file object pass .getvalue() or .read())")
    if not data:
        raise ImageReadError(f"{EXPECTED}; got 0 bytes from {label}")
    if len(data) > max_bytes:
        raise too_many_bytes(len(data), max_bytes, label)
    return data, label


def _read_regular_file(path: Path, label: str, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of a regular file.

    Special files are refused before they are opened: a FIFO would block the reader for ever,
    ``/dev/zero`` never ends, and both report a size of 0, so the byte limit alone would not
    stop them. The file is then opened without blocking and checked again, in case it was
    swapped in between.
    """
    try:
        _refuse_special_file(os.stat(path).st_mode, label)  # follows symlinks: a link to /dev/zero is a device
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(path, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            _refuse_special_file(info.st_mode, label)
            if info.st_size > max_bytes:  # before reading, so a huge file is never loaded
                raise too_many_bytes(info.st_size, max_bytes, label)
            return handle.read(max_bytes + 1)  # one byte more tells a file that grew past the limit
    except FileNotFoundError as e:
        raise ImageReadError(f"{EXPECTED}; got {label}, which does not exist") from e
    except OSError as e:
        raise ImageReadError(f"{EXPECTED}; could not read {label}: {e.strerror or e}") from e


def _refuse_special_file(mode: int, label: str) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    kind = next((kind for test, kind in kinds if test(mode)), "a special file")
    raise ImageReadError(f"{EXPECTED}; got {label}, which is {kind}, not a regular file")
