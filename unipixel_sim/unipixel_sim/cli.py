"""``unipixel-sim``: generate a referring-segmentation dataset, preview it, check the grasp executor,
evaluate closed-loop picking (``eval-closed-loop``), run the end-to-end ROS demo (``demo``)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate_dataset
    if args.generator == 'default' and args.split != 'train':
        print('generate: --split shifted needs --generator randomized', file=sys.stderr)
        return 2
    summary = generate_dataset(args.out, args.scenes, seed=args.seed, workers=args.workers,
                               n_expressions=args.expressions, width=args.width,
                               height=args.height, progress=not args.no_progress,
                               generator=args.generator, split=args.split)
    n = max(summary['expressions'], 1)
    print(f"{summary['scenes']} scenes in {summary['seconds']:.1f} s "
          f"({summary['scenes_per_s']:.2f} scenes/s, {args.workers} workers) -> {summary['out']}")
    print(f"{summary['expressions']} expressions: " + ', '.join(
        f'{t} {c}' for t, c in sorted(summary['by_type'].items())))
    print(f"absent targets: {summary['absent']} ({100.0 * summary['absent'] / n:.1f}%), "
          f"ambiguous proposals dropped: {summary['dropped_ambiguous']}")
    if 'held_out' in summary:
        print('scenes with held-out values: ' + (', '.join(
            f'{k} {v}' for k, v in summary['held_out'].items()) or 'none'))
    return 0


def _preview(args: argparse.Namespace) -> int:
    from .preview import make_preview
    path = make_preview(args.data, args.out, split=args.split)
    print(f'preview written to {path}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``unipixel-sim`` console script."""
    parser = argparse.ArgumentParser(prog='unipixel-sim', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)

    gen = sub.add_parser('generate', help='render scenes with referring expressions')
    gen.add_argument('--out', required=True, help='dataset folder (created or extended)')
    gen.add_argument('--scenes', type=int, required=True, help='number of scenes')
    gen.add_argument('--seed', type=int, default=0, help='seed of the first scene')
    gen.add_argument('--workers', type=int, default=2, help='parallel render processes')
    gen.add_argument('--expressions', type=int, default=4, help='expressions per scene')
    gen.add_argument('--width', type=int, default=640)
    gen.add_argument('--height', type=int, default=480)
    gen.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    gen.add_argument('--generator', choices=('default', 'randomized'), default='default',
                     help='default: the original scenes (unchanged); randomized: domain '
                          'randomization, sensor effects, parametric shapes')
    gen.add_argument('--split', choices=('train', 'shifted'), default='train',
                     help='randomized only: train (train/val/test by seed, no held-out factor '
                          'values) or shifted (held-out factor values, split "shifted")')
    gen.set_defaults(func=_generate)

    prev = sub.add_parser('preview', help='contact sheet of 16 scenes with target masks')
    prev.add_argument('--data', required=True, help='dataset folder')
    prev.add_argument('--out', required=True, help='output PNG')
    prev.add_argument('--split', choices=('train', 'val', 'test', 'shifted'), default=None)
    prev.set_defaults(func=_preview)

    from . import grasp_check
    check = sub.add_parser('grasp-check', help='grasp objects at ground-truth grasps; JSON report')
    grasp_check.add_arguments(check)
    check.set_defaults(func=grasp_check.run_from_args)

    from . import evaluate_cli
    ev = sub.add_parser('eval-closed-loop', help='closed-loop pick success (model, ground-truth '
                                                 'mask, random object) over unseen scenes; JSON '
                                                 'report')
    evaluate_cli.add_arguments(ev)
    ev.set_defaults(func=evaluate_cli.run_from_args)

    from . import model_guard
    guard = sub.add_parser('model-guard', help="thresholds of the shipped model's CI guard "
                                               '(per expression type, from bootstrap intervals)')
    model_guard.add_arguments(guard)
    guard.set_defaults(func=model_guard.run_from_args)

    # listed for --help; everything after 'demo' goes to unipixel_sim.demo unparsed
    sub.add_parser('demo', help='the end-to-end ROS demo (make demo); demo --help',
                   add_help=False)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['demo']:
        from .demo import main as demo_main
        return demo_main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
