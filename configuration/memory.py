"""Giving back the memory a large read used.

Reading a configuration of 100,000 tasks (the file, then the log's fold of it) peaks at a
few hundred MB of short-lived objects; the process keeps a tenth of that. Python frees the
objects, but the C allocator keeps the pages it got for them unless asked, so a scheduler
held its peak as resident memory for ever. ``release`` asks, once a read is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_LIBC = ctypes.util.find_library("c")
#: glibc's ``malloc_trim``; None where the C library has none (musl, macOS): there the
#: collection alone is done.
_TRIM: Callable[[int], int] | None = (
    getattr(ctypes.CDLL(_LIBC), "malloc_trim", None) if _LIBC else None
)


def release() -> None:
    """Collect what the read left (cycles included) and hand the free heap back to the
    system. A full collection costs about a second of CPU per million live objects: call it
    after a read, not on a hot path."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
