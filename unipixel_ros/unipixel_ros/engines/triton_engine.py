"""Triton engine: the three graphs run on a Triton Inference Server, reached over gRPC.

The robot keeps the tokenizer and the pre/post-processing (``model/graph_io.py``); the server
(``unipixel-ros serve``, or the official Triton container on a model repository written by
``unipixel-ros export --format triton``) runs the graphs. The wire protocol is the ONNX graphs'
own tensors, so both servers answer the same requests:

* ``unipixel_text``: input_ids, attention_mask (1, L) INT64 -> prompt (1, L, D) FP32;
* ``unipixel_point``: uv (1, 2) FP32 -> prompt (1, 1, D) FP32;
* ``unipixel_image``: image (1, 3, H_in, W_in), prompt (1, L, D), prompt_mask (1, L) FP32 ->
  mask_logits (1, 1, H_in, W_in), exists_logit (1,), category/color/size_logits (1, K) FP32.

The text model runs once per command (the predictor caches prompts), the image model per frame.

Failures (:mod:`.triton_connection`): every request has a deadline (``timeout_s``); a server
that is down, restarting or too slow raises :class:`EngineUnavailable` naming the URL and the
cause, and the engine never needs rebuilding. :attr:`TritonEngine.state` says 'ok' or
'unavailable'.

Imports neither torch nor (until an engine is built) tritonclient.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unipixel_ros.model.graph_io import GRAPH_IO

from .base import Engine, EngineError
from .triton_connection import DEFAULT_URL, TritonConnection

#: Triton model name of each graph of ``GRAPH_IO``.
TRITON_MODELS = {'text': 'unipixel_text', 'point': 'unipixel_point', 'image': 'unipixel_image'}


def graph_tensors(manifest: dict) -> dict:
    """{graph: {'inputs': [(name, numpy dtype, shape)], 'outputs': [...]}} of the exported graphs,
    shapes with the leading batch dimension of 1 (-1 for the dynamic token axis of ``text``).

    Args:
        manifest: ``model.json`` of an ONNX export (``model_config`` is read).
    """
    cfg = manifest['model_config']
    L, D = int(cfg.get('max_text_tokens', 24)), int(cfg['dim'])
    H, W = int(cfg['input_height']), int(cfg['input_width'])
    vocab = manifest.get('vocab') or cfg.get('vocab') or {}
    n = {k: len(vocab.get(v, ())) for k, v in (('category', 'categories'), ('color', 'colors'),
                                              ('size', 'sizes'))}
    f32, i64 = np.float32, np.int64
    return {
        'text': {'inputs': [('input_ids', i64, (1, -1)), ('attention_mask', i64, (1, -1))],
                 'outputs': [('prompt', f32, (1, -1, D))]},
        'point': {'inputs': [('uv', f32, (1, 2))], 'outputs': [('prompt', f32, (1, 1, D))]},
        'image': {'inputs': [('image', f32, (1, 3, H, W)), ('prompt', f32, (1, L, D)),
                             ('prompt_mask', f32, (1, L))],
                  'outputs': [('mask_logits', f32, (1, 1, H, W)), ('exists_logit', f32, (1,)),
                              ('category_logits', f32, (1, n['category'] or -1)),
                              ('color_logits', f32, (1, n['color'] or -1)),
                              ('size_logits', f32, (1, n['size'] or -1))]},
    }


def read_client_manifest(model_path: str | Path) -> tuple[dict, Path | None]:
    """(manifest, tokenizer directory or None) of what the server hosts, read on the robot.

    ``model_path`` is an ONNX export directory or its ``model.json`` (only the manifest and
    ``tokenizer/`` are read: the graph files need not be on the robot, e.g. the ``client/``
    folder of ``unipixel-ros export --format triton``), or a ``.safetensors`` checkpoint (exported
    once into the ONNX cache, which needs torch that one time).

    Raises:
        EngineError: nothing usable at ``model_path``.
    """
    path = Path(model_path)
    if path.is_file() and path.name == 'model.json':
        path = path.parent
    if not path.is_dir():
        from .onnx_engine import resolve_model_dir
        path = resolve_model_dir(path)
    try:
        manifest = json.loads((path / 'model.json').read_text())
        manifest['model_config']
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f'model manifest {path / "model.json"} is missing or corrupt '
                          f'(export with `unipixel-ros export --format triton`): {exc!r}') from exc
    tok = manifest.get('tokenizer')
    tok_dir = path / tok if tok and (path / tok).is_dir() else None
    return manifest, tok_dir


class TritonEngine(Engine):
    """Triton Inference Server back-end over gRPC (``tritonclient[grpc]``).

    Args:
        model_path: what the server hosts, as read by :func:`read_client_manifest`.
        url: gRPC ``host:port`` of the server (``grpc://`` prefix accepted).
        timeout_s: deadline of one request, seconds (a frame, a text, a point).
        reconnect_backoff_s: the longest wait between the channel's connection attempts, seconds
            (see :mod:`.triton_connection`).
        check_server: contact the server now and compare its models' tensors with the manifest
            (EngineUnavailable if it is down). False: build the engine anyway and check on the
            first successful request (a node may start before its server).
        device, threads, kwargs: accepted for a uniform ``open_engine`` call, unused.
    Raises:
        EngineError: no manifest, no tritonclient, or the served models' tensors disagree with
            the manifest.
        EngineUnavailable: ``check_server`` and the server does not answer.
    """

    name = 'triton'

    def __init__(self, model_path: str | Path, url: str = DEFAULT_URL, timeout_s: float = 2.0,
                 reconnect_backoff_s: float = 1.0, check_server: bool = False,
                 device: str = 'cpu', threads: int = 0, **kwargs) -> None:
        manifest, self._tokenizer_dir = read_client_manifest(model_path)
        super().__init__(manifest)
        self._tensors = graph_tensors(manifest)
        self._model_graph = {model: graph for graph, model in TRITON_MODELS.items()}
        self.connection = TritonConnection(url, tuple(TRITON_MODELS.values()), timeout_s,
                                           reconnect_backoff_s, check_model=self._compare)
        if check_server:
            self.check_server()

    @property
    def url(self) -> str:
        return self.connection.url

    @property
    def state(self) -> str:
        """'ok' after a successful request, 'unavailable' after a failed one ('unknown' before)."""
        return self.connection.state

    @property
    def last_error(self) -> str:
        return self.connection.last_error

    # ---- server ---------------------------------------------------------------------------------
    def check_server(self) -> None:
        """Ask the server whether the three models are ready and their tensors match.

        Raises:
            EngineUnavailable: the server does not answer or a model is not ready.
            EngineError: a served model's tensors disagree with the manifest (another model).
        """
        self.connection.check_server()

    def _compare(self, model: str, meta) -> None:
        """EngineError when a served model's inputs/outputs are not the manifest's."""
        graph = self._model_graph[model]
        served = {t.name: [int(d) for d in t.shape] for t in list(meta.inputs) + list(meta.outputs)}
        for name, _dtype, shape in (self._tensors[graph]['inputs']
                                    + self._tensors[graph]['outputs']):
            got = served.get(name)
            if got is None:
                raise EngineError(f'Triton model {model} at {self.url} has no '
                                  f'tensor {name!r}: it serves another model than {self._what()}')
            # PyTriton reports the batch dimension as -1, the official container's fixed graphs
            # 1; a per-request scalar (exists_logit) is [1] in PyTriton, [] in the graph
            want, have = list(shape[1:]) or [1], got[1:] or [1]
            if len(want) != len(have) or any(w != h and -1 not in (w, h)
                                             for w, h in zip(want, have)):
                raise EngineError(f'Triton model {model} at {self.url}: tensor '
                                  f'{name} has shape {got}, {self._what()} expects {list(shape)}')

    def _what(self) -> str:
        return f"the model of this manifest ({self.metadata.get('checkpoint', '?')})"

    def _infer(self, graph: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run one graph on the server: inputs in ``GRAPH_IO`` order -> outputs in that order,
        shaped as the ONNX graph's own outputs."""
        inputs = [(name, np.ascontiguousarray(array, dtype)) for (name, dtype, _shape), array
                  in zip(self._tensors[graph]['inputs'], arrays)]
        result = self.connection.infer(TRITON_MODELS[graph], inputs, GRAPH_IO[graph]['outputs'])
        out = []
        for name, _dtype, shape in self._tensors[graph]['outputs']:
            array = result[name]
            if graph == 'image' and name == 'exists_logit':
                array = array.reshape(shape)          # PyTriton answers (1, 1), the graph (1,)
            out.append(array)
        return out

    # ---- Engine ---------------------------------------------------------------------------------
    def tokenize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # The tokenizer saved with the export, by ``tokenizers`` alone (no torch): see base.py.
        return self.tokenize_with_export(text, self._tokenizer_dir)

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(1, L) int64 ids and mask -> prompt (1, L, D) float32 (once per command)."""
        return self._infer('text', [input_ids, attention_mask])[0]

    def _run_point(self, uv: np.ndarray) -> np.ndarray:
        """(1, 2) normalised (u, v) -> prompt (1, 1, D)."""
        return self._infer('point', [uv])[0]

    def _run_image(self, image: np.ndarray, prompt: np.ndarray, prompt_mask: np.ndarray) -> dict:
        """(1, C, H_in, W_in), (1, L, D), (1, L) -> dict of the five image outputs (per frame)."""
        outs = self._infer('image', [image, prompt, prompt_mask])
        return dict(zip(GRAPH_IO['image']['outputs'], outs))

    def close(self) -> None:
        self.connection.close()
