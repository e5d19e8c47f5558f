"""``unipixel-ros bench soak``: a short real run against a node process on the tiny checkpoint
(the JSON contract, one reply per command, no errors), and the summary's arithmetic on
hand-made records (growth after the warm-up, drift, replies counted per command)."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from unipixel_ros.benchmarks.soak import summarise

CONTRACT = ('rss_mb_start', 'rss_mb_end', 'rss_mb_max', 'rss_growth_after_warmup_mb',
            'latency_per_minute', 'latency_drift', 'frames_dropped', 'errors',
            'replies_per_command', 'checks', 'passed')


def _status(errors: int):
    return SimpleNamespace(errors=errors, frames_in=100, frames_processed=90, frames_dropped=5)


def test_summary_arithmetic():
    start = 1000.0
    lat = [(start + t, 50.0) for t in range(0, 120)] + [(start + 120 + t, 70.0)
                                                        for t in range(60)]
    commands = [{'t': start + t, 'kind': 'speech', 'text': text} for t, text in
                ((70, 'pick up the red box'), (80, 'track the red box'), (90, 'stop'),
                 (100, 'find the purple ball'), (110, 'stop'))]
    replies = [(start + 71, 'I see the red box.'), (start + 81, 'I see the red box.'),
               (start + 85, 'I lost the red box.'), (start + 91, 'Okay, I stopped.'),
               (start + 101, "I don't see the purple ball."), (start + 102, 'again?')]
    r = summarise(minutes=3, engine='torch', rate_hz=30, command_period_s=10, warmup_s=60,
                  start=start, sent=100, statuses=[_status(2), _status(2), _status(3)],
                  status_times=[start + 10, start + 59, start + 170], latencies=lat,
                  replies=replies, commands=commands,
                  rss=[(start, 500.0), (start + 61, 520.0), (start + 170, 530.0)],
                  rss_start=500.0, rss_end=545.0, client_errors=[], node_log='',
                  exit_status=0, frames_source='test', log_path='')
    assert r['rss_mb_after_warmup'] == 520.0 and r['rss_growth_after_warmup_mb'] == 25.0
    assert [m['latency_ms_median'] for m in r['latency_per_minute']] == [50.0, 50.0, 70.0]
    assert r['latency_drift'] == pytest.approx(0.4)          # minute 3 against minute 2
    assert r['errors'] == 1 and r['errors_node_counter'] == 1
    # the tracking command may speak twice; 'find' got two replies; the last is not checked
    assert r['non_tracking_commands_checked'] == 3
    assert r['commands_without_exactly_one_reply'] == [
        {'text': 'find the purple ball', 'replies': ["I don't see the purple ball.", 'again?']}]
    assert r['checks'] == {'rss_growth_le_20mb': False, 'latency_drift_le_20pct': False,
                           'zero_errors': False, 'one_reply_per_non_tracking_command': False,
                           'clean_exit': True}
    assert not r['passed']


@pytest.mark.ros
def test_bench_soak_runs_a_real_node(tmp_path):
    from tiny_node_setup import save_tiny_checkpoint

    ckpt = save_tiny_checkpoint(tmp_path)
    out = tmp_path / 'soak.json'
    run = subprocess.run(
        [sys.executable, '-m', 'unipixel_ros.cli', 'bench', 'soak', '--minutes', '0.5',
         '--warmup', '5', '--rate', '10', '--command-period', '2', '--engine', 'torch',
         '--checkpoint', str(ckpt), '--threads', '1', '--json', str(out)],
        capture_output=True, text=True, timeout=240)
    assert out.is_file(), run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert all(k in result for k in CONTRACT), sorted(result)
    assert out.with_suffix('.png').stat().st_size > 10_000
    assert result['commands'] >= 12 and result['frames_sent'] >= 250
    assert result['results_received'] > 0 and result['rss_mb_max'] > 100
    # the tiny random model finds nothing at the default threshold: every command still gets
    # exactly one answer ("I don't see ...", "Okay, I stopped.", a description or "I don't see
    # an object there.")
    assert result['checks']['one_reply_per_non_tracking_command'], \
        result['commands_without_exactly_one_reply']
    assert result['errors'] == 0, (result['client_errors'], result['node_log'])
    assert result['checks']['clean_exit']
