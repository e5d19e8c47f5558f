"""SAM 3 ONNX export: checker, parity with torch, export cache, torch-free ONNX Runtime runner."""
import json
import subprocess
import sys

import numpy as np
import pytest

from sam3_fixtures import smooth_frame
from unipixel_ros.backends.sam3.export import (OPSET, PARITY_TOL, check_graph,
                                               ensure_sam3_onnx, export_sam3_onnx)
from unipixel_ros.backends.sam3.graph_io import GRAPH_FILES, GRAPH_IO, MANIFEST

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...


def test_export_passes_checker_and_parity(tiny_sam3_export):
    import onnx

    r = tiny_sam3_export
    assert not r.cached and set(r.graphs) == set(GRAPH_IO)
    for name, path in r.graphs.items():
        assert check_graph(path)  # onnx.checker full check + opset + default-domain ops
        m = onnx.load(str(path))
        assert [i.name for i in m.graph.input] == GRAPH_IO[name]['inputs']
        assert [o.name for o in m.graph.output] == GRAPH_IO[name]['outputs']
    p = r.parity
    assert p['ok'] and p['mask_iou'] >= PARITY_TOL['mask_iou'] and p['mask_pixels_union'] > 0
    for name in ('fpn_0', 'fpn_1', 'fpn_2', 'text_embeds', 'pred_masks', 'pred_logits',
                 'pred_boxes', 'presence_logits'):
        assert p[name]['ok'] and p[name]['max_abs_diff'] <= p[name]['bound'], name
    manifest = json.loads((r.out_dir / MANIFEST).read_text())
    assert manifest['model_sha256'] == r.model_sha256 and manifest['opset'] == OPSET
    assert manifest['shapes']['fpn_2'] == [1, 32, 16, 16]


def test_text_embeddings_are_decoder_inputs(tiny_sam3_export):
    """A new phrase needs no new graph: the decoder takes the embedding as an input."""
    import onnx

    m = onnx.load(str(tiny_sam3_export.graphs['decoder']))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    assert inputs['text_embeds'] == [1, 32, 32] and inputs['text_mask'] == [1, 32]


def test_export_is_cached_by_model_sha256(tiny_sam3_dir, tiny_sam3_export, tmp_path):
    again = export_sam3_onnx(tiny_sam3_dir, tiny_sam3_export.out_dir)
    assert again.cached and again.model_sha256 == tiny_sam3_export.model_sha256
    assert again.parity == tiny_sam3_export.parity
    # a different model in the same directory is re-exported, not served from the cache
    manifest = json.loads((tiny_sam3_export.out_dir / MANIFEST).read_text())
    (tmp_path / 'other').mkdir()
    for f in list(GRAPH_FILES.values()) + [MANIFEST]:
        (tmp_path / 'other' / f).write_bytes((tiny_sam3_export.out_dir / f).read_bytes())
    manifest['model_sha256'] = '0' * 64
    (tmp_path / 'other' / MANIFEST).write_text(json.dumps(manifest))
    redo = export_sam3_onnx(tiny_sam3_dir, tmp_path / 'other', parity=False)
    assert not redo.cached
    cached = ensure_sam3_onnx(tiny_sam3_dir, cache_root=tmp_path / 'cache', parity=False)
    assert cached.out_dir.parent.name == 'sam3'
    assert cached.out_dir.name == tiny_sam3_export.model_sha256[:16]
    assert ensure_sam3_onnx(tiny_sam3_dir, cache_root=tmp_path / 'cache').cached


def test_onnx_predictor_matches_torch_end_to_end(tiny_sam3_export, tiny_torch_predictor):
    from unipixel_ros.backends.sam3.onnx_runner import Sam3OnnxPredictor

    op = Sam3OnnxPredictor(tiny_sam3_export.out_dir, threads=1)
    tp = tiny_torch_predictor
    rgb = smooth_frame(90, 120, seed=3)
    ti, oi = tp.encode_image(rgb), op.encode_image(rgb)
    assert [f.shape for f in oi.features] == [(1, 32, 64, 64), (1, 32, 32, 32), (1, 32, 16, 16)]
    for phrase in ('red cup', 'mug'):
        t = tp.decode(ti, tp.encode_text(phrase), score_threshold=0.0, max_candidates=8)
        o = op.decode(oi, op.encode_text(phrase), score_threshold=0.0, max_candidates=8)
        # random weights give near-tied scores; compare per query index, not by rank
        order_t, order_o = np.argsort(t.query_indices), np.argsort(o.query_indices)
        common = np.intersect1d(t.query_indices, o.query_indices)
        assert len(common) >= 6
        sel_t = order_t[np.isin(np.sort(t.query_indices), common)]
        sel_o = order_o[np.isin(np.sort(o.query_indices), common)]
        np.testing.assert_allclose(o.boxes[sel_o], t.boxes[sel_t], atol=1e-3)
        np.testing.assert_allclose(o.scores[sel_o], t.scores[sel_t], atol=1e-5)
        inter = np.logical_and(o.masks[sel_o], t.masks[sel_t]).sum()
        union = np.logical_or(o.masks[sel_o], t.masks[sel_t]).sum()
        assert union == 0 or inter / union >= 0.99
        assert o.presence == pytest.approx(t.presence, abs=1e-5)
    assert op.text_encoder_calls == 2


def test_onnx_runner_imports_neither_torch_nor_transformers():
    code = ('import sys, unipixel_ros.backends.sam3.onnx_runner, unipixel_ros.backends.sam3; '
            'bad = [m for m in ("torch", "transformers") if m in sys.modules]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


def test_onnx_predictor_runs_without_torch(tiny_sam3_export):
    """The runtime path end to end in a process where importing torch fails."""
    code = f'''
import sys
sys.modules["torch"] = None          # any "import torch" now raises ImportError
sys.modules["transformers"] = None
import numpy as np
from unipixel_ros.backends.sam3.onnx_runner import Sam3OnnxPredictor

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...
p = Sam3OnnxPredictor({str(tiny_sam3_export.out_dir)!r}, threads=1)
c = p.decode(p.encode_image(np.zeros((30, 40, 3), np.uint8)), p.encode_text("cup"),
             score_threshold=0.0)
assert c.masks.shape == (20, 30, 40), c.masks.shape
'''
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)
