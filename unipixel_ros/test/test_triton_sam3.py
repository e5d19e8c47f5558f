"""``unipixel-ros serve --backend sam3`` against a real Triton Inference Server (PyTriton, in its
own process and venv) over real gRPC: per-concept candidates and referring answers identical to
in-process ONNX Runtime, all of a command's concepts in one frame request, the CLI's readiness
check, and a clear error when the server is down. Tiny randomly initialised SAM 3 (224 px, 20
queries): these tests are about transport, not accuracy.

Skipped, with the reason, where no environment has nvidia-pytriton (scripts/bootstrap.sh makes
``.venv-triton``; ``UNIPIXEL_TRITON_PYTHON`` names another).
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from sam3_fixtures import smooth_frame
from test_triton import _free_port

pytest.importorskip('tritonclient.grpc')
pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export

PHRASES = ['red cup', 'blue bowl', 'cup', 'green block', 'mug', 'small yellow box',
           'banana', 'the plate', 'screwdriver', 'white bottle']
#: referring commands: one, two and three concepts (relations, superlatives, colours)
COMMANDS = ['the red cup', 'the cup left of the bowl', 'the biggest box', 'the mug',
            'the block next to the plate', 'the closest bottle', 'the blue bowl',
            'the cup behind the box', 'the leftmost block', 'the banana right of the mug and the '
            'plate']


@pytest.fixture(scope='module')
def sam3_server(tiny_sam3_export, tmp_path_factory):
    from unipixel_ros.serving.launch import (ServeError, server_python, served_models,
                                             start_server, stop_server, wait_until_ready)
    try:
        server_python()
    except ServeError as exc:
        pytest.skip(str(exc))
    port = _free_port()
    log_path = tmp_path_factory.mktemp('sam3_triton') / 'server.log'
    log = open(log_path, 'w')
    proc = start_server(tiny_sam3_export.out_dir, port, log=log, threads=1, stats_every_s=0)
    try:
        wait_until_ready(f'127.0.0.1:{port}', timeout_s=120, proc=proc,
                         models=served_models('sam3'))
    except ServeError:
        stop_server(proc)
        raise AssertionError(log_path.read_text()[-3000:])
    proc.url, proc.log_path = f'127.0.0.1:{port}', log_path
    yield proc
    rc = stop_server(proc)
    assert rc == 0, f'the server did not stop cleanly ({rc}):\n{log_path.read_text()[-3000:]}'
    assert 'stopped' in log_path.read_text()


@pytest.fixture(scope='module')
def local_and_remote(tiny_sam3_export, sam3_server):
    from unipixel_ros.backends.sam3.onnx_runner import Sam3OnnxPredictor
    from unipixel_ros.backends.sam3.triton_client import Sam3TritonPredictor

    # an untrained model scores its queries alike within a phrase (about sigmoid(0) times the
    # phrase's presence): a threshold at the median score over phrases keeps every candidate
    # of some phrases and none of others
    probe = Sam3OnnxPredictor(tiny_sam3_export.out_dir, threads=1, score_threshold=0.0)
    image = probe.encode_image(smooth_frame(120, 160, seed=0))
    t = float(np.median(np.concatenate([probe.decode(image, probe.encode_text(p)).scores
                                        for p in PHRASES])))
    local = Sam3OnnxPredictor(tiny_sam3_export.out_dir, threads=1, score_threshold=t)
    remote = Sam3TritonPredictor(tiny_sam3_export.out_dir, url=sam3_server.url,
                                 timeout_s=30.0, score_threshold=t)
    yield local, remote
    remote.close()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_candidates_match_in_process_onnx_runtime(local_and_remote):
    """50 (frame, phrase) pairs: the same queries, boxes and scores, every mask IoU >= 0.999."""
    local, remote = local_and_remote
    assert remote.backend == 'triton' and 'torch' not in vars(sys.modules[type(remote).__module__])
    ious, counts = [], []
    # the predictors' median threshold, and per call: nothing passes, everything passes
    for seed, threshold in enumerate((None, 1.0, None, 0.0, None)):
        rgb = smooth_frame(120, 160, seed=seed)
        img_l, img_r = local.encode_image(rgb), remote.encode_image(rgb)
        texts_r = [remote.encode_text(p) for p in PHRASES]
        # one request for ten concepts
        got = remote.decode_many(img_r, texts_r, score_threshold=threshold)
        for phrase, c_r in zip(PHRASES, got):
            c_l = local.decode(img_l, local.encode_text(phrase), score_threshold=threshold)
            assert c_r.phrase == phrase
            np.testing.assert_array_equal(c_r.query_indices, c_l.query_indices)
            np.testing.assert_allclose(c_r.scores, c_l.scores, atol=1e-5)
            np.testing.assert_allclose(c_r.boxes, c_l.boxes, atol=1e-3)
            assert abs(c_r.presence - c_l.presence) < 1e-5
            assert c_r.masks.shape == c_l.masks.shape
            ious += [_iou(a, b) for a, b in zip(c_l.masks, c_r.masks)]
            counts.append(len(c_l))
    assert len(counts) >= 50 and min(ious) >= 0.999, min(ious)
    assert 0 in counts and max(counts) > 1, f'empty and multi-candidate answers: {counts}'
    # a phrase's embedding is asked from the server once, then cached
    calls = remote.text_encoder_calls
    remote.encode_text('red cup')
    assert remote.text_encoder_calls == calls
    print(f'{len(counts)} concept answers, {len(ious)} masks, min IoU {min(ious):.6f}, '
          f'candidates per answer {min(counts)}-{max(counts)}')


def test_one_request_equals_one_request_per_concept(local_and_remote):
    _, remote = local_and_remote
    rgb = smooth_frame(90, 120, seed=9)
    image = remote.encode_image(rgb)
    texts = [remote.encode_text(p) for p in PHRASES[:3]]
    together = remote.decode_many(image, texts, max_candidates=3)
    for text, c in zip(texts, together):
        alone = remote.decode(image, text, max_candidates=3)
        assert len(c) <= 3
        np.testing.assert_array_equal(c.query_indices, alone.query_indices)
        np.testing.assert_array_equal(c.masks, alone.masks)
    assert remote.decode_many(image, []) == []


def test_referring_answers_match_in_process(local_and_remote):
    """The node's predictor (SAM 3 + the referring resolver) over the server: the same found /
    not found, ambiguity question and mask on 50 commands x frames."""
    from unipixel_ros.inference.resolver import ResolverSettings
    from unipixel_ros.inference.sam3_referring import Sam3ReferringPredictor
    from unipixel_ros.inference.settings import DecisionSettings
    from unipixel_ros.perception import CameraIntrinsics
    from unipixel_ros.perception.cloud import set_geometry_threads

    local, remote = local_and_remote
    loose = ResolverSettings(min_presence=0.0, min_score=0.0, min_area_px=1)
    a = Sam3ReferringPredictor(local, DecisionSettings(metric_attributes='none'), loose)
    b = Sam3ReferringPredictor(remote, DecisionSettings(metric_attributes='none'), loose)
    h, w = 120, 160
    intr = CameraIntrinsics(fx=150.0, fy=150.0, cx=w / 2, cy=h / 2, width=w, height=h)
    yy, xx = np.mgrid[0:h, 0:w]
    outcomes = []
    set_geometry_threads(1)    # the node's default: the support-plane RANSAC is then repeatable
    try:
        for seed in range(5):
            rgb = smooth_frame(h, w, seed=100 + seed)
            depth = (0.6 + 0.002 * yy + 0.001 * xx).astype(np.float32)
            for command in COMMANDS:
                pa = a.predict(rgb, a.encode_text(command), depth_m=depth, intrinsics=intr)
                pb = b.predict(rgb, b.encode_text(command), depth_m=depth, intrinsics=intr)
                assert (pa.found, pa.question, pa.reason) == (pb.found, pb.question, pb.reason)
                if pa.found:
                    assert _iou(pa.mask, pb.mask) >= 0.999
                outcomes.append('found' if pa.found else 'question' if pa.question else 'no')
    finally:
        set_geometry_threads(0)
    assert len(outcomes) >= 50
    assert outcomes.count('found') > 0 and outcomes.count('found') < len(outcomes), outcomes
    print({k: outcomes.count(k) for k in set(outcomes)})


def test_the_node_loader_builds_the_remote_predictor(tiny_sam3_export, sam3_server):
    """What unipixel_node does for backend:=sam3 engine:=triton (parameters triton_url and
    triton_timeout_s), then one grounding through the server."""
    from unipixel_ros.inference.loading import load_sam3_referring
    from unipixel_ros.perception import CameraIntrinsics

    _, predictor = load_sam3_referring(tiny_sam3_export.out_dir, 'triton', url=sam3_server.url,
                                       timeout_s=30.0, spin=False)
    assert predictor.sam3.backend == 'triton' and predictor.sam3.max_candidates == 20
    h, w = 120, 160
    pred = predictor.predict(smooth_frame(h, w, seed=3), predictor.encode_text('the red cup'),
                             depth_m=np.full((h, w), 0.7, np.float32),
                             intrinsics=CameraIntrinsics(fx=150.0, fy=150.0, cx=w / 2,
                                                         cy=h / 2, width=w, height=h))
    assert pred.mask.shape == (h, w) and set(pred.timings) >= {'decode_ms', 'resolve_ms'}
    predictor.engine.close()


def test_the_cli_check_sees_the_sam3_models(sam3_server):
    ok = subprocess.run([sys.executable, '-m', 'unipixel_ros.cli', 'serve', '--check',
                         '--backend', 'sam3', '--port', sam3_server.url.rsplit(':', 1)[1]],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert 'ready' in ok.stdout
    # the same server asked for the unipixel models: not ready, and says which is missing
    no = subprocess.run([sys.executable, '-m', 'unipixel_ros.cli', 'serve', '--check',
                         '--port', sam3_server.url.rsplit(':', 1)[1], '--check-timeout', '2'],
                        capture_output=True, text=True, timeout=120)
    assert no.returncode == 1 and 'not ready' in no.stderr


def test_serve_sam3_needs_a_model_path():
    run = subprocess.run([sys.executable, '-m', 'unipixel_ros.cli', 'serve', '--backend',
                          'sam3'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and 'needs --model-path' in run.stderr


def test_a_server_that_is_down_is_a_clear_error(tiny_sam3_export):
    from unipixel_ros.backends.sam3.triton_client import Sam3TritonPredictor
    from unipixel_ros.engines import EngineUnavailable

    p = Sam3TritonPredictor(tiny_sam3_export.out_dir, url=f'127.0.0.1:{_free_port()}',
                            timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(EngineUnavailable, match='unavailable'):
        p.encode_text('red cup')
    assert time.monotonic() - t0 < 3.0 and p.state == 'unavailable'
    image = p.encode_image(smooth_frame())
    with pytest.raises(ValueError, match='uint8'):
        p.encode_image(np.zeros((4, 4), np.float32))
    assert image.image_hw == (60, 80)
    p.close()
