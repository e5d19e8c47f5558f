"""``unipixel-ros serve``: export the model if needed, then run the Triton server process.

PyTriton 0.7 pins numpy < 2, which the robot-side environment (numpy 2, torch, ROS) cannot take,
so the server runs in an environment of its own (``.venv-triton`` beside ``.venv``, made by
``scripts/bootstrap.sh`` from ``requirements/triton-server.txt``) or in this interpreter when it
has PyTriton. This module finds that interpreter (:func:`server_python`), starts
``python -m unipixel_ros.serving.triton_server`` in its own process group, forwards SIGINT and
SIGTERM to it, and offers the readiness check (:func:`wait_until_ready`).

PyTriton's Python backend stub loads ``libpython3.x.so`` by name; the interpreter's own library
directory goes first on ``LD_LIBRARY_PATH`` so that it matches the standard library (a stub that
found the distribution's libpython 3.11.2 under a pyenv 3.11.7 standard library failed in
``multiprocessing.resource_tracker``).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


#: Environment variable naming the server's Python interpreter (overrides the search).
SERVER_PYTHON_ENV = 'UNIPIXEL_TRITON_PYTHON'
BACKENDS = ('unipixel', 'sam3')


class ServeError(RuntimeError):
    """The server cannot be started: no PyTriton environment, no model, a port in use."""


def _has_pytriton(python: str) -> bool:
    run = subprocess.run([python, '-c', 'import pytriton.triton, onnxruntime'],
                         capture_output=True, timeout=120)
    return run.returncode == 0


def server_python() -> str:
    """The interpreter that runs the server: ``$UNIPIXEL_TRITON_PYTHON``, this one if it has
    PyTriton, else ``.venv-triton/bin/python`` beside this venv.

    Raises:
        ServeError: none of them has PyTriton and ONNX Runtime (the message says how to make one).
    """
    candidates = [os.environ.get(SERVER_PYTHON_ENV), sys.executable,
                  str(Path(sys.prefix).parent / '.venv-triton' / 'bin' / 'python')]
    for python in candidates:
        if python and Path(python).exists() and _has_pytriton(python):
            return python
    raise ServeError('no Python environment with nvidia-pytriton and onnxruntime: run '
                     'scripts/bootstrap.sh (it makes .venv-triton from '
                     'requirements/triton-server.txt) or set ' + SERVER_PYTHON_ENV)


def server_env(python: str) -> dict:
    """Environment of the server process: this package importable, the interpreter's own
    libpython first on LD_LIBRARY_PATH (see the module docstring)."""
    env = dict(os.environ)
    # the folder holding the unipixel_ros package (from this file: a namespace-package import of
    # unipixel_ros, e.g. from the repository root, has no __file__)
    root = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
    libdir = subprocess.run([python, '-c', "import sysconfig; print(sysconfig.get_config_var("
                             "'LIBDIR') or '')"], capture_output=True, text=True,
                            timeout=60).stdout.strip()
    if libdir:
        env['LD_LIBRARY_PATH'] = os.pathsep.join(
            p for p in (libdir, env.get('LD_LIBRARY_PATH')) if p)
    return env


def server_command(python: str, model_dir: str | Path, grpc_port: int, http_port: int,
                   metrics_port: int, address: str = '127.0.0.1', threads: int = 0,
                   max_batch_size: int = 8, max_queue_delay_us: int = 2000,
                   stats_every_s: float = 30.0, workspace: str | Path | None = None) -> list[str]:
    """The argv of the server process (see :mod:`unipixel_ros.serving.triton_server`)."""
    return [python, '-m', 'unipixel_ros.serving.triton_server', '--model-dir', str(model_dir),
            '--grpc-port', str(grpc_port), '--http-port', str(http_port), '--metrics-port',
            str(metrics_port), '--address', address, '--threads', str(threads),
            '--max-batch-size', str(max_batch_size), '--max-queue-delay-us',
            str(max_queue_delay_us), '--stats-every-s', str(stats_every_s)] + (
                ['--workspace', str(workspace)] if workspace else [])


def start_server(model_dir: str | Path, grpc_port: int, http_port: int | None = None,
                 metrics_port: int | None = None, log=None, **kwargs) -> subprocess.Popen:
    """Start the server on an ONNX export directory in its own process group (not waiting for
    it to be ready: see :func:`wait_until_ready`). ``http_port`` / ``metrics_port`` default to
    ``grpc_port - 1`` / ``grpc_port + 1`` (Triton's 8000/8001/8002 layout); ``log``: a file
    for the server's stdout and stderr (None: inherit). ``kwargs``: see :func:`server_command`.

    The server's working files (PyTriton's copy of Triton, 22 MB, and its sockets) go to a
    temporary folder, ``proc.workspace``, that :func:`stop_server` and :func:`kill_server`
    remove: a killed server cannot clean up itself.
    """
    python = server_python()
    workspace = Path(tempfile.mkdtemp(prefix='unipixel_triton_'))
    cmd = server_command(python, model_dir, grpc_port,
                         grpc_port - 1 if http_port is None else http_port,
                         grpc_port + 1 if metrics_port is None else metrics_port,
                         workspace=workspace / 'pytriton', **kwargs)
    proc = subprocess.Popen(cmd, env=server_env(python), stdout=log, stderr=log,
                            start_new_session=True)
    proc.workspace = workspace
    return proc


def _remove_workspace(proc: subprocess.Popen) -> None:
    workspace = getattr(proc, 'workspace', None)
    if workspace is not None:
        shutil.rmtree(workspace, ignore_errors=True)


def stop_server(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM the server (a clean stop), SIGKILL its process group after ``timeout_s``; its
    exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_server(proc)
    _remove_workspace(proc)
    return proc.returncode


def _backend_model_copies(proc: subprocess.Popen) -> list[Path]:
    """The model folders Triton's Python backend copied for this server's stubs (always under
    /tmp/folderXXXXXX, whatever TMPDIR says), read from the stubs' command lines."""
    import psutil
    found = []
    try:
        for child in psutil.Process(proc.pid).children(recursive=True):
            for arg in child.cmdline():
                path = Path(arg)
                if path.name == 'model.py' and path.parent.parent.name.startswith('folder'):
                    found.append(path.parent.parent)
    except (psutil.Error, OSError):
        pass
    return found


