"""``unipixel-ros``: the command-line entry point (bench, train, eval, export, demo).

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
        _plot_stage_times(png, f"geometry, {result['image_size'][0]}x{result['image_size'][1]}, "
                               f"{result['points_in']} masked px",
                          {k: result[k] for k in ('backproject_ms', 'filter_ms', 'box_ms',
                                                  'grasp_ms', 'total_ms') if k in result})
        print(f'wrote {out} and {png}', file=sys.stderr)
    return 0


DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / 'weights' / 'unipixel_sim_v5.safetensors'


def resolve_checkpoint(path: str | None) -> Path:
    """``path``, or the shipped checkpoint when None; CheckpointError naming a missing file."""
    from unipixel_ros.model.checkpoint import CheckpointError

    ckpt = Path(path) if path else DEFAULT_CHECKPOINT
    if not ckpt.is_file():
        hint = (' (the shipped model is not there yet: train one or pass --checkpoint FILE)'
                if not path else '')
        raise CheckpointError(f'checkpoint not found: {ckpt}{hint}')
    return ckpt


def open_engine(checkpoint_arg: str | None, engine: str, prog: str, **kwargs):
    """(checkpoint path, engine) for a command's ``--checkpoint`` / ``--engine``, or None after
    printing ``prog: reason`` to stderr (missing or corrupt checkpoint, engine unavailable)."""
    from unipixel_ros.engines import create_engine
    from unipixel_ros.model.checkpoint import CheckpointError
    try:
        checkpoint = resolve_checkpoint(checkpoint_arg)
        return checkpoint, create_engine(engine, str(checkpoint), **kwargs)
    except (CheckpointError, RuntimeError) as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return None


def cmd_train(args: argparse.Namespace) -> int:
    from unipixel_ros.model.train import TrainConfig, train

    summary = train(TrainConfig.load(args.config), progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    return 0


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that turn the network's outputs into found / not found (shared by ``eval`` and
    ``evaluate``); defaults are the shipped model's (``model.predictor.DEFAULT_*``)."""
    from unipixel_ros.model import predictor as p
    parser.add_argument('--threshold', type=float, default=p.DEFAULT_EXISTS_THRESHOLD,
                        help='target-exists threshold (default %(default)s)')
    parser.add_argument('--mask-threshold', type=float, default=p.DEFAULT_MASK_THRESHOLD,
                        help='mask probability threshold (default %(default)s)')
    parser.add_argument('--verify', default=','.join(p.DEFAULT_VERIFY_ATTRIBUTES) or 'none',
                        help="attributes checked against the words, comma-separated from "
                             "category,color,size, or 'none' (default %(default)s)")
    parser.add_argument('--verify-min-prob', type=float, default=p.DEFAULT_VERIFY_MIN_PROB,
                        help='reject when the named attribute has less probability than this '
                             '(default %(default)s)')
    parser.add_argument('--metric-attributes', default='auto',
                        help="category and size re-decided with the object's measured 3D box: "
                             "'auto' = the head fitted for the checkpoint "
                             "(<checkpoint>_metric_attributes.safetensors) if present, 'none', "
                             'or a file from `unipixel-ros fit-attributes` (default %(default)s)')


def make_predictor(engine, args: argparse.Namespace, checkpoint: str | Path | None = None):
    """A ReferringPredictor with the :func:`add_decision_arguments` options (``checkpoint``:
    the engine's checkpoint, for ``--metric-attributes auto``). Raises ValueError /
    FileNotFoundError for a bad option or metric-attribute file."""
    from unipixel_ros.model.metric_attributes import resolve_metric_attributes
    from unipixel_ros.model.predictor import ReferringPredictor, parse_attribute_list
    for name in ('threshold', 'mask_threshold'):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    return ReferringPredictor(engine, exists_threshold=args.threshold,
                              mask_threshold=args.mask_threshold,
                              verify_attributes=parse_attribute_list(args.verify),
                              verify_min_prob=args.verify_min_prob,
                              metric_attributes=resolve_metric_attributes(
                                  args.metric_attributes, checkpoint))


