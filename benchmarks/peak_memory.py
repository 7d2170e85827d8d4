"""Peak resident memory of the current process, for the benchmark workers."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_bytes() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec,
    so a worker subprocess would report its parent's peak (e.g. a driver that calibrated an int8 model)
    instead of its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
