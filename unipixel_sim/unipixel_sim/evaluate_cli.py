"""Command-line options of ``unipixel-sim eval-closed-loop``, importable without MuJoCo; the
work is in :mod:`.closed_loop`."""
from __future__ import annotations

import json
import sys

from .seeds import CLOSED_LOOP_SEED as DEFAULT_SEED


def add_arguments(parser) -> None:
    """Options of ``unipixel-sim eval-closed-loop``."""
    parser.add_argument('--scenes', type=int, default=100,
                        help='positive commands, one per scene (default 100)')
    parser.add_argument('--absent', type=int, default=30,
                        help='absent-object commands, one in each of the first scenes; more '
                             'scenes are rendered when those hold too few (default 30)')
    parser.add_argument('--generator', choices=('default', 'randomized'), default='default',
                        help='scene source: the default generator (as before) or the randomized '
                             'one (sensor images, parametric shapes, its expressions)')
    parser.add_argument('--split', choices=('train', 'shifted'), default='train',
                        help='randomized only: train (in-distribution factor values) or shifted '
                             '(held-out factor values and wordings)')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED,
                        help=f'first scene seed (default {DEFAULT_SEED}: no dataset uses it)')
    parser.add_argument('--json', required=True, help='write the report here (and a PNG beside it)')
    parser.add_argument('--checkpoint', help='.safetensors checkpoint (default: the shipped model)')
    parser.add_argument('--engine', default='onnxruntime', choices=('torch', 'onnxruntime', 'tensorrt'))
    from unipixel_ros.cli import add_decision_arguments
    add_decision_arguments(parser)
    parser.add_argument('--no-progress', action='store_true')


def run_from_args(args) -> int:
    """Evaluate with parsed :func:`add_arguments` options; 0 on success, 1 on a bad model."""
    from unipixel_ros.cli import decision_record, load_predictor_from_args

    if args.scenes < 1 or args.absent < 0:
        print('eval-closed-loop: --scenes must be >= 1 and --absent >= 0', file=sys.stderr)
        return 2
    if args.generator == 'default' and args.split != 'train':
        print('eval-closed-loop: --split shifted needs --generator randomized', file=sys.stderr)
        return 2
    code, _checkpoint, predictor = load_predictor_from_args(args, 'eval-closed-loop')
    if code:
        return code
    from .closed_loop import evaluate_closed_loop, summary_line, write_report

    report = evaluate_closed_loop(predictor, args.scenes, args.seed, args.absent,
                                  progress=not args.no_progress, generator=args.generator,
                                  split=args.split)
    report.update(checkpoint=str(args.checkpoint or 'shipped'), engine=args.engine,
                  **decision_record(predictor))
    write_report(report, args.json)
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ('trials', 'absent_trials')}, indent=2))
    print(summary_line(report))
    return 0
