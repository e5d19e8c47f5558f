"""Export SAM 3 to three ONNX graphs, check them, and compare them with torch.

Output directory (see :mod:`.graph_io` for tensor names and shapes)::

    vision.onnx  text.onnx  decoder.onnx      (+ *.onnx.data external weights when large)
    tokenizer.json  tokenizer_config.json  preprocessor_config.json
    sam3_export.json   manifest: source model sha256, shapes, opset, op types, parity numbers

An export directory is self-contained: the ONNX Runtime and TensorRT predictors read only it.
:func:`ensure_sam3_onnx` keeps one export per model sha256 under a cache root, so re-running a
command with the same checkpoint re-uses it.

Checks: ``onnx.checker.check_model(full_check=True)`` on every graph, then
:func:`check_onnx_parity` runs torch and ONNX Runtime on the same random frame and phrases.
Parity tolerances (``PARITY_TOL``), per output tensor:
``max|onnx - torch| <= atol + rtol * max|torch|`` with ``atol = 1e-4, rtol = 1e-3``, and the
binarised low-resolution masks (logit > 0, all queries) must agree with IoU >= 0.99 (the
union of all queries' masks, so one flipped boundary pixel on a small mask cannot fail it).

Exporter: the TorchScript-based ``torch.onnx.export(dynamo=False)``; the torch.export-based
default needs ``onnxscript`` (not a dependency) and the legacy one gives plain opset-17 ops that
TensorRT 10's ONNX parser reads.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .graph_io import GRAPH_FILES, GRAPH_IO, MANIFEST
from .model_dir import model_sha256, resolve_model_path
from .types import Sam3ExportError

OPSET = 17
#: Bump when graph contents change, so cached exports from older code are rebuilt.
EXPORT_VERSION = 1
PARITY_TOL = {'atol': 1e-4, 'rtol': 1e-3, 'mask_iou': 0.99}
_COPIED = ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
           'preprocessor_config.json')


@dataclass
class Sam3ExportResult:
    """What :func:`export_sam3_onnx` produced.

    Attributes:
        out_dir: the export directory.
        graphs: graph name -> ``.onnx`` path.
        model_sha256: sha256 of the source ``config.json`` + weights.
        parity: :func:`check_onnx_parity` numbers (empty when skipped).
        cached: True when a matching export already existed and nothing was exported.
        seconds: wall time of this call.
    """

    out_dir: Path
    graphs: dict[str, Path]
    model_sha256: str
    parity: dict = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d['out_dir'] = str(self.out_dir)
        d['graphs'] = {k: str(v) for k, v in self.graphs.items()}
        return d


def default_cache_root() -> Path:
    """``$UNIPIXEL_CACHE`` or ``$XDG_CACHE_HOME/unipixel_ros`` (``~/.cache/unipixel_ros``)."""
    root = os.environ.get('UNIPIXEL_CACHE')
    if root:
        return Path(root)
    return Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'unipixel_ros'


def _read_manifest(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _export_is_current(out_dir: Path, sha: str) -> bool:
    m = _read_manifest(out_dir)
    return bool(m and m.get('model_sha256') == sha and m.get('export_version') == EXPORT_VERSION
                and m.get('opset') == OPSET
                and all((out_dir / f).is_file() for f in GRAPH_FILES.values()))


def _export_graph(module, args: tuple, path: Path, graph: str) -> None:
    import torch

    with warnings.catch_warnings():
        # The legacy exporter warns that it is legacy, and tracing warns about shape-to-int
        # conversions that are intended (all shapes are fixed per checkpoint).
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', UserWarning)
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=GRAPH_IO[graph]['inputs'],
                          output_names=GRAPH_IO[graph]['outputs'], do_constant_folding=True)


def check_graph(path: str | Path) -> list[str]:
    """``onnx.checker`` (full check, works past 2 GB via the path) -> sorted op types."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and others
        raise Sam3ExportError(f'onnx.checker rejected {path}: {exc}') from exc
    model = onnx.load(str(path), load_external_data=False)
    opset = {o.domain: o.version for o in model.opset_import}.get('', None)
    if opset != OPSET:
        raise Sam3ExportError(f'{path} has opset {opset}, expected {OPSET}')
    foreign = sorted({f'{n.domain}::{n.op_type}' for n in model.graph.node
                      if n.domain not in ('', 'ai.onnx')})
    if foreign:
        raise Sam3ExportError(f'{path} uses non-standard ops: {foreign}')
    return sorted({n.op_type for n in model.graph.node})


