"""``unipixel-ros bench all``: every benchmark in its own process, one JSON and one PNG."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .plots import plot_bench_all


def run_all(out: str | Path, checkpoint: str | None = None, node_seconds: float = 30.0,
            data: str | Path | None = None) -> int:
    """geometry + model + node benchmarks, each in its own process -> ``bench.json`` and
    ``bench.png`` in ``out`` (``make bench``); 0 on success. ``data``: a dataset whose frames
    the node benchmark streams (``make bench`` renders 10 simulator scenes for it); None =
    an analytic frame."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, '-m', 'unipixel_ros.cli', 'bench']
    ckpt = ['--checkpoint', checkpoint] if checkpoint else []
    frames = ['--data', str(data)] if data else []
    runs = {'geometry': exe + ['geometry', '--json', str(out / 'geometry.json')],
            'model': exe + ['model', '--json', str(out / 'model.json'), '--threads', '2'] + ckpt,
            'node': exe + ['node', '--json', str(out / 'node.json'), '--seconds',
                           str(node_seconds)] + frames + ckpt}
    combined = {}
    for name, cmd in runs.items():
        print(f'== bench {name}', file=sys.stderr, flush=True)
        if subprocess.call(cmd) != 0:
            print(f'unipixel-ros bench all: the {name} benchmark failed', file=sys.stderr)
            return 1
        combined[name] = json.loads((out / f'{name}.json').read_text())
    (out / 'bench.json').write_text(json.dumps(combined, indent=2, sort_keys=True) + '\n')
    plot_bench_all(out / 'bench.png', combined)
    print(json.dumps({'geometry_total_ms': combined['geometry'].get('total_ms'),
                      'torch_cpu_ms': combined['model'].get('torch_cpu_ms'),
                      'onnxruntime_cpu_ms': combined['model'].get('onnxruntime_cpu_ms'),
                      'node_latency_ms_median': combined['node'].get('latency_ms_median'),
                      'node_overhead_ms_median': combined['node'].get('overhead_ms_median')},
                     indent=2))
    print(f'wrote {out / "bench.json"} and {out / "bench.png"}', file=sys.stderr)
    return 0
