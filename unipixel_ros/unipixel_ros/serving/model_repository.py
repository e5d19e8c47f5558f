"""``unipixel-ros export --format triton``: a model repository for the official Triton container.

Layout written under ``out``::

    model_repository/
        unipixel_text/config.pbtxt   1/model.onnx   (or 1/model.plan with TensorRT)
        unipixel_point/config.pbtxt  1/model.onnx
        unipixel_image/config.pbtxt  1/model.onnx
    client/
        model.json  tokenizer/       what a robot's ``engine:=triton`` reads (``model_path``)

The graphs are the ONNX export's (``model/export.py``), batch fixed at 1, so the configs say
``max_batch_size: 0`` and give full shapes; a robot sends exactly the tensors it sends to
``unipixel-ros serve`` (``engines/triton_engine.py``), so one client talks to both servers.
Concurrency on a GPU host comes from ``instance_group`` copies (``instances``), not batching.

Where TensorRT is importable (a GPU host with the ``tensorrt`` wheel), ``tensorrt=True`` builds
plans with ``engines.tensorrt_engine.build_engines`` and writes ``platform: "tensorrt_plan"``
configs; a plan only loads in a Triton whose TensorRT has the same version, so build it with
the container's TensorRT (see docs/FLEET.md).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from unipixel_ros.engines.onnx_engine import load_manifest
from unipixel_ros.engines.triton_engine import TRITON_MODELS, graph_tensors

_TYPES = {np.float32: 'TYPE_FP32', np.int64: 'TYPE_INT64'}


def _tensor_block(kind: str, items) -> str:
    rows = []
    for name, dtype, shape in items:
        dims = ', '.join(str(int(d)) for d in shape)
        rows.append(f'  {{ name: "{name}" data_type: {_TYPES[dtype]} dims: [ {dims} ] }}')
    return f'{kind} [\n' + ',\n'.join(rows) + '\n]\n'


def config_pbtxt(graph: str, manifest: dict, platform: str = 'onnxruntime_onnx',
                 instances: int = 1) -> str:
    """The ``config.pbtxt`` text of one graph's Triton model.

    Args:
        graph: 'text', 'point' or 'image'.
        manifest: the export's ``model.json``.
        platform: 'onnxruntime_onnx' or 'tensorrt_plan'.
        instances: model instances Triton runs in parallel (on a GPU host: per GPU).
    """
    io = graph_tensors(manifest)[graph]
    sha = manifest.get('checkpoint_sha256', '')
    return (f'# {TRITON_MODELS[graph]}: the {graph} graph of {manifest.get("checkpoint", "?")} '
            '(unipixel-ros export --format triton)\n'
            f'name: "{TRITON_MODELS[graph]}"\n'
            f'platform: "{platform}"\n'
            'max_batch_size: 0\n'
            + _tensor_block('input', io['inputs'])
            + _tensor_block('output', io['outputs'])
            + f'instance_group [ {{ count: {int(instances)} }} ]\n'
            f'parameters {{ key: "checkpoint_sha256" value: {{ string_value: "{sha}" }} }}\n')


def write_model_repository(export_dir: str | Path, out: str | Path, tensorrt: bool = False,
                           instances: int = 1) -> Path:
    """Write the repository (see the module docstring) from an ONNX export; returns ``out``.

    Args:
        export_dir: an ONNX export directory (``model.json`` + graphs, sha256 checked).
        out: output directory (created; an existing ``model_repository/`` in it is replaced).
        tensorrt: TensorRT plans instead of ONNX graphs (needs TensorRT and CUDA here).
        instances: ``instance_group`` count of every model.
    Raises:
        EngineError: a corrupt export, or ``tensorrt`` without TensorRT.
    """
    export_dir, out = Path(export_dir), Path(out)
    manifest = load_manifest(export_dir, verify=True)
    plans = {}
    if tensorrt:
        from unipixel_ros.engines.tensorrt_engine import build_engines
        plans = build_engines(export_dir)
    repo = out / 'model_repository'
    if repo.exists():
        shutil.rmtree(repo)
    for graph, model in TRITON_MODELS.items():
        version = repo / model / '1'
        version.mkdir(parents=True)
        if tensorrt:
            shutil.copyfile(plans[graph], version / 'model.plan')
            platform = 'tensorrt_plan'
        else:
            shutil.copyfile(export_dir / manifest['graphs'][graph]['file'], version / 'model.onnx')
            platform = 'onnxruntime_onnx'
        (repo / model / 'config.pbtxt').write_text(config_pbtxt(graph, manifest, platform,
                                                                instances))
    client = out / 'client'
    if client.exists():
        shutil.rmtree(client)
    client.mkdir(parents=True)
    (client / 'model.json').write_text(json.dumps(manifest, indent=2, sort_keys=True) + '\n')
    tok = manifest.get('tokenizer')
    if tok and (export_dir / tok).is_dir():
        shutil.copytree(export_dir / tok, client / tok)
    return out


def docker_command(out: str | Path, image: str = 'nvcr.io/nvidia/tritonserver:24.10-py3') -> str:
    """The ``docker run`` line that serves ``out/model_repository`` with the official container
    on a GPU host (gRPC 8001, HTTP 8000, metrics 8002)."""
    repo = Path(out).resolve() / 'model_repository'
    return (f'docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 '
            f'-v {repo}:/models {image} tritonserver --model-repository=/models')
