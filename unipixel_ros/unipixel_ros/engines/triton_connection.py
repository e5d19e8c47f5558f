"""One gRPC connection to a Triton Inference Server, shared by every Triton client of the project
(the unipixel ``TritonEngine`` and the SAM 3 ``Sam3TritonPredictor``).

What it owns, so that both clients fail and recover the same way:

* deadlines: every request has ``timeout_s``; a server that is down, restarting or too slow
  raises :class:`EngineUnavailable` naming the URL and the cause, after at most two deadlines
  (after a failure the served models are checked again, within one deadline, before the next
  request);
* reconnects: the gRPC channel retries the connection with a backoff capped at
  ``reconnect_backoff_s`` (gRPC's default grows to 120 s), so the first request after the server
  is back succeeds and the client never needs rebuilding;
* :attr:`state` ('unknown', 'ok', 'unavailable'), :attr:`last_error` and :attr:`failures`.

Imports tritonclient only when a connection is made.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .base import EngineError, EngineUnavailable

DEFAULT_URL = '127.0.0.1:8001'

_TRITON_DTYPES = {np.dtype(np.float32): 'FP32', np.dtype(np.int64): 'INT64',
                  np.dtype(np.uint8): 'UINT8', np.dtype(np.int32): 'INT32'}


class TritonConnection:
    """A gRPC client of one server and the models a client needs from it.

    Args:
        url: gRPC ``host:port`` (``grpc://`` prefix accepted).
        models: the Triton model names every request needs ready.
        timeout_s: deadline of one request, seconds.
        reconnect_backoff_s: the longest wait between the channel's connection attempts, seconds.
        check_model: called as ``check_model(model, metadata)`` after a model is ready, to raise
            :class:`EngineError` when it serves other tensors than the client expects.
    Raises:
        EngineError: tritonclient is not installed.
    """

    def __init__(self, url: str = DEFAULT_URL, models: tuple = (), timeout_s: float = 2.0,
                 reconnect_backoff_s: float = 1.0,
                 check_model: Callable | None = None) -> None:
        try:
            import tritonclient.grpc as grpcclient
        except ImportError as exc:
            raise EngineError('a Triton client needs tritonclient: pip install '
                              '"tritonclient[grpc]"') from exc
        self.url = url.split('://', 1)[-1]
        self.models = tuple(models)
        self.timeout_s = float(timeout_s)
        self._check_model = check_model
        self._grpc = grpcclient
        backoff_ms = max(100, int(1000 * reconnect_backoff_s))
        channel_args = [
            ('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1),
            ('grpc.initial_reconnect_backoff_ms', min(100, backoff_ms)),
            ('grpc.min_reconnect_backoff_ms', min(100, backoff_ms)),
            ('grpc.max_reconnect_backoff_ms', backoff_ms)]
        self._client = grpcclient.InferenceServerClient(self.url, channel_args=channel_args)
        self._checked = False
        #: 'ok' after a successful request, 'unavailable' after a failed one ('unknown' before).
        self.state = 'unknown'
        #: why the last request failed ('' after a success).
        self.last_error = ''
        self.failures = 0

    def _error_type(self):
        from tritonclient.utils import InferenceServerException
        return InferenceServerException

    def _unavailable(self, exc) -> EngineUnavailable:
        status = getattr(exc, 'status', lambda: None)() or ''
        msg = str(getattr(exc, 'message', lambda: exc)()).splitlines()[0][:200]
        return EngineUnavailable(f'Triton server at {self.url} unavailable ({status or "error"}: '
                                 f'{msg})')

    def check_server(self) -> None:
        """Ask whether every model is ready (and matches, through ``check_model``).

        Raises:
            EngineUnavailable: the server does not answer or a model is not ready.
            EngineError: a served model's tensors are not the client's (another model).
        """
        end = time.monotonic() + self.timeout_s      # one deadline for all calls

        def left() -> float:
            return max(0.05, end - time.monotonic())
        try:
            for model in self.models:
                if not self._client.is_model_ready(model, client_timeout=left()):
                    raise EngineUnavailable(f'Triton server at {self.url}: model {model} is not '
                                            'ready')
                if self._check_model is not None:
                    self._check_model(model, self._client.get_model_metadata(
                        model, client_timeout=left()))
        except self._error_type() as exc:
            raise self._unavailable(exc) from exc
        self._checked = True

    def infer(self, model: str, inputs: list[tuple[str, np.ndarray]],
              outputs: list[str]) -> dict[str, np.ndarray]:
        """One request: ``[(name, array)]`` -> ``{output name: array}``.

        Raises:
            EngineUnavailable: the server is down, not ready, or missed the deadline.
        """
        g = self._grpc
        tensors = []
        for name, array in inputs:
            array = np.ascontiguousarray(array)
            tensor = g.InferInput(name, list(array.shape), _TRITON_DTYPES[array.dtype])
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        requested = [g.InferRequestedOutput(name) for name in outputs]
        t0 = time.monotonic()
        try:
            if not self._checked:
                self.check_server()
            result = self._client.infer(model, tensors, outputs=requested,
                                        client_timeout=self.timeout_s)
        except self._error_type() as exc:
            self.state, self.failures = 'unavailable', self.failures + 1
            self._checked = False    # the server that comes back may host another model
            err = self._unavailable(exc)
            self.last_error = f'{err} after {time.monotonic() - t0:.2f} s'
            raise EngineUnavailable(self.last_error) from exc
        except EngineUnavailable as exc:
            self.state, self.failures, self.last_error = 'unavailable', self.failures + 1, str(exc)
            raise
        self.state, self.last_error = 'ok', ''
        return {name: result.as_numpy(name) for name in outputs}

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing a channel to a dead server must not raise
            pass
