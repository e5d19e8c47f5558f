"""The house plan of docs/ARCHITECTURE.md, checked on the code: layers import only downward, no
import cycles, rclpy only in ros/ (and the node benchmark, a ROS client), nothing imports
unipixel_sim, and the engines that run exported graphs (and the model server) load no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / 'unipixel_ros'

#: Layers from the bottom up; a module may import its own layer and the ones below it.
LAYERS = ('base', 'perception', 'dataset', 'language', 'model', 'engines', 'backends', 'serving',
          'inference', 'training', 'ros', 'benchmarks', 'cli')
#: Top-level modules of the base layer.
BASE = ('paths', 'machine')
#: Modules that may import rclpy: the ROS layer and the benchmarks that drive a real node as ROS
#: clients (node, soak).
RCLPY_ALLOWED = ('ros', 'benchmarks.node', 'benchmarks.soak')


def _layer(module: str) -> str:
    """'unipixel_ros.ros.sync' -> 'ros'; 'unipixel_ros.paths' -> 'base'."""
    parts = module.split('.')
    if len(parts) == 1:
        return 'base'
    head = parts[1]
    if head in BASE:
        return 'base'
    return head


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        rel = path.relative_to(PACKAGE.parent).with_suffix('')
        parts = list(rel.parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        out['.'.join(parts)] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names of every module ``module`` imports (at any depth in the file)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == '__init__.py' else module.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                prefix = '.'.join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ''
            found.add(prefix)
            found.update(f'{prefix}.{alias.name}' for alias in node.names)
    return found


MODULES = _modules()
IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _internal(module: str) -> set[str]:
    return {name for name in IMPORTS[module] if name in MODULES and name != module}


def test_every_subpackage_is_a_named_layer():
    unknown = {_layer(m) for m in MODULES if m != 'unipixel_ros'} - set(LAYERS)
    assert not unknown, f'subpackages outside the layer list of docs/ARCHITECTURE.md: {unknown}'


def test_no_module_imports_from_a_layer_above_its_own():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = [f'{m} ({_layer(m)}) -> {name} ({_layer(name)})'
              for m in MODULES if m != 'unipixel_ros'
              for name in _internal(m)
              if name != 'unipixel_ros' and rank[_layer(name)] > rank[_layer(m)]]
    assert not upward, 'imports that run back up:\n' + '\n'.join(upward)


def test_the_module_import_graph_has_no_cycles():
    graph = {m: {n for n in _internal(m) if n != 'unipixel_ros' and not m.startswith(n + '.')}
             for m in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, 'import cycles: ' + '; '.join(' -> '.join(c) for c in cycles)


def test_only_the_ros_layer_imports_rclpy_and_nothing_imports_the_simulator():
    rclpy = [m for m in MODULES if any(n == 'rclpy' or n.startswith('rclpy.') for n in IMPORTS[m])
             and not any(m == f'unipixel_ros.{a}' or m.startswith(f'unipixel_ros.{a}.')
                         for a in RCLPY_ALLOWED)]
    assert not rclpy, f'rclpy imported outside ros/: {rclpy}'
    sim = [m for m in MODULES if any(n.split('.')[0] == 'unipixel_sim' for n in IMPORTS[m])]
    assert not sim, f'unipixel_ros modules importing unipixel_sim: {sim}'


@pytest.mark.parametrize('module', ['unipixel_ros.engines.onnx_engine',
                                    'unipixel_ros.engines.tensorrt_engine',
                                    'unipixel_ros.engines.triton_engine',
                                    'unipixel_ros.engines.triton_connection',
                                    'unipixel_ros.serving.triton_server',
                                    'unipixel_ros.serving.sam3_models',
                                    'unipixel_ros.backends.sam3.triton_client',
                                    'unipixel_ros.model.graph_io'])
def test_engines_that_run_exported_graphs_import_no_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_only_the_shipped_checkpoint_and_its_metric_head_are_installed(tmp_path):
    """Ancestors of the shipped model stay in git history, not in the installed package."""
    import shutil
    import zipfile

    from unipixel_ros.inference.loading import DEFAULT_CHECKPOINT
    from unipixel_ros.inference.metric_attributes import default_metric_attributes_path

    source = tmp_path / 'src'     # a copy: building leaves build/ and egg-info behind
    shutil.copytree(PACKAGE.parent, source, ignore=shutil.ignore_patterns(
        'build', '*.egg-info', '__pycache__', 'test'))
    run = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                          '-q', '-w', str(tmp_path), str(source)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    wheel = next(tmp_path.glob('unipixel_ros-*.whl'))
    weights = sorted(name.rsplit('/', 1)[-1] for name in zipfile.ZipFile(wheel).namelist()
                     if name.startswith('unipixel_ros/weights/'))
    assert weights == sorted(['MODEL_CARD.md', DEFAULT_CHECKPOINT.name,
                              default_metric_attributes_path(DEFAULT_CHECKPOINT).name])