def decision_settings(predictor) -> dict:
    """The decision settings to record next to metrics."""
    head = predictor.metric_attributes
    return {'exists_threshold': predictor.exists_threshold,
            'mask_threshold': predictor.mask_threshold,
            'verify_attributes': list(predictor.verify_attributes),
            'verify_min_prob': predictor.verify_min_prob,
            'metric_attributes': None if head is None else head.info.get('file')}


def cmd_weights(args: argparse.Namespace) -> int:
    """``unipixel-ros weights --run DIR --out FILE``: a run's last.pt -> shipped safetensors."""
    from unipixel_ros.model.checkpoint import CheckpointError, save_run_weights
    try:
        step = save_run_weights(args.run, args.out)
    except CheckpointError as exc:
        print(f'unipixel-ros weights: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {args.out} (step {step} of {args.run})')
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from unipixel_ros.model.evaluate import evaluate, plot_eval

    opened = open_engine(args.checkpoint, args.engine, 'unipixel-ros eval', device=args.device)
    if opened is None:
        return 1
    checkpoint, engine = opened
    try:
        predictor = make_predictor(engine, args, checkpoint)
    except (ValueError, FileNotFoundError) as exc:
        print(f'unipixel-ros eval: {exc}', file=sys.stderr)
        return 2
    result = evaluate(predictor, args.data, limit_scenes=args.limit_scenes,
                      progress=not args.no_progress, split=args.split)
    if args.paraphrase:
        from unipixel_ros.model.paraphrase import paraphrase
        reworded = evaluate(predictor, args.data, limit_scenes=args.limit_scenes,
                            progress=not args.no_progress, rewrite=paraphrase, split=args.split)
        result['paraphrase'] = {k: reworded[k] for k in ('ciou', 'miou', 'prec_50',
                                                         'target_acc', 'no_target_acc')}
    result.update(checkpoint=str(args.checkpoint or DEFAULT_CHECKPOINT), engine=args.engine,
                  data=str(args.data), split=args.split or 'all', **decision_settings(predictor))
    print(json.dumps({k: v for k, v in result.items() if k != 'by_type'}, indent=2))
    if args.json:
        out = Path(args.json)
        _write_json(out, result)
        plot_eval(result, out.with_suffix('.png'))
        print(f'wrote {out} and {out.with_suffix(".png")}', file=sys.stderr)
    return 0


def cmd_fit_attributes(args: argparse.Namespace) -> int:
    """``unipixel-ros fit-attributes``: fit the metric attribute head of a checkpoint.

    Collects the network's answers on ``--data`` (scenes it never trained on), fits the head,
    then scores the heads alone and the heads + geometry on ``--eval-data`` (held out).
    """
    import numpy as np

    from unipixel_ros.model.data import scene_dirs
    from unipixel_ros.model.metric_attributes import (collect_samples,
                                                      default_metric_attributes_path,
                                                      fit_metric_attributes, plot_confusions)
    from unipixel_ros.model.predictor import ReferringPredictor

    opened = open_engine(args.checkpoint, args.engine, 'unipixel-ros fit-attributes')
    if opened is None:
        return 1
    checkpoint, engine = opened

    def dirs(data: list, splits: str) -> list:
        out = []
        for d in data:
            for split in splits.split(','):
                out += scene_dirs(d, split.strip() or None)
        if not out:
            raise FileNotFoundError(f'no scenes in {data} (splits {splits})')
        return out

    predictor = ReferringPredictor(engine)
    try:
        fit_dirs, eval_dirs = dirs(args.data, args.split), dirs(args.eval_data, args.eval_split)
    except FileNotFoundError as exc:
        print(f'unipixel-ros fit-attributes: {exc}', file=sys.stderr)
        return 1
    fit = collect_samples(predictor, fit_dirs, progress=not args.no_progress)
    held = collect_samples(predictor, eval_dirs, progress=not args.no_progress)
    vocab = predictor.vocab
    head = fit_metric_attributes(
        fit['features'], fit['category'], fit['size'], vocab['categories'], vocab['sizes'],
        seed=args.seed, info={'checkpoint': checkpoint.name, 'data': args.data,
                              'split': args.split, 'samples': int(len(fit['category']))})
    cat_logits, size_logits = head.logits(held['features'])
    fused_cat, fused_size = cat_logits.argmax(1), size_logits.argmax(1)

    def accuracy(category: np.ndarray, size: np.ndarray) -> dict:
        """Percent right on the held-out objects: category, size, and both."""
        cat_ok, size_ok = category == held['category'], size == held['size']
        return {name: round(100.0 * float(np.mean(ok)), 2)
                for name, ok in (('category', cat_ok), ('size', size_ok),
                                 ('both', cat_ok & size_ok))}

    summary = {
        'checkpoint': str(checkpoint), 'fit_scenes': len(fit_dirs), 'fit_samples': int(len(fit['category'])),
        'eval_data': args.eval_data, 'eval_split': args.eval_split, 'eval_scenes': len(eval_dirs),
        'eval_samples': int(len(held['category'])),
        'network': accuracy(held['net_category'], held['net_size']),
        'network_geometry': accuracy(fused_cat, fused_size),
        'fit_loss': head.info['final_loss'],
    }
    head.info.update(eval=summary['network_geometry'], eval_network=summary['network'],
                     eval_data=args.eval_data, eval_split=args.eval_split)
    out = Path(args.out) if args.out else default_metric_attributes_path(checkpoint)
    head.save(out)
    summary['out'] = str(out)
    print(json.dumps(summary, indent=2))
    if args.json:
        _write_json(Path(args.json), summary)
        plot_confusions(held, fused_cat, fused_size, vocab, Path(args.json).with_suffix('.png'))
        print(f'wrote {args.json} and {Path(args.json).with_suffix(".png")}', file=sys.stderr)
    return 0


