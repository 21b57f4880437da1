"""Keep the process's memory close to what it really uses (glibc only; a no-op elsewhere).

A gateway handles bursts of large transient buffers (100 KB request bodies, Kiro bodies, reads).
glibc's malloc raises its mmap threshold dynamically after such buffers are freed, so later ones
come from the heap and freed memory stays in the process: RSS after a burst of 500 streams sat
at twice the live data. A fixed threshold keeps big buffers in mmap, returned to the OS on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["tune_malloc"]

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
log = logging.getLogger("kiro_gateway")


def tune_malloc(mmap_threshold: int = 64 * 1024, trim_threshold: int = 1024 * 1024) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
    log.debug("malloc tuned: %s", ok)
    return ok
