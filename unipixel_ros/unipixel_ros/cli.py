"""``unipixel-ros``: the command line of the perception stack (argument parsing only: every
command calls a library function). Model: train, weights, finetune-selection, fit-attributes,
export; serving: serve (a Triton server for a fleet); measurement: eval-dataset, bench. The
simulated demo and the closed-loop evaluation are ``unipixel-sim demo`` /
``unipixel-sim eval-closed-loop``.

Every sub-command prints a one-line summary; benchmarks print their JSON on stdout and also write
it (plus a PNG chart) to the requested file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unipixel_ros.inference.loading import DEFAULT_CHECKPOINT


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + '\n')


def _write_json_and_png(path: str | Path, payload: dict, plot, plotted=None) -> None:
    """Write ``payload`` as JSON at ``path`` and ``plot(plotted or payload, png)`` beside it
    (same name, .png); say both on stderr."""
    out = Path(path)
    _write_json(out, payload)
    plot(payload if plotted is None else plotted, out.with_suffix('.png'))
    print(f'wrote {out} and {out.with_suffix(".png")}', file=sys.stderr)


def cmd_bench_geometry(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.geometry import bench_geometry
    from unipixel_ros.benchmarks.plots import plot_stage_times

    result = bench_geometry(runs=args.runs, seed=args.seed)
    print(json.dumps(result, indent=2, sort_keys=True))
    if args.json:
        out = Path(args.json)
        _write_json(out, result)
        png = Path(args.png) if args.png else out.with_suffix('.png')
        plot_stage_times(png, f"geometry, {result['image_size'][0]}x{result['image_size'][1]}, "
                              f"{result['points_in']} masked px",
                         {k: result[k] for k in ('backproject_ms', 'filter_ms', 'box_ms',
                                                 'grasp_ms', 'total_ms') if k in result})
        print(f'wrote {out} and {png}', file=sys.stderr)
    return 0


CKPT_HELP = f'.safetensors checkpoint (default: the shipped {DEFAULT_CHECKPOINT.name})'


def load_predictor_from_args(args: argparse.Namespace, prog: str, **engine_kwargs):
    """(0, checkpoint, predictor) for ``--engine`` / ``--checkpoint`` and the decision options,
    or (exit code, None, None) after printing ``prog: reason`` to stderr: 1 for a model that
    cannot be loaded, 2 for a bad decision option or metric attribute head."""
    from unipixel_ros.inference.loading import LoadError, make_predictor, open_engine
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2, None, None
    try:
        checkpoint, engine = open_engine(args.engine, args.checkpoint, **engine_kwargs)
    except LoadError as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return 1, None, None
    try:
        return 0, checkpoint, make_predictor(engine, checkpoint, settings)
    except LoadError as exc:
        engine.close()
        print(f'{prog}: {exc}', file=sys.stderr)
        return 2, None, None


def _resolve_checkpoint(args: argparse.Namespace, prog: str) -> Path | None:
    from unipixel_ros.inference.loading import resolve_checkpoint
    from unipixel_ros.model.errors import CheckpointError
    try:
        return resolve_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f'{prog}: {exc}', file=sys.stderr)
        return None


def cmd_train(args: argparse.Namespace) -> int:
    from unipixel_ros.training.train import TrainConfig, train

    summary = train(TrainConfig.load(args.config), progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    return 0


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that turn the network's outputs into found / not found (shared by
    ``eval-dataset`` and ``unipixel-sim eval-closed-loop``); defaults are the shipped model's
    (``inference.settings.DEFAULT_SETTINGS``)."""
    from unipixel_ros.inference.settings import DEFAULT_SETTINGS as d
    parser.add_argument('--threshold', type=float, default=d.exists_threshold,
                        help='target-exists threshold (default %(default)s)')
    parser.add_argument('--mask-threshold', type=float, default=d.mask_threshold,
                        help='mask probability threshold (default %(default)s)')
    parser.add_argument('--verify', default=','.join(d.verify_attributes) or 'none',
                        help="attributes checked against the words, comma-separated from "
                             "category,color,size, or 'none' (default %(default)s)")
    parser.add_argument('--verify-min-prob', type=float, default=d.verify_min_prob,
                        help='reject when the named attribute has less probability than this '
                             '(default %(default)s)')
    parser.add_argument('--metric-attributes', default=d.metric_attributes,
                        help="category and size re-decided with the object's measured 3D box: "
                             "'auto' = the head fitted for the checkpoint "
                             "(<checkpoint>_metric_attributes.safetensors) if present, 'none', "
                             'or a file from `unipixel-ros fit-attributes` (default %(default)s)')
    parser.add_argument('--describe-color', default=d.describe_color,
                        choices=('measured', 'network'),
                        help="a described object's colour word: 'measured' (its pixels, named "
                             "with the colour survey) or 'network' (the colour head) "
                             '(default %(default)s)')
    parser.add_argument('--raw-words', action='store_true',
                        help='the model reads the words as said (default: in its own '
                             'vocabulary, "the navy tin" -> "the blue can")')