def cmd_finetune_selection(args: argparse.Namespace) -> int:
    """``unipixel-ros finetune-selection``: retrain a checkpoint's phrase -> object selection
    on its own detected candidates (``model/selection_training.py``)."""
    from unipixel_ros.model.checkpoint import CheckpointError
    from unipixel_ros.model.selection_training import plot_history, run_finetune

    try:
        summary = run_finetune(args.checkpoint or DEFAULT_CHECKPOINT, args.data, args.val_data,
                               args.out, epochs=args.epochs, lr=args.lr,
                               batch_size=args.batch_size, exists_threshold=args.threshold,
                               seed=args.seed, threads=args.threads,
                               mask_sharpness=args.mask_sharpness,
                               progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'unipixel-ros finetune-selection: {exc}', file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in summary.items() if k != 'history'}, indent=2))
    if args.json:
        _write_json(Path(args.json), summary)
        plot_history(summary['history'], Path(args.json).with_suffix('.png'))
        print(f'wrote {args.json} and {Path(args.json).with_suffix(".png")}', file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from unipixel_ros.engines import EngineError
    from unipixel_ros.model.checkpoint import CheckpointError
    from unipixel_ros.model.export import ExportError, export_onnx, format_parity

    try:
        ckpt = resolve_checkpoint(args.checkpoint)
        if args.format == 'tensorrt':
            from unipixel_ros.engines.tensorrt_engine import import_tensorrt
            import_tensorrt()  # fail before the (slow) ONNX export
        result = export_onnx(ckpt, args.out, parity_samples=args.parity_samples)
        print(format_parity(result.parity))
        if args.format == 'tensorrt':
            from unipixel_ros.engines.tensorrt_engine import build_engines
            for graph, path in build_engines(result.out_dir, rebuild=True).items():
                print(f'{graph}: {path}')
    except (CheckpointError, ExportError, EngineError) as exc:
        print(f'unipixel-ros export: {exc}', file=sys.stderr)
        return 1
    print(f"exported {ckpt} -> {result.out_dir} ({args.format}, opset {result.manifest['opset']}, "
          f"ops: {' '.join(result.manifest['op_types'])})")
    return 0


def cmd_bench_model(args: argparse.Namespace) -> int:
    from unipixel_ros.engines.benchmark import bench_model
    from unipixel_ros.model.checkpoint import CheckpointError

    try:
        ckpt = resolve_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f'unipixel-ros bench model: {exc}', file=sys.stderr)
        return 1
    from unipixel_ros.machine import machine_context
    machine = machine_context()
    result = bench_model(ckpt, runs=args.runs, threads=args.threads)
    result['machine'] = machine
    print(json.dumps(result, indent=2, sort_keys=True))
    out = Path(args.json)
    _write_json(out, result)
    png = Path(args.png) if args.png else out.with_suffix('.png')
    w, h = result['input_size']
    _plot_stage_times(png, f'model, 640x480 frame -> {w}x{h} input',
                      {k[:-3]: result[k] for k in ('torch_cpu_ms', 'onnxruntime_cpu_ms',
                                                   'torch_cuda_fp16_ms', 'tensorrt_fp16_ms')
                       if k in result})
    print(f'wrote {out} and {png}', file=sys.stderr)
    return 0


