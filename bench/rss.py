"""A process's own peak resident set size, for benchmarks that run each side in a child."""

from __future__ import annotations

import resource
import sys


def peak_rss_bytes() -> int:
    """This process's peak RSS. Linux's `ru_maxrss` carries the parent's peak over fork and exec
    (a child started by a 125 MiB benchmark process reports at least 125 MiB, however little it
    uses), so `VmHWM` of /proc/self/status, which a new program starts afresh, is read where it
    exists."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