def settings_from_args(args: argparse.Namespace):
    """:class:`~unipixel_ros.inference.settings.DecisionSettings` of the
    :func:`add_decision_arguments` options (ValueError naming a bad one). Commands without
    those options get the defaults."""
    from unipixel_ros.inference.settings import DecisionSettings
    if not hasattr(args, 'threshold'):
        return DecisionSettings()
    return DecisionSettings(exists_threshold=args.threshold, mask_threshold=args.mask_threshold,
                            verify_attributes=args.verify, verify_min_prob=args.verify_min_prob,
                            metric_attributes=args.metric_attributes,
                            describe_color=args.describe_color,
                            canonical_words=not args.raw_words)


def decision_record(predictor) -> dict:
    """The decision settings to record next to metrics (with the metric head's file name)."""
    head = predictor.metric_attributes
    return dict(predictor.settings.to_dict(),
                metric_attributes=None if head is None else head.info.get('file'))


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


def cmd_eval_resolver(args: argparse.Namespace) -> int:
    """``unipixel-ros eval-dataset --candidates oracle|model``: the referring resolver on a
    dataset, over ground-truth instance masks (oracle), SAM 3's candidates (``--backend sam3
    --model-path DIR``) or the default model's instance candidates (``--backend unipixel``,
    ``--checkpoint``)."""
    from unipixel_ros.training.resolver_evaluation import evaluate_resolver, plot_resolver_eval

    predictor = proposer = None
    source = 'oracle'
    if args.candidates == 'model' and args.backend == 'sam3':
        from unipixel_ros.backends.sam3 import create_sam3_predictor
        predictor = create_sam3_predictor(args.model_path, backend=args.sam3_engine,
                                          max_candidates=20)
        source = 'sam3'
    elif args.candidates == 'model':
        from unipixel_ros.model.checkpoint import CheckpointError
        from unipixel_ros.training.instance_candidates import UnipixelInstanceProposer
        checkpoint = args.checkpoint or str(DEFAULT_CHECKPOINT)
        try:
            proposer = UnipixelInstanceProposer(checkpoint)
        except (CheckpointError, FileNotFoundError) as exc:
            print(f'unipixel-ros eval-dataset: {exc}', file=sys.stderr)
            return 1
        source = 'unipixel'
    result = evaluate_resolver(args.data, args.split, source,
                               limit_scenes=args.limit_scenes, progress=not args.no_progress,
                               sam3_predictor=predictor, proposer=proposer)
    result.update(data=str(args.data), split=args.split or 'all',
                  backend=args.backend if args.candidates == 'model' else None)
    if proposer is not None:
        result.update(checkpoint=Path(checkpoint).name, min_heat=proposer.min_heat)
    print(json.dumps({k: v for k, v in result.items() if k != 'by_type'}, indent=2))
    if args.json:
        _write_json_and_png(args.json, result, plot_resolver_eval)
    return 0


