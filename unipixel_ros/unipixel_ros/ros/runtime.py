"""Process entry point shared by our nodes: init, spin, clean shutdown on SIGINT/SIGTERM."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
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
    """Create the node made by ``factory``, spin it until SIGINT/SIGTERM and tear it down.

    Shutdown order: the signal only ends the spin loop; then the node's ``close()`` (if it
    defines one) stops and joins its own threads and releases any callback still blocked in an
    executor thread, the node is destroyed, and only then is the context shut down. rclpy's own
    signal handler is not installed, because it shuts the context down at once, from the
    signal, while the node's threads may still be publishing ("publisher's context is
    invalid").
    ``executor_factory(context=...)`` makes the executor (a ``MultiThreadedExecutor`` for nodes
    with callbacks that block, such as an action's execute callback).
    Returns the process exit status (1 if the node could not be created).
    """
    from rclpy.signals import SignalHandlerOptions

    keep_freed_memory()
    # rclpy.init fails without HOME (its logging directory defaults to ~/.ros).
    os.environ.setdefault('HOME', tempfile.gettempdir())
    stop = threading.Event()
    # Python runs this in the main thread between two spin_once calls (<= 0.2 s later); a
    # second signal during the cleanup below lands here too instead of interrupting it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    node = None
    status = 0
    try:
        node = factory()
        executor = executor_factory(context=node.context)
        executor.add_node(node)
        # Polled rather than rclpy.spin(node): the loop must notice the stop flag.
        while node.context.ok() and not stop.is_set():
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
