"""The model server: a Triton Inference Server (PyTriton) hosting the exported graphs.

    python -m unipixel_ros.serving.triton_server --model-dir EXPORT --grpc-port 8001

Runs in the server's own environment (``nvidia-pytriton``, ``onnxruntime``, numpy < 2; no torch,
no ROS): ``unipixel-ros serve`` (:mod:`unipixel_ros.serving.launch`) exports the checkpoint and
starts this module there. The encode-once split is kept. A unipixel export is served as three
Triton models (see ``engines/triton_engine.py`` for the tensors):

* ``unipixel_text``: token ids -> prompt tokens, once per command per robot;
* ``unipixel_image``: image + prompt -> mask and logits, per frame;
* ``unipixel_point``: a click -> a one-token prompt.

A SAM 3 export (``sam3_export.json``) as two (``sam3_models``; the tensors are
``backends/sam3/graph_io.TRITON_IO``):

* ``sam3_text``: token ids -> text embedding, once per concept of a command;
* ``sam3_frame``: uint8 frame + every concept's embedding -> the passing queries per concept.

Each has Triton's dynamic batcher: requests from several robots that arrive within
``max_queue_delay_us`` are handed to one call. The exported graphs have a fixed batch of 1, so
that call runs the graph once per request (ONNX Runtime); on a GPU host a batch-dynamic graph
would turn the group into one launch (see docs/FLEET.md).

Logs: one line per lifecycle step on stderr, then every ``stats_every_s`` the requests and
batches per model (how much the batcher grouped). Ready when "ready:" is logged (and Triton's
``/v2/health/ready`` says so). SIGINT or SIGTERM stops Triton and the Python backends cleanly.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

LOG = logging.getLogger('unipixel_ros.serving')


class _Stats:
    """Requests and batches per model (thread-safe counters)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict = {}

    def add(self, model: str, requests: int, seconds: float) -> None:
        with self.lock:
            c = self.counts.setdefault(model, {'requests': 0, 'batches': 0, 'busy_s': 0.0,
                                               'max_batch': 0})
            c['requests'] += requests
            c['batches'] += 1
            c['busy_s'] += seconds
            c['max_batch'] = max(c['max_batch'], requests)

    def line(self) -> str:
        with self.lock:
            return ', '.join(f"{m}: {c['requests']} requests in {c['batches']} batches "
                             f"(max {c['max_batch']}, "
                             f"{1e3 * c['busy_s'] / max(1, c['batches']):.1f} ms per batch)"
                             for m, c in sorted(self.counts.items())) or 'idle'


def make_infer_functions(model_dir: Path, threads: int, stats: _Stats) -> tuple[dict, dict]:
    """({graph: PyTriton infer callable}, the export's manifest) over ONNX Runtime sessions of
    an export directory.

    Each callable takes a list of requests (a dynamic batch: PyTriton hands the requests Triton
    grouped as separate dicts of (1, ...) arrays; no ``@batch`` stacking, since the graphs take a
    batch of 1), runs the graph once per request and returns one output dict per request.
    """
    from unipixel_ros.engines.onnx_engine import OnnxRuntimeEngine
    from unipixel_ros.model.graph_io import GRAPH_IO

    engine = OnnxRuntimeEngine(model_dir, threads=threads, spin=False)
    funcs = {}
    for graph in GRAPH_IO:
        session = engine.sessions[graph]
        names_in, names_out = GRAPH_IO[graph]['inputs'], GRAPH_IO[graph]['outputs']

        def infer(requests, session=session, names_in=names_in, names_out=names_out,
                  graph=graph):
            t0 = time.perf_counter()
            responses = []
            for request in requests:
                feeds = {n: np.ascontiguousarray(request[n]) for n in names_in}
                outs = session.run(names_out, feeds)
                if graph == 'image':   # exists_logit (1,) -> (1, 1): batch + one value
                    outs = [o.reshape(1, 1) if n == 'exists_logit' else o
                            for n, o in zip(names_out, outs)]
                responses.append(dict(zip(names_out, outs)))
            stats.add(graph, len(requests), time.perf_counter() - t0)
            return responses

        funcs[graph] = infer
    return funcs, engine.metadata


def _tensors(manifest: dict):
    """PyTriton Tensor specs per graph: the graph's shapes without the batch dimension."""
    from pytriton.model_config import Tensor

    from unipixel_ros.engines.triton_engine import graph_tensors

    specs = {}
    for graph, io in graph_tensors(manifest).items():
        def spec(items):
            out = []
            for name, dtype, shape in items:
                dims = tuple(shape[1:]) or (1,)     # exists_logit: one value per request
                out.append(Tensor(name=name, dtype=dtype, shape=dims))
            return out
        specs[graph] = (spec(io['inputs']), spec(io['outputs']))
    return specs


def _describe(manifest: dict) -> str:
    """What a manifest exports: the unipixel checkpoint, or the SAM 3 model and its sha256."""
    if 'checkpoint' in manifest:
        return f"checkpoint {manifest['checkpoint']}"
    return (f"SAM 3 {manifest.get('source', '?')}, sha256 "
            f"{str(manifest.get('model_sha256', '?'))[:12]}")