def _parity_inputs(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random RGB frame (random noise alone gives nearly empty masks)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + rng.uniform(0, 6)), np.cos(5 * yy + rng.uniform(0, 6)),
                     np.sin(4 * (xx + yy))], -1)
    noise = rng.normal(0, 0.1, (h, w, 3))
    return np.clip((base + noise + 1) * 127.5, 0, 255).astype(np.uint8)


def _close(ref: np.ndarray, got: np.ndarray) -> tuple[float, float, bool]:
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    diff = float(np.abs(ref - got).max()) if ref.size else 0.0
    bound = PARITY_TOL['atol'] + PARITY_TOL['rtol'] * (float(np.abs(ref).max()) if ref.size else 0)
    return diff, bound, bool(diff <= bound)


def check_onnx_parity(model_path: str | Path, onnx_dir: str | Path,
                      phrases: tuple[str, ...] = ('red cup', 'the blue mug on the left'),
                      frame_hw: tuple[int, int] = (480, 640), threads: int | None = None,
                      seed: int = 0, torch_predictor=None) -> dict:
    """Compare torch and ONNX Runtime on one frame and a few phrases.

    Returns:
        dict: per tensor ``{'max_abs_diff', 'bound', 'ok'}``, ``mask_iou`` (binarised
        low-resolution masks, union over queries and phrases), ``ok`` overall, ``tolerances``.

    Raises:
        Sam3ExportError: when any number is out of tolerance (the dict is in ``exc.args[1]``).
    """
    from .onnx_runner import Sam3OnnxPredictor
    from .torch_backend import Sam3TorchPredictor

    tp = torch_predictor or Sam3TorchPredictor(model_path)
    op = Sam3OnnxPredictor(onnx_dir, threads=threads)
    rgb = _parity_inputs(frame_hw, seed)
    ti, oi = tp.encode_image(rgb), op.encode_image(rgb)
    report: dict = {'tolerances': dict(PARITY_TOL), 'frame_hw': list(frame_hw),
                    'phrases': list(phrases)}
    for k, (a, b) in enumerate(zip(ti.features, oi.features)):
        report[f'fpn_{k}'] = dict(zip(('max_abs_diff', 'bound', 'ok'),
                                      _close(a.float().cpu().numpy(), b)))
    inter = union = 0
    worst: dict[str, tuple] = {}
    for phrase in phrases:
        tt, ot = tp.encode_text(phrase), op.encode_text(phrase)
        checks = {'text_embeds': (tt.embeddings.float().cpu().numpy(), ot.embeddings)}
        # Decoder parity on torch's features, so it is not confounded by vision differences.
        tr = tp.decode_raw(ti, tt)
        orr = op._run_decoder(tuple(f.float().cpu().numpy() for f in ti.features),
                              tt.embeddings.float().cpu().numpy(), tt.mask.cpu().numpy())
        checks.update(pred_masks=(tr.mask_logits, orr.mask_logits),
                      pred_logits=(tr.logits, orr.logits), pred_boxes=(tr.boxes, orr.boxes),
                      presence_logits=(np.float32(tr.presence_logit),
                                       np.float32(orr.presence_logit)))
        for name, (a, b) in checks.items():
            r = _close(a, b)
            if name not in worst or r[0] > worst[name][0]:
                worst[name] = r
        # Masks end to end (each backend on its own features).
        e2e = op.decode_raw(oi, ot)
        tm, om = tr.mask_logits > 0, e2e.mask_logits > 0
        inter += int(np.logical_and(tm, om).sum())
        union += int(np.logical_or(tm, om).sum())
    for name, r in worst.items():
        report[name] = dict(zip(('max_abs_diff', 'bound', 'ok'), r))
    report['mask_iou'] = 1.0 if union == 0 else inter / union
    report['mask_pixels_union'] = union
    report['ok'] = bool(all(v['ok'] for v in report.values() if isinstance(v, dict) and 'ok' in v)
                        and report['mask_iou'] >= PARITY_TOL['mask_iou'])
    if not report['ok']:
        raise Sam3ExportError(f'ONNX parity out of tolerance: {json.dumps(report)}', report)
    return report


