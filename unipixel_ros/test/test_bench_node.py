"""``unipixel-ros bench node`` end to end: a real unipixel_node process fed a camera stream by the
bench process, a few seconds with a tiny model; the JSON keys our checks read must be there and
hang together (the speed numbers themselves are for ``make bench``, not for a test)."""
import json
import subprocess
import sys

import torch

from unipixel_ros.model.checkpoint import save_checkpoint
from unipixel_ros.model.network import ModelConfig, UniPixelNet

TINY = ModelConfig(input_width=64, input_height=48, dim=32, widths=(8, 8, 16, 16, 32),
                   blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1, object_slots=4)
CONTRACT = ('latency_ms_median', 'latency_ms_p95', 'overhead_ms_median', 'frames_in',
            'frames_processed', 'frames_dropped', 'rss_mb')


def test_bench_node_measures_a_real_node(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(UniPixelNet(TINY), tmp_path / 'tiny.safetensors')
    out = tmp_path / 'node.json'
    run = subprocess.run(
        [sys.executable, '-m', 'unipixel_ros.cli', 'bench', 'node', '--engine', 'torch',
         '--checkpoint', str(ckpt), '--seconds', '4', '--rate', '10', '--threads', '1',
         '--json', str(out), '--subscribe-all', '--param', 'geometry_threads:=0'],
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert all(result.get(k) is not None for k in CONTRACT), result
    assert out.with_suffix('.png').is_file()
    assert 30 <= result['frames_in'] <= result['frames_sent'] <= 41
    assert result['frames_processed'] + result['frames_dropped'] <= result['frames_in']
    assert result['frames_processed'] >= 10
    # stamp -> result publish cannot be shorter than the model, nor the arrival than the publish
    assert result['latency_ms_median'] >= result['model_ms_median'] > 0
    assert result['received_latency_ms_median'] >= 0.9 * result['latency_ms_median']
    assert result['latency_ms_p95'] >= result['latency_ms_median']
    assert result['input_delay_ms_median'] > 0 and result['rss_mb'] > 50
    # the visual outputs are built only for subscribers; this run subscribed to all of them
    assert result['node_params'] == ['geometry_threads:=0']
    assert result['outputs_received']['overlay'] >= 10, result['outputs_received']
    assert result['outputs_received']['mask'] >= 10, result['outputs_received']
