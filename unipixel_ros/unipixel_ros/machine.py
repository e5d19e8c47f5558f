"""What a benchmark ran on: CPU, load and the cost of a page fault.

CPU timings on shared virtual machines drift between hours (we have seen 2x); recording the
machine's state beside every benchmark lets two runs be compared honestly.
"""
from __future__ import annotations

import mmap
import os
import platform
import time

import numpy as np


def page_fault_us(megabytes: int = 32, repeats: int = 3) -> float:
    """Median microseconds to fault in one fresh 4 KiB page of anonymous memory.

    Bare-metal Linux takes ~0.1-0.3 us; the 2-core VMs we benchmark on measured 1.9-22 us,
    changing by the hour, which is why the nodes keep freed memory
    (``ros.runtime.keep_freed_memory``).
    """
    page = mmap.PAGESIZE
    size = megabytes * 2**20
    times = []
    for _ in range(repeats):
        with mmap.mmap(-1, size) as buf:
            view = np.frombuffer(buf, np.uint8)
            t0 = time.perf_counter()
            view[::page] = 1
            times.append((time.perf_counter() - t0) / (size // page) * 1e6)
            del view
    return round(float(np.median(times)), 3)


def machine_context() -> dict:
    """JSON-ready description of this machine now: CPU model and count, load, page-fault cost."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')), cpu)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, 'getloadavg') else (float('nan'),) * 3
    return {'cpu': cpu, 'cpu_count': os.cpu_count(), 'load_avg_1min': round(load[0], 2),
            'page_fault_us': page_fault_us(),
            'time': time.strftime('%Y-%m-%dT%H:%M:%S%z')}