def cmd_eval_describe(args: argparse.Namespace) -> int:
    """``unipixel-ros eval-dataset --describe``: click every nameable object, score the
    description (category and colour) and its confidence's calibration."""
    from unipixel_ros.training.describe_evaluation import evaluate_describe, plot_calibration
    from unipixel_ros.training.evaluation import parse_source
    if len(args.data) != 1:
        print('unipixel-ros eval-dataset --describe: one --data at a time', file=sys.stderr)
        return 2
    _label, data, split = parse_source(args.data[0], args.split)
    code, checkpoint, predictor = load_predictor_from_args(args, 'unipixel-ros eval-dataset',
                                                           device=args.device)
    if code:
        return code
    result = evaluate_describe(predictor, data, split, limit_scenes=args.limit_scenes,
                               progress=not args.no_progress)
    result.update(data=str(data), split=split or 'all', checkpoint=Path(checkpoint).name,
                  engine=args.engine, **decision_record(predictor))
    print(json.dumps({k: v for k, v in result.items() if k != 'calibration'}, indent=2))
    table = ', '.join(f"[{b['low']:.2f}, {b['high']:.2f}] {b['accuracy']}% of {b['count']}"
                      for b in result['calibration']['bins'] if b['count'])
    print(f"confidence bin -> accuracy: {table}; ECE {result['calibration']['ece']}")
    if args.json:
        _write_json_and_png(args.json, result, plot_calibration)
    return 0


def cmd_eval_dataset(args: argparse.Namespace) -> int:
    """``unipixel-ros eval-dataset``: RefCOCO-style metrics of a model on generated datasets.

    One ``--data``: the metrics JSON (overall, ``by_type``, and ``by_held_out`` for randomized
    scenes). Several: every source with the same loaded model, a side-by-side table on stdout
    and ``{'datasets': {label: metrics}, 'order': [...]}`` plus the model's record in the JSON.
    """
    if getattr(args, 'candidates', None) or getattr(args, 'backend', 'unipixel') == 'sam3':
        if not getattr(args, 'candidates', None):
            args.candidates = 'model'
        if len(args.data) != 1:
            print('unipixel-ros eval-dataset: the referring resolver evaluates one --data at a '
                  'time', file=sys.stderr)
            return 2
        from unipixel_ros.training.evaluation import parse_source
        _label, args.data, args.split = parse_source(args.data[0], args.split)
        return cmd_eval_resolver(args)
    from unipixel_ros.training.evaluation import (comparison_table, evaluate, evaluate_many,
                                                  parse_source, plot_comparison, plot_eval)
    if args.describe:
        return cmd_eval_describe(args)

    try:
        sources = [parse_source(text, args.split) for text in args.data]
    except ValueError as exc:
        print(f'unipixel-ros eval-dataset: {exc}', file=sys.stderr)
        return 2
    if len({label for label, _, _ in sources}) != len(sources):
        print('unipixel-ros eval-dataset: two --data sources have the same label; name them '
              'LABEL=DIR[:SPLIT]', file=sys.stderr)
        return 2
    code, checkpoint, predictor = load_predictor_from_args(args, 'unipixel-ros eval-dataset',
                                                  device=args.device)
    if code:
        return code
    rewrite = None
    if args.paraphrase:
        from unipixel_ros.training.paraphrase import paraphrase as rewrite
    import hashlib
    # the file name and its hash identify the model without writing a machine's path
    record = dict(checkpoint=Path(checkpoint).name,
                  checkpoint_sha256=hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(),
                  engine=args.engine, **decision_record(predictor))
    if len(sources) > 1:
        result = evaluate_many(predictor, sources, limit_scenes=args.limit_scenes,
                               progress=not args.no_progress, rewrite=rewrite)
        result.update(record)
        print(comparison_table(result))
        if args.json:
            _write_json_and_png(args.json, result, plot_comparison)
        return 0
    _label, data, split = sources[0]
    result = evaluate(predictor, data, limit_scenes=args.limit_scenes,
                      progress=not args.no_progress, split=split)
    if rewrite is not None:
        reworded = evaluate(predictor, data, limit_scenes=args.limit_scenes,
                            progress=not args.no_progress, rewrite=rewrite, split=split)
        result['paraphrase'] = {k: reworded[k] for k in ('ciou', 'miou', 'prec_50',
                                                         'target_acc', 'no_target_acc')}
    result.update(data=str(data), split=split or 'all', **record)
    print(json.dumps({k: v for k, v in result.items() if k not in ('by_type', 'by_held_out')},
                     indent=2))
    if args.json:
        _write_json_and_png(args.json, result, plot_eval)
    return 0


