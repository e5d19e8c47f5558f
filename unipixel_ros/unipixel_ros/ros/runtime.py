"""Process entry point shared by our nodes: init, spin, clean shutdown on SIGINT/SIGTERM."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
from typing import Callable, List, Optional

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process instead of returning it to the kernel.

    Every camera frame allocates and frees the same few megabytes (message buffers, numpy
    temporaries). By default glibc serves blocks over 128 KiB with mmap and unmaps them on free,
    so each frame faults its pages in again; the usual real-time ROS 2 advice is to stop that.
    On the 2-core VMs we measure on, a page fault costs 1.9-22 us depending on the hour (the
    ``machine`` record of ``make bench``), i.e. up to milliseconds per frame. Blocks up to 256 MiB
    now come from the heap and the heap is never trimmed, so the memory is faulted in once and
    reused (resident memory stays at its peak).

    Returns:
        True when the C library accepted both settings (False off glibc, e.g. musl or macOS).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3      # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 256 * 2**20)) and bool(mallopt(m_trim_threshold, 2**30))


def run_node(factory: Callable[[], Node], args: Optional[List[str]] = None,
             executor_factory: Callable[..., Executor] = SingleThreadedExecutor) -> int:
    """Create the node made by ``factory``, spin it until shutdown and tear it down.

    The node may define ``close()`` to stop its own threads before it is destroyed; it must
    also release any callback still blocked in an executor thread.
    ``executor_factory(context=...)`` makes the executor (a ``MultiThreadedExecutor`` for nodes
    with callbacks that block, such as an action's execute callback).
    Returns the process exit status (1 if the node could not be created).
    """
    keep_freed_memory()
    # rclpy.init fails without HOME (its logging directory defaults to ~/.ros).
    os.environ.setdefault('HOME', tempfile.gettempdir())
    # rclpy's signal handlers shut the context down (spin then raises ExternalShutdownException)
    # and chain to the previous handler; a no-op Python handler there keeps a second
    # KeyboardInterrupt from landing in the middle of the cleanup below.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    status = 0
    try:
        node = factory()
        executor = executor_factory(context=node.context)
        executor.add_node(node)
        # Polled rather than rclpy.spin(node): a SIGINT racing a callback left spin() waiting
        # forever after the context was shut down (seen with the render thread publishing).
        while node.context.ok():
            executor.spin_once(timeout_sec=0.2)
    except ExternalShutdownException:
        pass
    except Exception as exc:  # a bad startup parameter: say why, exit non-zero
        if node is None:
            print(f'[ERROR] {exc}', file=sys.stderr)
            status = 1
        else:
            raise
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return status