def cmd_bench_node(args: argparse.Namespace) -> int:
    from unipixel_ros.model.checkpoint import CheckpointError
    from unipixel_ros.ros.bench_node import bench_node

    try:
        ckpt = resolve_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f'unipixel-ros bench node: {exc}', file=sys.stderr)
        return 1
    from unipixel_ros.machine import machine_context
    machine = machine_context()   # before the run: the load average then is not our own
    result = bench_node(engine=args.engine, model_path=str(ckpt), seconds=args.seconds,
                        rate_hz=args.rate, data=args.data, threads=args.threads,
                        node_params=args.param, subscribe_all=args.subscribe_all)
    result['machine'] = machine
    print(json.dumps(result, indent=2, sort_keys=True))
    out = Path(args.json)
    _write_json(out, result)
    _plot_stage_times(out.with_suffix('.png'), f"unipixel_node, {args.engine}, {args.rate:g} Hz input",
                      {k: result[k] for k in ('latency_ms_median', 'latency_ms_p95',
                                              'model_ms_median', 'overhead_ms_median')})
    print(f'wrote {out} and {out.with_suffix(".png")}', file=sys.stderr)
    return 0


def cmd_bench_all(args: argparse.Namespace) -> int:
    """geometry + model + node benchmarks -> one JSON and one PNG (``make bench``)."""
    import subprocess

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, '-m', 'unipixel_ros.cli', 'bench']
    ckpt = ['--checkpoint', args.checkpoint] if args.checkpoint else []
    frames = out / 'sim_frames'
    if not (frames / 'dataset.json').is_file():
        # realistic frames for the node benchmark: 10 simulator scenes (seconds to render)
        gen = [sys.executable, '-m', 'unipixel_sim.cli', 'generate', '--out', str(frames),
               '--scenes', '10', '--seed', '900000', '--workers', '1', '--no-progress']
        if subprocess.call(gen) != 0:
            print('unipixel-ros bench all: could not render simulator frames', file=sys.stderr)
            return 1
    runs = {'geometry': exe + ['geometry', '--json', str(out / 'geometry.json')],
            'model': exe + ['model', '--json', str(out / 'model.json'), '--threads', '2'] + ckpt,
            'node': exe + ['node', '--json', str(out / 'node.json'), '--data', str(frames),
                           '--seconds', str(args.node_seconds)] + ckpt}
    combined = {}
    for name, cmd in runs.items():
        print(f'== bench {name}', file=sys.stderr, flush=True)
        if subprocess.call(cmd) != 0:
            print(f'unipixel-ros bench all: the {name} benchmark failed', file=sys.stderr)
            return 1
        combined[name] = json.loads((out / f'{name}.json').read_text())
    _write_json(out / 'bench.json', combined)
    _plot_bench_all(out / 'bench.png', combined)
    print(json.dumps({'geometry_total_ms': combined['geometry'].get('total_ms'),
                      'torch_cpu_ms': combined['model'].get('torch_cpu_ms'),
                      'onnxruntime_cpu_ms': combined['model'].get('onnxruntime_cpu_ms'),
                      'node_latency_ms_median': combined['node'].get('latency_ms_median'),
                      'node_overhead_ms_median': combined['node'].get('overhead_ms_median')},
                     indent=2))
    print(f'wrote {out / "bench.json"} and {out / "bench.png"}', file=sys.stderr)
    return 0


