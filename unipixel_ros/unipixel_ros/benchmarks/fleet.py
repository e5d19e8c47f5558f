"""``unipixel-ros bench fleet``: N camera streams against one Triton server vs N in-process nodes.

For each N in ``streams`` and each mode:

* ``triton``: one model server (``unipixel-ros serve``'s process, ONNX Runtime inside Triton
  with dynamic batching) and N unipixel_node processes with ``engine:=triton``;
* ``in_process``: N unipixel_node processes with ``engine:=onnxruntime``, each holding the model.

Each stream is one ``bench node`` process (``benchmarks/node.py``) driving its own node on a ROS
domain of its own (a robot each), publishing the same 640x480 RGB-D frames at ``rate_hz`` with one
active query. The N benches wait for each other (file barrier) so that all N stream together for
``seconds``. Recorded per stream: latency p50/p95 (image stamp -> result publish, the node's own
figure), results per second, frames dropped, and the node process's CPU (100 = one core) and
peak RSS; for the server: its process tree's CPU and RSS (Triton, the Python backend stubs, the
proxy), and how many requests the batcher grouped (from its log).

What a 2-core machine can and cannot show: with every process on the same two cores, the model
costs the same CPU wherever it runs, so latency and throughput here measure contention plus the
remote path's overhead (gRPC, Triton, the PyTriton proxy) rather than a GPU server's batching
gain; the robot-side memory per process and the per-frame overhead of going remote are real.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _tree(pid: int):
    import psutil
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class _TreeSampler(threading.Thread):
    """CPU seconds and peak RSS of a process tree (the server), sampled every ``period_s``."""

    def __init__(self, pid: int, period_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.stop_event = threading.Event()
        self.peak_rss_mb = 0.0
        self.cpu_s: dict = {}

    def run(self) -> None:
        while not self.stop_event.is_set():
            rss = 0.0
            for proc in _tree(self.pid):
                try:
                    self.cpu_s[proc.pid] = sum(proc.cpu_times()[:2])
                    rss += proc.memory_info().rss / 2**20
                except Exception:   # a process ended between listing and reading
                    pass
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.stop_event.wait(self.period_s)

    def total_cpu_s(self) -> float:
        return float(sum(self.cpu_s.values()))


def _run_streams(n: int, engine: str, model_dir: str, seconds: float, rate_hz: float,
                 node_params: list, workdir: Path, domain_base: int) -> list[dict]:
    """Run n ``bench node`` processes together; their JSON results."""
    go = workdir / f'{engine}_{n}_go'
    procs, outs, logs = [], [], []
    for i in range(n):
        out = workdir / f'{engine}_{n}_{i}.json'
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_base + i))
        cmd = [sys.executable, '-c',
               'import json, sys; from unipixel_ros.benchmarks.node import bench_node; '
               'kw = json.loads(sys.argv[1]); r = bench_node(**kw); '
               'open(sys.argv[2], "w").write(json.dumps(r))',
               json.dumps({'engine': engine, 'model_path': model_dir, 'seconds': seconds,
                           'rate_hz': rate_hz, 'threads': 1, 'node_params': node_params,
                           'ready_path': str(workdir / f'{engine}_{n}_{i}.ready'),
                           'go_path': str(go)}), str(out)]
        log = open(workdir / f'{engine}_{n}_{i}.log', 'w')
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        outs.append(out)
        logs.append(log)
    deadline = time.monotonic() + 300
    while not all((workdir / f'{engine}_{n}_{i}.ready').exists() for i in range(n)):
        if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    go.touch()
    results = []
    for proc, out, log in zip(procs, outs, logs):
        proc.wait(timeout=seconds + 400)
        log.close()
        if out.is_file():
            results.append(json.loads(out.read_text()))
        else:
            results.append({'error': Path(log.name).read_text()[-2000:]})
    return results


def _summary(streams: list[dict], seconds: float) -> dict:
    ok = [s for s in streams if 'error' not in s]

    def med(key):
        vals = [s[key] for s in ok if s.get(key) is not None]
        return round(float(np.median(vals)), 2) if vals else None

    def worst(key):
        vals = [s[key] for s in ok if s.get(key) is not None]
        return round(float(np.max(vals)), 2) if vals else None

    return {
        'streams_ok': len(ok), 'streams_failed': len(streams) - len(ok),
        'latency_ms_p50_median': med('latency_ms_median'),
        'latency_ms_p95_median': med('latency_ms_p95'),
        'latency_ms_p95_worst': worst('latency_ms_p95'),
        'results_per_s_per_stream': round(float(np.median(
            [s['results_received'] / seconds for s in ok])), 2) if ok else None,
        'results_per_s_total': round(float(sum(s['results_received'] for s in ok) / seconds), 2),
        'frames_dropped_per_stream': med('frames_dropped'),
        'node_cpu_pct_per_process': med('cpu_pct'), 'node_rss_mb_per_process': med('rss_mb'),
        'model_ms_median': med('model_ms_median'),
        'per_stream': [{k: s.get(k) for k in ('latency_ms_median', 'latency_ms_p95',
                                               'results_received', 'frames_sent', 'frames_dropped',
                                               'cpu_pct', 'rss_mb', 'model_ms_median', 'error')
                        if s.get(k) is not None} for s in streams],
    }


def bench_fleet(model_path: str, streams=(1, 2, 4, 8), seconds: float = 20.0,
                rate_hz: float = 15.0, server_threads: int = 2, max_queue_delay_us: int = 2000,
                domain_base: int = 140, workdir: str | None = None, progress=print) -> dict:
    """Run the benchmark (module docstring); a JSON-ready dict.

    Args:
        model_path: checkpoint or ONNX export directory (exported once, cached).
        streams: numbers of concurrent streams to measure.
        seconds: streaming time per configuration, s.
        rate_hz: frame rate of each stream, Hz.
        server_threads: ONNX Runtime threads per graph in the server.
        max_queue_delay_us: the server's dynamic-batching window, microseconds.
        domain_base: ROS_DOMAIN_ID of stream 0 (stream i uses domain_base + i).
        workdir: where the per-stream logs go (default: a temporary directory).
    """
    from unipixel_ros.engines.onnx_engine import resolve_model_dir
    from unipixel_ros.serving.launch import start_server, stop_server, wait_until_ready

    model_dir = str(resolve_model_dir(model_path))
    work = Path(workdir or tempfile.mkdtemp(prefix='unipixel_bench_fleet_'))
    work.mkdir(parents=True, exist_ok=True)
    port = 18000 + (os.getpid() % 1000) * 3 + 1
    configs = []
    for n in streams:
        for mode in ('in_process', 'triton'):
            progress(f'[bench fleet] {n} stream(s), {mode}')
            entry = {'streams': n, 'mode': mode}
            if mode == 'triton':
                log = open(work / f'server_{n}.log', 'w')
                server = start_server(model_dir, port, log=log, threads=server_threads,
                                      max_queue_delay_us=max_queue_delay_us, stats_every_s=5.0)
                try:
                    entry['server_ready_s'] = round(wait_until_ready(f'127.0.0.1:{port}',
                                                                     proc=server), 1)
                    sampler = _TreeSampler(server.pid)
                    sampler.start()
                    time.sleep(1.5)
                    cpu0, t0 = sampler.total_cpu_s(), time.monotonic()
                    results = _run_streams(n, 'triton', model_dir, seconds, rate_hz,
                                           [f'triton_url:=127.0.0.1:{port}'], work, domain_base)
                    wall = time.monotonic() - t0
                    sampler.stop_event.set()
                    sampler.join()
                    entry['server'] = {'rss_mb': round(sampler.peak_rss_mb, 1),
                                       'cpu_pct_whole_run': round(
                                           100 * (sampler.total_cpu_s() - cpu0) / wall, 1)}
                finally:
                    stop_server(server)
                    log.close()
                served = [ln for ln in (work / f'server_{n}.log').read_text().splitlines()
                          if 'stopping; served:' in ln]
                entry['server']['batches'] = served[-1].split('served: ', 1)[-1] if served else ''
            else:
                results = _run_streams(n, 'onnxruntime', model_dir, seconds, rate_hz, [], work,
                                       domain_base)
            entry.update(_summary(results, seconds))
            configs.append(entry)
            progress(f'[bench fleet]   p50 {entry["latency_ms_p50_median"]} ms, p95 '
                     f'{entry["latency_ms_p95_median"]} ms, {entry["results_per_s_total"]} '
                     f'results/s, node RSS {entry["node_rss_mb_per_process"]} MB, CPU '
                     f'{entry["node_cpu_pct_per_process"]} %')
    progress(f'[bench fleet] per-stream logs and JSON in {work}')
    manifest = json.loads((Path(model_dir) / 'model.json').read_text())
    return {'model': manifest.get('checkpoint'),
            'model_sha256': manifest.get('checkpoint_sha256'),
            'streams': list(streams), 'seconds': seconds,
            'rate_hz': rate_hz, 'server_threads': server_threads,
            'node_threads_in_process': 1, 'max_queue_delay_us': max_queue_delay_us,
            'frames': '640x480 analytic RGB-D scene, one query per stream',
            'configs': configs}


def plot_fleet(result: dict, path: Path) -> None:
    """Four panels against the number of streams: latency p50/p95, results per second, node
    CPU and node RSS per robot-side process, in-process vs triton."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    colors = {'in_process': '#d8643b', 'triton': '#3b7dd8'}
    for mode in ('in_process', 'triton'):
        rows = [c for c in result['configs'] if c['mode'] == mode]
        n = [c['streams'] for c in rows]
        label = 'in-process ONNX Runtime' if mode == 'in_process' else 'Triton server'
        axes[0].plot(n, [c['latency_ms_p50_median'] for c in rows], 'o-', color=colors[mode],
                     label=f'{label} p50')
        axes[0].plot(n, [c['latency_ms_p95_median'] for c in rows], 's--', color=colors[mode],
                     label=f'{label} p95')
        axes[1].plot(n, [c['results_per_s_total'] for c in rows], 'o-', color=colors[mode],
                     label=label)
        axes[2].plot(n, [c['node_cpu_pct_per_process'] for c in rows], 'o-', color=colors[mode],
                     label=label)
        axes[3].plot(n, [c['node_rss_mb_per_process'] for c in rows], 'o-', color=colors[mode],
                     label=label)
    n_all = sorted({c['streams'] for c in result['configs']})
    axes[1].plot(n_all, [result['rate_hz'] * k for k in n_all], ':', color='grey',
                 label='frames sent')
    titles = ('latency per stream [ms] (median over streams)', 'results per second (all streams)',
              'CPU per node process [% of a core]', 'RSS per node process [MB]')
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('camera streams (one node process each)')
        ax.set_xticks(n_all)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    m, after = result.get('machine', {}), result.get('machine_after', {})
    fig.suptitle(f"{result['rate_hz']:g} Hz streams, {result['seconds']:g} s each; "
                 f"{m.get('cpu_count', '?')} CPUs ({m.get('cpu', '?')}) shared, 1-min load "
                 f"{m.get('load_avg_1min', '?')} before, {after.get('load_avg_1min', '?')} after",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
