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


def run_node(factory: Callable[[], Node], args: Optional[List[str]] = None,
             executor_factory: Callable[..., Executor] = SingleThreadedExecutor) -> int:
    """Create the node made by ``factory``, spin it until shutdown and tear it down.

    The node may define ``close()`` to stop its own threads before it is destroyed; it must
    also release any callback still blocked in an executor thread.
    ``executor_factory(context=...)`` makes the executor (a ``MultiThreadedExecutor`` for nodes
    with callbacks that block, such as an action's execute callback).
    Returns the process exit status (1 if the node could not be created).
    """
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
