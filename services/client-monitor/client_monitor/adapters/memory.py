"""Large arrays a watch frees go back to the system (glibc's malloc)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20  # page bodies (~650 KB) stay below it and reuse the heap


@functools.cache
def pin_mmap_threshold() -> bool:
    """Fix malloc's mmap threshold; False where the C library has no such setting.

    glibc raises the threshold each time a large block is freed, up to 32 MB. A client
    table regrows its columns and index as a full scan fills it, so after the first
    regrowths its new arrays came from the heap, where the ones freed later stayed resident
    (~35 MB at 1M clients, measured). Fixed, every array above the threshold is mapped on
    its own and returned to the system when freed.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to pin
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