def cmd_fit_attributes(args: argparse.Namespace) -> int:
    """``unipixel-ros fit-attributes``: fit the metric attribute head of a checkpoint.

    Collects the network's answers on ``--data`` (scenes it never trained on), fits the head,
    then scores the heads alone and the heads + geometry on ``--eval-data`` (held out).
    """
    from unipixel_ros.inference.metric_attributes import default_metric_attributes_path
    from unipixel_ros.training.attribute_fitting import fit_from_datasets, plot_confusions

    code, checkpoint, predictor = load_predictor_from_args(args, 'unipixel-ros fit-attributes')
    if code:
        return code
    try:
        head, summary, held, fused_cat, fused_size = fit_from_datasets(
            predictor, checkpoint, args.data, args.split, args.eval_data, args.eval_split,
            seed=args.seed, progress=not args.no_progress)
    except FileNotFoundError as exc:
        print(f'unipixel-ros fit-attributes: {exc}', file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else default_metric_attributes_path(checkpoint)
    head.save(out)
    summary['out'] = str(out)
    print(json.dumps(summary, indent=2))
    if args.json:
        _write_json(Path(args.json), summary)
        png = Path(args.json).with_suffix('.png')
        plot_confusions(held, fused_cat, fused_size, predictor.vocab, png)
        print(f'wrote {args.json} and {png}', file=sys.stderr)
    return 0


def cmd_finetune_selection(args: argparse.Namespace) -> int:
    """``unipixel-ros finetune-selection``: retrain a checkpoint's phrase -> object selection
    on its own detected candidates (``training/selection_training.py``)."""
    from unipixel_ros.inference.loading import resolve_checkpoint
    from unipixel_ros.model.errors import CheckpointError
    from unipixel_ros.training.selection_training import plot_history, run_finetune

    try:
        summary = run_finetune(resolve_checkpoint(args.checkpoint), args.data, args.val_data,
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
        _write_json_and_png(args.json, summary, plot_history, summary['history'])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from unipixel_ros.engines import EngineError
    from unipixel_ros.model.export import ExportError, export_onnx, format_parity
    from unipixel_ros.model.errors import CheckpointError

    ckpt = _resolve_checkpoint(args, 'unipixel-ros export')
    if ckpt is None:
        return 1
    try:
        if args.format == 'tensorrt':
            from unipixel_ros.engines.tensorrt_engine import import_tensorrt
            import_tensorrt()  # fail before the (slow) ONNX export
        if args.format == 'triton':
            return _export_triton(ckpt, args)
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


def cmd_bench_sam3(args: argparse.Namespace) -> int:
    """``unipixel-ros bench model --backend sam3 --model-path DIR``: SAM 3 stage timings."""
    from unipixel_ros.backends.sam3.bench import bench_sam3
    if not args.model_path:
        print('unipixel-ros bench model: --backend sam3 needs --model-path (a Hugging Face id '
              'or a local directory)', file=sys.stderr)
        return 2
    result = bench_sam3(args.model_path, runs=min(args.runs, 5) if args.runs == 30 else args.runs,
                        threads=args.threads or None,
                        backends=tuple(args.sam3_backends.split(',')))
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    _write_json(Path(args.json), result)
    print(f'wrote {args.json}', file=sys.stderr)
    return 0


def _export_triton(ckpt: Path, args: argparse.Namespace) -> int:
    """``export --format triton``: the ONNX export (into ``OUT/onnx``), then a Triton model
    repository and the robots' client folder beside it (``serving/model_repository.py``)."""
    import importlib.util

    from unipixel_ros.model.export import export_onnx, format_parity
    from unipixel_ros.serving.model_repository import docker_command, write_model_repository

    result = export_onnx(ckpt, Path(args.out) / 'onnx', parity_samples=args.parity_samples)
    print(format_parity(result.parity))
    tensorrt = importlib.util.find_spec('tensorrt') is not None
    out = write_model_repository(result.out_dir, args.out, tensorrt=tensorrt,
                                 instances=args.instances)
    kind = 'TensorRT plans' if tensorrt else 'ONNX graphs (no TensorRT here)'
    print(f'exported {ckpt} -> {out / "model_repository"} ({kind}); robots: engine:=triton '
          f'model_path:={out / "client"}')
    print(f'serve it on a GPU host with:\n  {docker_command(out)}')
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``unipixel-ros serve``: a Triton server hosting the model until SIGINT/SIGTERM; with
    ``--check``, only ask whether a server at ``--port`` is ready (exit 0) or not (exit 1)."""
    from unipixel_ros.serving.launch import ServeError, serve, served_models, wait_until_ready

    if args.check:
        try:
            wait_until_ready(f'{args.address}:{args.port}', timeout_s=args.check_timeout,
                             models=served_models(args.backend))
        except ServeError as exc:
            print(f'unipixel-ros serve: not ready: {exc}', file=sys.stderr)
            return 1
        print(f'ready: grpc://{args.address}:{args.port}')
        return 0
    path = args.model_path
    if path is None and args.backend == 'sam3':
        print('unipixel-ros serve: --backend sam3 needs --model-path (a SAM 3 ONNX export, '
              'facebook/sam3 or a local Hugging Face directory)', file=sys.stderr)
        return 1
    if path is None:
        path = _resolve_checkpoint(argparse.Namespace(checkpoint=None), 'unipixel-ros serve')
        if path is None:
            return 1
    try:
        return serve(path, backend=args.backend, port=args.port, address=args.address,
                     threads=args.threads, max_batch_size=args.max_batch_size,
                     max_queue_delay_us=args.max_queue_delay_us,
                     stats_every_s=args.stats_every)
    except (ServeError, RuntimeError, OSError) as exc:
        print(f'unipixel-ros serve: {exc}', file=sys.stderr)
        return 1


def cmd_bench_model(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.model import bench_model

    if getattr(args, 'backend', 'unipixel') == 'sam3':
        return cmd_bench_sam3(args)
    from unipixel_ros.benchmarks.plots import plot_stage_times
    from unipixel_ros.machine import machine_context

    ckpt = _resolve_checkpoint(args, 'unipixel-ros bench model')
    if ckpt is None:
        return 1
    machine = machine_context()
    result = bench_model(ckpt, runs=args.runs, threads=args.threads)
    result['machine'] = machine
    print(json.dumps(result, indent=2, sort_keys=True))
    out = Path(args.json)
    _write_json(out, result)
    png = Path(args.png) if args.png else out.with_suffix('.png')
    w, h = result['input_size']
    plot_stage_times(png, f'model, 640x480 frame -> {w}x{h} input',
                     {k[:-3]: result[k] for k in ('torch_cpu_ms', 'onnxruntime_cpu_ms',
                                                  'torch_cuda_fp16_ms', 'tensorrt_fp16_ms')
                      if k in result})
    print(f'wrote {out} and {png}', file=sys.stderr)
    return 0


def cmd_bench_node(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.node import bench_node
    from unipixel_ros.benchmarks.plots import plot_stage_times
    from unipixel_ros.machine import machine_context

    ckpt = _resolve_checkpoint(args, 'unipixel-ros bench node')
    if ckpt is None:
        return 1
    machine = machine_context()   # before the run: the load average then is not our own
    result = bench_node(engine=args.engine, model_path=str(ckpt), seconds=args.seconds,
                        rate_hz=args.rate, data=args.data, threads=args.threads,
                        node_params=args.param, subscribe_all=args.subscribe_all)
    result['machine'] = machine
    print(json.dumps(result, indent=2, sort_keys=True))
    out = Path(args.json)
    _write_json(out, result)
    plot_stage_times(out.with_suffix('.png'), f"unipixel_node, {args.engine}, {args.rate:g} Hz "
                     'input', {k: result[k] for k in ('latency_ms_median', 'latency_ms_p95',
                                                      'model_ms_median', 'overhead_ms_median')})
    print(f'wrote {out} and {out.with_suffix(".png")}', file=sys.stderr)
    return 0


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.soak import plot_soak, soak
    from unipixel_ros.machine import machine_context

    if not args.minutes > 0:
        print('unipixel-ros bench soak: --minutes must be > 0', file=sys.stderr)
        return 2
    ckpt = _resolve_checkpoint(args, 'unipixel-ros bench soak')
    if ckpt is None:
        return 1
    machine = machine_context()
    result = soak(minutes=args.minutes, engine=args.engine, model_path=str(ckpt),
                  rate_hz=args.rate, command_period_s=args.command_period,
                  warmup_s=args.warmup, data=args.data, threads=args.threads,
                  node_params=args.param)
    result['machine'] = machine
    out = Path(args.json)
    _write_json(out, result)
    plot_soak(out.with_suffix('.png'), result)
    summary = {k: result[k] for k in ('minutes', 'rss_mb_start', 'rss_mb_max', 'rss_mb_end',
                                      'rss_growth_after_warmup_mb', 'latency_drift', 'errors',
                                      'frames_dropped', 'checks', 'passed')}
    print(json.dumps(summary, indent=2, sort_keys=True))
    print(f'wrote {out} and {out.with_suffix(".png")}', file=sys.stderr)
    return 0 if result['passed'] else 3


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.fleet import bench_fleet, plot_fleet
    from unipixel_ros.machine import machine_context

    ckpt = _resolve_checkpoint(args, 'unipixel-ros bench fleet')
    if ckpt is None:
        return 1
    machine = machine_context()   # before the run: the load average then is not our own
    result = bench_fleet(str(ckpt), streams=args.streams, seconds=args.seconds,
                         rate_hz=args.rate, server_threads=args.server_threads,
                         progress=lambda line: print(line, file=sys.stderr))
    result['machine'] = machine
    result['machine_after'] = machine_context()
    print(json.dumps(result, indent=2, sort_keys=True))
    _write_json_and_png(args.json, result, plot_fleet)
    return 0


def cmd_bench_all(args: argparse.Namespace) -> int:
    from unipixel_ros.benchmarks.suite import run_all
    return run_all(args.out, args.checkpoint, args.node_seconds, args.data)


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

    ev = sub.add_parser('eval-dataset', help='RefCOCO-style metrics of the model on a generated '
                                             'dataset (the closed loop: unipixel-sim '
                                             'eval-closed-loop)')
    ev.add_argument('--data', required=True, action='append', metavar='[LABEL=]DIR[:SPLIT]',
                    help='dataset folder (every split of train/val/test is test data unless '
                         '--split or :SPLIT, one of train, val, test, shifted, all); repeat to '
                         'evaluate several datasets / splits side by side')
    ev.add_argument('--json', help='write metrics here (and a PNG chart beside it)')
    ev.add_argument('--checkpoint', help=CKPT_HELP)
    ev.add_argument('--engine', default='torch', choices=('torch', 'onnxruntime', 'tensorrt'))
    ev.add_argument('--device', default='cpu')
    add_decision_arguments(ev)
    ev.add_argument('--limit-scenes', type=int, default=0, help='first N scenes only (0 = all)')
    ev.add_argument('--split', choices=('train', 'val', 'test', 'shifted'), default=None,
                    help='only this split of each --data without its own :SPLIT (default: '
                         'train + val + test; shifted = the held-out factor scenes)')
    ev.add_argument('--describe', action='store_true',
                    help='region -> words instead: click every nameable object; category and '
                         'colour accuracy and the calibration of the describe score')
    ev.add_argument('--paraphrase', action='store_true',
                    help='also evaluate every query reworded with out-of-grammar synonyms')
    ev.add_argument('--no-progress', action='store_true')
    ev.add_argument('--candidates', choices=('oracle', 'model'), default=None,
                    help='evaluate the referring resolver instead: over ground-truth instance '
                         'masks (oracle) or the --backend model\'s instance candidates (sam3: '
                         "SAM 3's; unipixel: the --checkpoint's object-centric decoder's, named "
                         'by its category head)')
    ev.add_argument('--backend', choices=('unipixel', 'sam3'), default='unipixel',
                    help='sam3: the resolver over SAM 3 candidates (needs --model-path)')
    ev.add_argument('--model-path', help='SAM 3: Hugging Face id or local directory')
    ev.add_argument('--sam3-engine', default='torch', choices=('torch', 'onnxruntime'),
                    help='SAM 3 runtime (default %(default)s)')
    ev.set_defaults(func=cmd_eval_dataset)

    model = bench_sub.add_parser('model', help='ms per 640x480 frame: torch vs ONNX Runtime '
                                               '(CPU), + CUDA/TensorRT when present')
    ckpt_help = CKPT_HELP
    model.add_argument('--checkpoint', help=ckpt_help)
    model.add_argument('--json', required=True,
                       help='write the result here (and a PNG chart beside it)')
    model.add_argument('--png', help='chart path (default: the JSON path with .png)')
    model.add_argument('--runs', type=int, default=30, help='timed frames per engine (medians)')
    model.add_argument('--threads', type=int, default=0,
                       help='CPU threads for torch and ONNX Runtime (0 = library defaults)')
    model.add_argument('--backend', choices=('unipixel', 'sam3'), default='unipixel',
                       help='sam3: stage timings of the SAM 3 backend (needs --model-path)')
    model.add_argument('--model-path', help='SAM 3: Hugging Face id or local directory')
    model.add_argument('--sam3-backends', default='torch,onnxruntime',
                       help='SAM 3 runtimes to time, comma-separated (default %(default)s)')
    model.set_defaults(func=cmd_bench_model)

    node = bench_sub.add_parser('node', help='unipixel_node under a 15 Hz RGB-D stream: latency, '
                                             'overhead, drops, memory')
    node.add_argument('--json', required=True, help='write the result here (and a PNG beside it)')
    node.add_argument('--checkpoint', help=ckpt_help)
    node.add_argument('--engine', default='onnxruntime',
                      choices=('torch', 'onnxruntime', 'tensorrt', 'triton'),
                      help='triton: pass --param triton_url:=HOST:PORT of a running server')
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

    soak = bench_sub.add_parser('soak', help='unipixel_node in long use: a 30 Hz stream and a '
                                             'command every few seconds; memory, latency per '
                                             'minute, errors, replies per command')
    soak.add_argument('--json', required=True, help='write the result here (and a PNG beside it)')
    soak.add_argument('--minutes', type=float, default=30.0, help='length of the run (default 30)')
    soak.add_argument('--checkpoint', help=ckpt_help)
    soak.add_argument('--engine', default='onnxruntime', choices=('torch', 'onnxruntime', 'tensorrt'))
    soak.add_argument('--rate', type=float, default=30.0, help='input frame rate, Hz (default 30)')
    soak.add_argument('--command-period', type=float, default=5.0,
                      help='seconds between two commands (default 5)')
    soak.add_argument('--warmup', type=float, default=60.0,
                      help='seconds left out of the growth, drift and error checks (default 60)')
    soak.add_argument('--threads', type=int, default=2, help='engine CPU threads')
    soak.add_argument('--data', help='dataset folder to take frames from (default: analytic scene)')
    soak.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                      help='extra unipixel_node parameter (repeatable)')
    soak.set_defaults(func=cmd_bench_soak)
    fleet = bench_sub.add_parser('fleet', help='N camera streams (one node process each) '
                                               'against one Triton server vs N in-process nodes')
    fleet.add_argument('--json', required=True, help='write the result here (and a PNG beside it)')
    fleet.add_argument('--checkpoint', help=ckpt_help)
    fleet.add_argument('--streams', type=int, nargs='+', default=[1, 2, 4, 8])
    fleet.add_argument('--seconds', type=float, default=20.0,
                       help='streaming time per configuration')
    fleet.add_argument('--rate', type=float, default=15.0, help='frame rate of each stream, Hz')
    fleet.add_argument('--server-threads', type=int, default=2,
                       help='ONNX Runtime threads per graph in the server')
    fleet.set_defaults(func=cmd_bench_fleet)

    ball = bench_sub.add_parser('all', help='geometry, model and node benchmarks -> one JSON + PNG')
    ball.add_argument('--out', default='bench_out', help='output folder (default bench_out)')
    ball.add_argument('--checkpoint', help=ckpt_help)
    ball.add_argument('--node-seconds', type=float, default=30.0)
    ball.add_argument('--data', help='dataset whose frames the node benchmark streams (make bench '
                                     'renders 10 simulator scenes; default: an analytic frame)')
    ball.set_defaults(func=cmd_bench_all)

    export = sub.add_parser('export', help='export a checkpoint to ONNX (and TensorRT engines)')
    export.add_argument('--checkpoint', help=ckpt_help)
    export.add_argument('--format', choices=('onnx', 'tensorrt', 'triton'), default='onnx',
                        help='triton: a model repository for the official Triton container '
                             '(ONNX graphs, or TensorRT plans where TensorRT exists) plus the '
                             "robots' client folder")
    export.add_argument('--out', required=True, help='output directory')
    export.add_argument('--instances', type=int, default=1,
                        help='triton: model instances per model (instance_group count)')
    export.add_argument('--parity-samples', type=int, default=8,
                        help='random samples for the torch vs ONNX Runtime check')
    export.set_defaults(func=cmd_export)

    srv = sub.add_parser('serve', help='a Triton Inference Server (PyTriton) hosting the model '
                                       'for many robots: engine:=triton on each')
    srv.add_argument('--backend', default='unipixel', choices=('unipixel', 'sam3'),
                     help='model family: unipixel (the three unipixel_* models) or sam3 '
                          '(sam3_text and sam3_frame)')
    srv.add_argument('--model-path', help='unipixel: .safetensors checkpoint or ONNX export '
                                          'directory (default: the shipped model); sam3 '
                                          '(required): a SAM 3 ONNX export, a Hugging Face id '
                                          '(facebook/sam3) or directory')
    srv.add_argument('--port', type=int, default=8001,
                     help='gRPC port (HTTP on port-1, metrics on port+1; default %(default)s)')
    srv.add_argument('--address', default='127.0.0.1',
                     help="interface to listen on ('0.0.0.0' for robots on the network)")
    srv.add_argument('--threads', type=int, default=0,
                     help='ONNX Runtime threads per graph (0 = one per physical core)')
    srv.add_argument('--max-batch-size', type=int, default=8,
                     help='most requests the dynamic batcher groups (default %(default)s)')
    srv.add_argument('--max-queue-delay-us', type=int, default=2000,
                     help='longest wait for a batch to fill, microseconds (default %(default)s)')
    srv.add_argument('--stats-every', type=float, default=30.0,
                     help='log requests and batches per model every this many seconds')
    srv.add_argument('--check', action='store_true',
                     help='only check that a server at --address:--port is ready (exit 0/1)')
    srv.add_argument('--check-timeout', type=float, default=5.0, help='seconds, with --check')
    srv.set_defaults(func=cmd_serve)

    fa = sub.add_parser('fit-attributes', help="fit the metric attribute head (category and "
                                               "size from the heads + the measured 3D box)")
    fa.add_argument('--data', nargs='+', required=True,
                    help='datasets the checkpoint never trained on (with --split)')
    fa.add_argument('--split', default='val,test', help='comma-separated splits of --data')
    fa.add_argument('--eval-data', nargs='+', required=True, help='held-out datasets to score on')
    fa.add_argument('--eval-split', default='val', help='comma-separated splits of --eval-data')
    fa.add_argument('--checkpoint', help=CKPT_HELP)
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
    fs.add_argument('--checkpoint', help='starting ' + CKPT_HELP)
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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, 'runs', 1) < 1:
        print('unipixel-ros: --runs must be >= 1', file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