def export_sam3_onnx(model_path: str | Path, out_dir: str | Path, parity: bool = True,
                     force: bool = False, threads: int | None = None,
                     model_sha: str | None = None) -> Sam3ExportResult:
    """Export ``vision``, ``text`` and ``decoder`` graphs of a SAM 3 checkpoint and check them.

    Args:
        model_path: Hugging Face id or local model directory.
        out_dir: export directory (created). When it already holds an export of the same
            model sha256 and exporter version, nothing is redone (``cached=True``).
        parity: run :func:`check_onnx_parity` after exporting (raises when out of tolerance).
        force: re-export even when a current export exists.
        threads: ONNX Runtime intra-op threads for the parity run.
        model_sha: the model's :func:`model_sha256` when the caller already has it (hashing
            the full 3.4 GB checkpoint takes seconds).

    Returns:
        Sam3ExportResult.

    Raises:
        Sam3ModelError: bad model path. Sam3ExportError: checker or parity failure.
    """
    import torch

    from .torch_backend import Sam3TorchPredictor

    t0 = time.perf_counter()
    model_dir = resolve_model_path(model_path)
    sha = model_sha or model_sha256(model_dir)
    out = Path(out_dir)
    graphs = {g: out / f for g, f in GRAPH_FILES.items()}
    if not force and _export_is_current(out, sha):
        m = _read_manifest(out)
        return Sam3ExportResult(out, graphs, sha, m.get('parity', {}), cached=True,
                                seconds=time.perf_counter() - t0)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an interrupted export must not look current
    tp = Sam3TorchPredictor(model_dir)
    S_h, S_w = tp.input_size
    pixel = torch.zeros(1, 3, S_h, S_w)
    with torch.inference_mode():
        feats = tp.vision_graph(pixel)
        ids, mask = (torch.from_numpy(a) for a in tp.tokenizer('red cup'))
        emb = tp.text_graph(ids, mask)
    args = {'vision': (pixel,), 'text': (ids, mask), 'decoder': (*feats, emb, mask)}
    modules = {'vision': tp.vision_graph, 'text': tp.text_graph, 'decoder': tp.decoder_graph}
    ops, shapes = {}, {}
    timings = {}
    for g in GRAPH_IO:
        ts = time.perf_counter()
        with torch.no_grad():
            _export_graph(modules[g], args[g], graphs[g], g)
        ops[g] = check_graph(graphs[g])
        timings[f'export_{g}_s'] = round(time.perf_counter() - ts, 3)
    shapes = {name: list(t.shape) for name, t in zip(GRAPH_IO['vision']['outputs'], feats)}
    shapes.update(pixel_values=list(pixel.shape), input_ids=list(ids.shape),
                  text_embeds=list(emb.shape))
    for name in _COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out / name)
    report = {}
    if parity:
        report = check_onnx_parity(model_dir, out, threads=threads, torch_predictor=tp)
    manifest = {
        'format': 'unipixel_ros sam3 onnx export', 'export_version': EXPORT_VERSION,
        'model_sha256': sha, 'source': str(model_path), 'opset': OPSET,
        'graphs': GRAPH_FILES, 'io': GRAPH_IO, 'shapes': shapes, 'op_types': ops,
        'parity': report, 'torch': torch.__version__, 'timings': timings,
        'num_queries': int(tp.model.config.detr_decoder_config.num_queries),
    }
    # Written last: its presence marks a complete export.
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return Sam3ExportResult(out, graphs, sha, report, cached=False,
                            seconds=time.perf_counter() - t0)


def ensure_sam3_onnx(model_path: str | Path, cache_root: str | Path | None = None,
                     **kwargs) -> Sam3ExportResult:
    """Export once per model into ``<cache_root>/sam3/<sha256[:16]>/``.

    ``cache_root`` defaults to :func:`default_cache_root`; ``kwargs`` go to
    :func:`export_sam3_onnx`.
    """
    model_dir = resolve_model_path(model_path)
    sha = model_sha256(model_dir)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return export_sam3_onnx(model_dir, root / 'sam3' / sha[:16], model_sha=sha, **kwargs)
