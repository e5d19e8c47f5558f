"""``python -m unipixel_ros.backends.sam3 {make-fixture,export,build-trt,bench} ...``

A stop-gap entry point until the project CLI grows a ``sam3`` command; every sub-command calls
one library function and prints its result as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog='python -m unipixel_ros.backends.sam3',
                                 description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('make-fixture', help='write a random SAM 3 (tiny, or --full-size)')
    p.add_argument('out_dir')
    p.add_argument('--full-size', action='store_true',
                   help='facebook/sam3 architecture (840 M parameters, 3.4 GB)')
    p.add_argument('--seed', type=int, default=0)
    p = sub.add_parser('export', help='export to ONNX and check parity against torch')
    p.add_argument('model_path')
    p.add_argument('out_dir')
    p.add_argument('--force', action='store_true')
    p.add_argument('--no-parity', action='store_true')
    p.add_argument('--threads', type=int)
    p = sub.add_parser('build-trt', help='build TensorRT engines from an ONNX export')
    p.add_argument('onnx_dir')
    p.add_argument('--engine-dir')
    p.add_argument('--fp32', action='store_true')
    p.add_argument('--workspace-gib', type=float, default=4.0)
    p.add_argument('--force', action='store_true')
    p = sub.add_parser('bench', help='stage timings per backend')
    p.add_argument('model_path')
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int)
    p.add_argument('--backends', default='torch,onnxruntime')
    p.add_argument('--onnx-dir')
    p.add_argument('--cache-root')
    p.add_argument('--frame', default='480x640', help='HxW of the synthetic frame')
    p.add_argument('--phrases', default='red cup,blue mug')
    args = ap.parse_args(argv)

    from .types import Sam3Error

    try:
        if args.cmd == 'make-fixture':
            from .fixture import make_tiny_sam3

            out = {'model_dir': str(make_tiny_sam3(args.out_dir, seed=args.seed,
                                                   full_size=args.full_size))}
        elif args.cmd == 'export':
            from .export import export_sam3_onnx

            out = export_sam3_onnx(args.model_path, args.out_dir, parity=not args.no_parity,
                                   force=args.force, threads=args.threads).to_dict()
        elif args.cmd == 'build-trt':
            from .tensorrt_backend import build_sam3_tensorrt

            out = build_sam3_tensorrt(args.onnx_dir, args.engine_dir, fp16=not args.fp32,
                                      workspace_gib=args.workspace_gib, force=args.force)
        else:
            from .bench import bench_sam3

            h, w = (int(v) for v in args.frame.lower().split('x'))
            out = bench_sam3(args.model_path, runs=args.runs, threads=args.threads,
                             backends=tuple(b for b in args.backends.split(',') if b),
                             frame_hw=(h, w), phrases=tuple(args.phrases.split(',')),
                             warmup=args.warmup, onnx_dir=args.onnx_dir,
                             cache_root=args.cache_root)
    except Sam3Error as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
