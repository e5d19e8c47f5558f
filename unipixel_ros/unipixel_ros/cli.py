"""``unipixel-ros``: the command-line entry point (bench, demo; train/eval/export arrive with the model).

Every sub-command prints a one-line summary; benchmarks print their JSON on stdout and also write it
(plus a PNG chart) to the requested file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + '\n')


def _plot_stage_times(path: Path, title: str, stages: dict[str, float]) -> None:
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


def cmd_bench_geometry(args: argparse.Namespace) -> int:
    from unipixel_ros.perception.benchmark import bench_geometry

    result = bench_geometry(runs=args.runs, seed=args.seed)
    print(json.dumps(result, indent=2, sort_keys=True))
    if args.json:
        out = Path(args.json)
        _write_json(out, result)
        png = Path(args.png) if args.png else out.with_suffix('.png')
        _plot_stage_times(png, f"geometry, {result['image_size'][1]}x{result['image_size'][0]}, "
                               f"{result['points_in']} masked px",
                          {k: result[k] for k in ('backproject_ms', 'filter_ms', 'grasp_ms',
                                                  'total_ms')})
        print(f'wrote {out} and {png}', file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    print('unipixel-ros demo: the simulated end-to-end demo (MuJoCo world, sim camera, unipixel_node, '
          'Panda grasp executor) is not implemented yet; it arrives with the simulation, model and node '
          'work. What works today: `make test` and `unipixel-ros bench geometry --json out.json`.')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='unipixel-ros', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)

    bench = sub.add_parser('bench', help='benchmarks that print and write JSON')
    bench_sub = bench.add_subparsers(dest='target', required=True)
    geo = bench_sub.add_parser('geometry', help='mask + depth -> cloud -> grasp on a 640x480 frame')
    geo.add_argument('--json', help='write the result here (and a PNG chart beside it)')
    geo.add_argument('--png', help='chart path (default: the JSON path with .png)')
    geo.add_argument('--runs', type=int, default=50, help='timed runs (medians are reported)')
    geo.add_argument('--seed', type=int, default=0)
    geo.set_defaults(func=cmd_bench_geometry)

    demo = sub.add_parser('demo', help='the simulated end-to-end demo')
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, 'runs', 1) < 1:
        print('unipixel-ros: --runs must be >= 1', file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