def serve(model_dir: str | Path, grpc_port: int = 8001, http_port: int = 8000,
          metrics_port: int = 8002, address: str = '127.0.0.1', threads: int = 0,
          max_batch_size: int = 8, max_queue_delay_us: int = 2000, stats_every_s: float = 30.0,
          stop: threading.Event | None = None, workspace: str | None = None) -> None:
    """Serve an ONNX export with Triton until SIGINT/SIGTERM (or ``stop`` is set).

    Args:
        model_dir: ONNX export directory: unipixel (``model.json`` + graphs: the three
            ``unipixel_*`` models) or SAM 3 (``sam3_export.json``: ``sam3_text`` and
            ``sam3_frame``, see ``sam3_models``).
        grpc_port, http_port, metrics_port: Triton's ports on ``address``.
        address: interface to listen on ('127.0.0.1': this machine only; '0.0.0.0' for a fleet).
        threads: ONNX Runtime intra-op threads per graph (0 = one per physical core).
        max_batch_size: most requests the dynamic batcher groups into one call.
        max_queue_delay_us: longest wait of a request for others to join its batch, microseconds.
        stats_every_s: period of the requests/batches log line, seconds (0 = never).
        stop: an event that ends serving when set (tests, embedding); signals set it too.
        workspace: PyTriton's folder for Triton's binaries, model store and sockets (None: a
            new one under ~/.cache/pytriton, removed on a clean stop).
    """
    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig

    from .sam3_models import is_sam3_export

    stop = stop or threading.Event()
    t0 = time.monotonic()
    stats = _Stats()
    if is_sam3_export(model_dir):
        from unipixel_ros.backends.sam3.graph_io import TRITON_MODELS

        from .sam3_models import make_sam3_infer_functions, sam3_tensors
        funcs, manifest = make_sam3_infer_functions(Path(model_dir), threads, stats)
        specs = sam3_tensors()
    else:
        from unipixel_ros.engines.triton_engine import TRITON_MODELS
        funcs, manifest = make_infer_functions(Path(model_dir), threads, stats)
        specs = _tensors(manifest)
    LOG.info('loaded %s (%s) in %.1f s', model_dir, _describe(manifest),
             time.monotonic() - t0)
    config = TritonConfig(grpc_address=address, grpc_port=grpc_port, http_address=address,
                          http_port=http_port, metrics_address=address, metrics_port=metrics_port,
                          exit_on_error=True, log_verbose=0)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: (LOG.info('signal %d: stopping', signum),
                                                   stop.set()))
    with Triton(config=config, workspace=workspace) as triton:
        for graph, model in TRITON_MODELS.items():
            inputs, outputs = specs[graph]
            delay = 0 if graph == 'text' else max_queue_delay_us
            triton.bind(model_name=model, infer_func=funcs[graph], inputs=inputs,
                        outputs=outputs, strict=False,
                        config=ModelConfig(max_batch_size=max_batch_size, batching=True,
                                           batcher=DynamicBatcher(
                                               max_queue_delay_microseconds=delay)))
        triton.run()
        LOG.info('ready: models %s on grpc://%s:%d (http %d, metrics %d), max batch %d, queue '
                 'delay %d us, after %.1f s', ', '.join(TRITON_MODELS.values()), address,
                 grpc_port, http_port, metrics_port, max_batch_size, max_queue_delay_us,
                 time.monotonic() - t0)
        last = time.monotonic()
        while not stop.wait(0.5):
            if stats_every_s and time.monotonic() - last >= stats_every_s:
                LOG.info('served: %s', stats.line())
                last = time.monotonic()
        LOG.info('stopping; served: %s', stats.line())
    LOG.info('stopped')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='python -m unipixel_ros.serving.triton_server',
                                description=__doc__.splitlines()[0])
    p.add_argument('--model-dir', required=True, help='ONNX export directory (model.json)')
    p.add_argument('--grpc-port', type=int, default=8001)
    p.add_argument('--http-port', type=int, default=8000)
    p.add_argument('--metrics-port', type=int, default=8002)
    p.add_argument('--address', default='127.0.0.1')
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--max-batch-size', type=int, default=8)
    p.add_argument('--max-queue-delay-us', type=int, default=2000)
    p.add_argument('--stats-every-s', type=float, default=30.0)
    p.add_argument('--workspace', help="PyTriton's working folder (default: a new one)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='[unipixel-serve] %(asctime)s %(message)s')
    for noisy in ('pytriton', 'tritonclient'):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    LOG.info('serving %s', args.model_dir)
    serve(args.model_dir, args.grpc_port, args.http_port, args.metrics_port, args.address,
          args.threads, args.max_batch_size, args.max_queue_delay_us, args.stats_every_s,
          workspace=args.workspace)
    return 0


if __name__ == '__main__':
    sys.exit(main())
