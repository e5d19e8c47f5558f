"""Helpers of the node tests: start node processes, spin the test's rclpy node."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List


@contextmanager
def node_process(module: str, params: List[str], log_dir: Path) -> Iterator[subprocess.Popen]:
    """Run ``python -m <module> --ros-args -p <param> ...``; SIGINT it on exit (then kill) and
    keep its output in ``log_dir/<module>.log``."""
    log_path = log_dir / f'{module.rsplit(".", 1)[-1]}.log'
    args = [sys.executable, '-m', module, '--ros-args']
    for p in params:
        args += ['-p', p]
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    sys.stderr.write(f'--- {log_path.name} ---\n{log_path.read_text()[-3000:]}\n')


def spin_until(rclpy, node, predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``node`` until ``predicate()`` or ``timeout_s`` seconds; returns ``predicate()``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.02)
    return predicate()