def kill_server(proc: subprocess.Popen) -> None:
    """SIGKILL the server's whole process group (Triton and its Python backends with it), as a
    crash of the server host would, then remove its working files (a clean stop removes the
    Python backend's model copies itself; a killed one cannot)."""
    copies = _backend_model_copies(proc)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    _remove_workspace(proc)
    for folder in copies:
        shutil.rmtree(folder, ignore_errors=True)


def served_models(backend: str = 'unipixel') -> list[str]:
    """The Triton model names a server of ``backend`` hosts."""
    if backend == 'sam3':
        from unipixel_ros.backends.sam3.graph_io import TRITON_MODELS as SAM3_MODELS
        return list(SAM3_MODELS.values())
    from unipixel_ros.engines.triton_engine import TRITON_MODELS
    return list(TRITON_MODELS.values())


def wait_until_ready(url: str, timeout_s: float = 120.0, proc: subprocess.Popen | None = None,
                     models=None) -> float:
    """Seconds until the server at gRPC ``url`` is live, ready and serves ``models`` (default:
    the three unipixel models; :func:`served_models` names a backend's).

    Raises:
        ServeError: not ready within ``timeout_s``, or ``proc`` exited first.
    """
    import tritonclient.grpc as grpcclient

    models = list(models or served_models('unipixel'))
    t0 = time.monotonic()
    client = grpcclient.InferenceServerClient(url.split('://', 1)[-1])
    try:
        while True:
            if proc is not None and proc.poll() is not None:
                raise ServeError(f'the server exited with code {proc.returncode} before it was '
                                 'ready')
            try:
                if client.is_server_ready(client_timeout=1.0) and all(
                        client.is_model_ready(m, client_timeout=1.0) for m in models):
                    return time.monotonic() - t0
            except Exception:   # not listening yet
                pass
            if time.monotonic() - t0 > timeout_s:
                raise ServeError(f'the server at {url} was not ready after {timeout_s:.0f} s')
            time.sleep(0.25)
    finally:
        client.close()


def resolve_export(model_path: str | Path, backend: str = 'unipixel') -> Path:
    """The ONNX export directory the server loads for ``model_path``.

    Args:
        model_path: unipixel: a ``.safetensors`` checkpoint or an ONNX export directory; sam3: a
            SAM 3 ONNX export directory, a Hugging Face id (``facebook/sam3``) or a local Hugging
            Face directory (exported once per model sha256 into the cache; needs torch and
            transformers that one time).
    Raises:
        ServeError: unknown backend.
    """
    if backend not in BACKENDS:
        raise ServeError(f'unknown backend {backend!r}: serve {" or ".join(BACKENDS)}')
    if backend == 'sam3':
        from unipixel_ros.backends.sam3.graph_io import MANIFEST
        if (Path(model_path) / MANIFEST).is_file():
            return Path(model_path)
        from unipixel_ros.backends.sam3.export import ensure_sam3_onnx
        return ensure_sam3_onnx(model_path).out_dir
    from unipixel_ros.engines.onnx_engine import resolve_model_dir
    return resolve_model_dir(model_path)   # exports a checkpoint once (torch, cached)


def serve(model_path: str | Path, backend: str = 'unipixel', port: int = 8001,
          address: str = '127.0.0.1', **kwargs) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM (forwarded to it); its exit code.

    Args:
        model_path: see :func:`resolve_export`.
        backend: 'unipixel' or 'sam3'.
        port: gRPC port (HTTP on port - 1, metrics on port + 1).
        address: '127.0.0.1' (this machine) or '0.0.0.0' (a fleet on the network).
        kwargs: threads, max_batch_size, max_queue_delay_us, stats_every_s.
    Raises:
        ServeError: unknown backend, no server environment, or an unusable model.
    """
    try:
        model_dir = resolve_export(model_path, backend)
    except ServeError:
        raise
    except Exception as exc:   # a missing or gated model, a failed export: say which
        raise ServeError(f'cannot load the {backend} model {model_path}: {exc}') from exc
    proc = start_server(model_dir, port, address=address, **kwargs)

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            kill_server(proc)
        _remove_workspace(proc)