def _plot_bench_all(path: Path, combined: dict) -> None:
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


def _missing_sim(exc: Exception) -> int:
    print(f'unipixel-ros: this command needs the unipixel_sim package ({exc}); '
          'run `make venv` in the repository', file=sys.stderr)
    return 1


def cmd_demo(argv: list[str]) -> int:
    """``unipixel-ros demo [options of unipixel-sim demo]``."""
    try:
        from unipixel_sim.demo import main as demo_main
    except ImportError as exc:
        return _missing_sim(exc)
    return demo_main(argv)


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

    tr = sub.add_parser('train', help='train the referring segmentation model')
    tr.add_argument('--config', required=True, help='training config (JSON or YAML)')
    tr.add_argument('--no-progress', action='store_true')
    tr.set_defaults(func=cmd_train)

    wt = sub.add_parser('weights', help="a training run's last.pt -> a .safetensors checkpoint")
    wt.add_argument('--run', required=True, help='training out_dir (holds last.pt)')
    wt.add_argument('--out', required=True, help='.safetensors file to write')
    wt.set_defaults(func=cmd_weights)

    ev = sub.add_parser('eval', help='RefCOCO-style metrics on a generated dataset')
    ev.add_argument('--data', required=True, help='dataset folder (every split is test data unless --split)')
    ev.add_argument('--json', help='write metrics here (and a PNG chart beside it)')
    ev.add_argument('--checkpoint', help=f'.safetensors checkpoint (default: the shipped '
                                         f'{DEFAULT_CHECKPOINT.name})')
    ev.add_argument('--engine', default='torch', choices=('torch', 'onnxruntime', 'tensorrt'))
    ev.add_argument('--device', default='cpu')
    add_decision_arguments(ev)
    ev.add_argument('--limit-scenes', type=int, default=0, help='first N scenes only (0 = all)')
    ev.add_argument('--split', choices=('train', 'val', 'test'), default=None,
                    help='only this split of the dataset (default: every scene)')
    ev.add_argument('--paraphrase', action='store_true',
                    help='also evaluate every query reworded with out-of-grammar synonyms')
    ev.add_argument('--no-progress', action='store_true')
    ev.set_defaults(func=cmd_eval)

    model = bench_sub.add_parser('model', help='ms per 640x480 frame: torch vs ONNX Runtime '
                                               '(CPU), + CUDA/TensorRT when present')
    ckpt_help = f'.safetensors checkpoint (default: the shipped {DEFAULT_CHECKPOINT.name})'
    model.add_argument('--checkpoint', help=ckpt_help)
    model.add_argument('--json', required=True,
                       help='write the result here (and a PNG chart beside it)')
    model.add_argument('--png', help='chart path (default: the JSON path with .png)')
    model.add_argument('--runs', type=int, default=30, help='timed frames per engine (medians)')
    model.add_argument('--threads', type=int, default=0,
                       help='CPU threads for torch and ONNX Runtime (0 = library defaults)')
    model.set_defaults(func=cmd_bench_model)

    node = bench_sub.add_parser('node', help='unipixel_node under a 15 Hz RGB-D stream: latency, '
                                             'overhead, drops, memory')
    node.add_argument('--json', required=True, help='write the result here (and a PNG beside it)')
    node.add_argument('--checkpoint', help=ckpt_help)
    node.add_argument('--engine', default='onnxruntime', choices=('torch', 'onnxruntime', 'tensorrt'))
    node.add_argument('--seconds', type=float, default=30.0)
    node.add_argument('--rate', type=float, default=15.0, help='input frame rate, Hz')
    node.add_argument('--threads', type=int, default=2, help='engine CPU threads')
    node.add_argument('--data', help='dataset folder to take frames from (default: analytic scene)')
    node.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                      help='extra unipixel_node parameter (repeatable), e.g. geometry_threads:=0')
    node.add_argument('--subscribe-all', action='store_true',
                      help='also subscribe to mask, overlay, cloud and markers, as RViz would (the '
                           'node builds those outputs only for subscribers)')
    node.set_defaults(func=cmd_bench_node)

    ball = bench_sub.add_parser('all', help='geometry, model and node benchmarks -> one JSON + PNG')
    ball.add_argument('--out', default='bench_out', help='output folder (default bench_out)')
    ball.add_argument('--checkpoint', help=ckpt_help)
    ball.add_argument('--node-seconds', type=float, default=30.0)
    ball.set_defaults(func=cmd_bench_all)

    export = sub.add_parser('export', help='export a checkpoint to ONNX (and TensorRT engines)')
    export.add_argument('--checkpoint', help=ckpt_help)
    export.add_argument('--format', choices=('onnx', 'tensorrt'), default='onnx')
    export.add_argument('--out', required=True, help='output directory')
    export.add_argument('--parity-samples', type=int, default=8,
                        help='random samples for the torch vs ONNX Runtime check')
    export.set_defaults(func=cmd_export)

    fa = sub.add_parser('fit-attributes', help="fit the metric attribute head (category and "
                                               "size from the heads + the measured 3D box)")
    fa.add_argument('--data', nargs='+', required=True,
                    help='datasets the checkpoint never trained on (with --split)')
    fa.add_argument('--split', default='val,test', help='comma-separated splits of --data')
    fa.add_argument('--eval-data', nargs='+', required=True, help='held-out datasets to score on')
    fa.add_argument('--eval-split', default='val', help='comma-separated splits of --eval-data')
    fa.add_argument('--checkpoint', help=f'.safetensors checkpoint (default: the shipped '
                                         f'{DEFAULT_CHECKPOINT.name})')
    fa.add_argument('--engine', default='onnxruntime', choices=('torch', 'onnxruntime'))
    fa.add_argument('--out', help='head file (default: <checkpoint>_metric_attributes.safetensors)')
    fa.add_argument('--json', help='write the summary here (and confusion matrices as PNG)')
    fa.add_argument('--seed', type=int, default=0)
    fa.add_argument('--no-progress', action='store_true')
    fa.set_defaults(func=cmd_fit_attributes)

    fs = sub.add_parser('finetune-selection',
                        help="retrain a checkpoint's phrase -> object selection on the "
                             "objects its own detector finds (image side frozen)")
    fs.add_argument('--data', nargs='+', required=True, help='datasets whose train split is used')
    fs.add_argument('--val-data', required=True, help='dataset whose val split picks the epoch')
    fs.add_argument('--out', required=True, help='the new .safetensors checkpoint')
    fs.add_argument('--checkpoint', help=f'starting checkpoint (default: the shipped '
                                         f'{DEFAULT_CHECKPOINT.name})')
    fs.add_argument('--epochs', type=int, default=6)
    fs.add_argument('--lr', type=float, default=3e-4)
    fs.add_argument('--batch-size', type=int, default=256)
    fs.add_argument('--threshold', type=float, default=0.8,
                    help='target-exists threshold of the val numbers (default %(default)s)')
    fs.add_argument('--seed', type=int, default=0)
    fs.add_argument('--mask-sharpness', type=float,
                    help="the mask mixes instance masks by softmax(sharpness x scores); saved in "
                         "the new checkpoint's config (default: keep the checkpoint's)")
    fs.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    fs.add_argument('--json', help='write the summary and history here (and a PNG of the curves)')
    fs.add_argument('--no-progress', action='store_true')
    fs.set_defaults(func=cmd_finetune_selection)

    # listed for --help; main() hands everything after 'demo' to unipixel_sim.demo unparsed
    sub.add_parser('demo', help='the simulated end-to-end demo (as `make demo`; demo --help)',
                   add_help=False)

    ev_loop = sub.add_parser('evaluate', help='closed-loop pick success in the simulator '
                                              '(needs the unipixel_sim package)')
    try:
        from unipixel_sim import evaluate_cli
    except ImportError as exc:  # unipixel_ros works without the simulator package
        ev_loop.set_defaults(func=lambda _a, e=exc: _missing_sim(e))
    else:
        evaluate_cli.add_arguments(ev_loop)
        ev_loop.set_defaults(func=evaluate_cli.run_from_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['demo']:
        return cmd_demo(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, 'runs', 1) < 1:
        print('unipixel-ros: --runs must be >= 1', file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
