"""Charts of the benchmark results (PNG beside each JSON)."""
from __future__ import annotations

from pathlib import Path


def plot_stage_times(path: Path, title: str, stages: dict[str, float]) -> None:
    """Horizontal bar chart of median stage times (ms) -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(stages)))
    names = list(stages)
    ax.barh(names, [stages[n] for n in names], color='#3b7dd8')
    for i, n in enumerate(names):
        ax.text(stages[n], i, f' {stages[n]:.2f}', va='center')
    ax.set_xlabel('median time per frame [ms]')
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bench_all(path: Path, combined: dict) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('geometry (640x480, ms)', {k[:-3]: v for k, v in combined['geometry'].items()
                                          if k.endswith('_ms') and isinstance(v, (int, float))}),
              ('model per frame (ms)', {k[:-3]: combined['model'][k] for k in
                                        ('torch_cpu_ms', 'onnxruntime_cpu_ms', 'torch_cuda_fp16_ms',
                                         'tensorrt_fp16_ms') if k in combined['model']}),
              ('unipixel_node (ms)', {k: combined['node'][k] for k in
                                      ('latency_ms_median', 'latency_ms_p95', 'model_ms_median',
                                       'overhead_ms_median') if combined['node'].get(k) is not None})]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, values) in zip(axes, panels):
        ax.barh(list(values), list(values.values()), color='tab:blue')
        for y, v in enumerate(values.values()):
            ax.text(v, y, f' {v:.1f}', va='center', fontsize=8)
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
