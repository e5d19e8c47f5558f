"""The simulated end-to-end demo (``make demo``): spoken commands -> unipixel_node -> Panda picks.

Starts three real ROS 2 processes, ``sim_camera`` (the MuJoCo world of scene ``--seed``),
``unipixel_node`` (the shipped model) and ``grasp_executor`` (listening to ``unipixel/pick``, the
one-shot grasp of a pick command), then speaks a scripted list of commands into ``speech/text``:
an attribute, a spatial (position), a relational and a superlative phrase made from the scene's
ground truth by the dataset's expression generator, and one object that is not there. For each
it records what the node answered and what the robot did:

* found, the mask IoU against the simulator's instance mask, the centroid error against the
  object's true centre, the latency from image stamp to result, the spoken reply;
* grasp success: the executor lifted and held an object, and that object is the one meant;
* ``demo_out/``: ``summary.json`` (one entry per command), ``report.md``, per command the overlay
  PNG, the object cloud PLY and a GIF of the pick as the camera saw it, and the process logs.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

#: Scene of the default demo. Any seed works; this one (never used for training, see
#: ``seeds.CLOSED_LOOP_SEED``) has objects of several categories and colours in reach.
DEFAULT_SEED = 700003
WANTED_TYPES = ('attribute', 'position', 'relation', 'superlative')


def _env(domain_id: int) -> dict:
    from unipixel_ros.paths import config_file
    env = dict(os.environ)
    profile = str(config_file('fastdds_large_messages.xml'))
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTRTPS_DEFAULT_PROFILES_FILE=profile, FASTDDS_DEFAULT_PROFILES_FILE=profile,
               PYTHONUNBUFFERED='1', MUJOCO_GL=env.get('MUJOCO_GL', 'egl'))
    return env


def choose_commands(objects: List[dict], seed: int) -> List[dict]:
    """One expression per type of :data:`WANTED_TYPES` (when the scene allows it) whose target
    the Panda can hold, then one absent object; made by the dataset's generator."""
    from .expressions import make_expressions
    expressions, _ = make_expressions(objects, np.random.default_rng([seed, 0xDE30]), n=24,
                                      min_visible_pixels=150)
    chosen = []
    for t in WANTED_TYPES:
        e = next((e for e in expressions if e['type'] == t and e['target'] is not None
                  and objects[e['target']]['graspable']), None)
        if e is not None:
            chosen.append(e)
    absent = next((e for e in expressions if e['type'] == 'absent'), None)
    if absent is not None:
        chosen.append(absent)
    return chosen


class DemoObserver:
    """The demo's own rclpy node: speaks commands and records every output it needs."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import (DurabilityPolicy, QoSProfile, ReliabilityPolicy,
                               qos_profile_sensor_data)
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from unipixel_msgs.msg import PipelineStatus, ReferringResult

        self.node = rclpy.create_node('unipixel_demo')
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.lock = threading.Lock()
        self.scene: Optional[dict] = None
        self.instances: Optional[np.ndarray] = None
        self.results: List[tuple] = []     # (receive time, ReferringResult)
        self.replies: List[tuple] = []
        self.outcomes: List[tuple] = []
        self.picks: List[tuple] = []
        self.statuses: List = []
        self.overlay = None
        self.frames: List[np.ndarray] = []
        self.recording = False
        self._last_frame_t = 0.0
        sub = self.node.create_subscription
        sub(String, 'sim/scene', self._on_scene, latched)
        sub(Image, 'sim/instances', self._on_instances, qos_profile_sensor_data)
        sub(Image, 'camera/camera/color/image_raw', self._on_color, qos_profile_sensor_data)
        sub(Image, 'unipixel/overlay', self._on_overlay, qos_profile_sensor_data)
        sub(ReferringResult, 'unipixel/result', lambda m: self._append(self.results, m), reliable)
        sub(String, 'unipixel/reply', lambda m: self._append(self.replies, m.data), reliable)
        sub(String, 'sim/grasp_outcome',
            lambda m: self._append(self.outcomes, json.loads(m.data)), reliable)
        sub(PoseStamped, 'unipixel/pick', lambda m: self._append(self.picks, m), reliable)
        sub(PipelineStatus, 'unipixel/status', self.statuses.append, latched)
        self.speech = self.node.create_publisher(String, 'speech/text', reliable)
        self._String = String

    def _append(self, store: list, item) -> None:
        with self.lock:
            store.append((time.monotonic(), item))

    def _on_scene(self, msg) -> None:
        self.scene = json.loads(msg.data)

    def _on_instances(self, msg) -> None:
        from unipixel_ros.ros.conversions import image_to_numpy
        self.instances = image_to_numpy(msg).copy()

    def _on_overlay(self, msg) -> None:
        self.overlay = msg

    def _on_color(self, msg) -> None:
        now = time.monotonic()
        if self.recording and now - self._last_frame_t >= 0.2:
            from unipixel_ros.ros.conversions import color_to_rgb
            self._last_frame_t = now
            self.frames.append(color_to_rgb(msg)[::2, ::2].copy())

    def say(self, text: str) -> float:
        self.speech.publish(self._String(data=text))
        return time.monotonic()

    def spin_until(self, predicate, timeout: float) -> bool:
        import rclpy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if predicate():
                return True
        return False

    def after(self, store: list, t: float) -> list:
        with self.lock:
            return [item for (tr, item) in store if tr >= t]


def _start(name: str, args: List[str], env: dict, log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f'{name}.log', 'w')
    return subprocess.Popen([sys.executable, '-m', *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()


def run_demo(out: str = 'demo_out', seed: int = DEFAULT_SEED, engine: str = 'onnxruntime',
             checkpoint: Optional[str] = None, domain_id: Optional[int] = None,
             result_timeout_s: float = 20.0, grasp_timeout_s: float = 40.0,
             pick_timeout_s: float = 6.0) -> dict:
    """Run the demo; returns (and writes) the summary. See the module docstring."""
    import rclpy

    from unipixel_ros.inference.loading import resolve_checkpoint
    from unipixel_ros.ros.conversions import image_to_numpy, msg_to_cloud
    from unipixel_ros.ros.status import is_active

    out_dir = Path(out)
    (out_dir / 'logs').mkdir(parents=True, exist_ok=True)
    model = str(resolve_checkpoint(checkpoint))
    domain_id = domain_id if domain_id is not None else 50 + os.getpid() % 50
    env = _env(domain_id)
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                          'FASTRTPS_DEFAULT_PROFILES_FILE',
                                          'FASTDDS_DEFAULT_PROFILES_FILE')})
    t_start = time.monotonic()
    procs = [
        _start('sim_camera', ['unipixel_sim.nodes.sim_camera', '--ros-args', '-p', f'seed:={seed}',
                              '-p', 'rate_hz:=15.0'], env, out_dir / 'logs'),
        _start('unipixel_node', ['unipixel_ros.ros.unipixel_node', '--ros-args',
                                 '-p', f'engine:={engine}', '-p', f'model_path:={model}',
                                 '-p', 'status_rate_hz:=2.0'], env, out_dir / 'logs'),
        _start('grasp_executor', ['unipixel_sim.nodes.grasp_executor_node', '--ros-args',
                                  '-r', 'unipixel/grasp:=unipixel/pick',
                                  '-p', 'show_result_s:=1.0'], env, out_dir / 'logs'),
    ]
    rclpy.init()
    obs = DemoObserver()
    entries: List[dict] = []
    try:
        # the speech publisher must have matched the node's subscription too: a reliable,
        # volatile message published before that match is dropped
        ready = obs.spin_until(lambda: obs.scene is not None and obs.instances is not None and any(
            is_active(s) for s in obs.statuses)
            and obs.speech.get_subscription_count() > 0, 180.0)
        dead = [p.args[2] for p in procs if p.poll() is not None]
        if not ready or dead:
            raise RuntimeError(f'the demo processes did not come up (exited: {dead}); see '
                               f'{out_dir / "logs"}')
        objects = obs.scene['objects']
        commands = choose_commands(objects, seed)
        print(f'scene {seed}: ' + ', '.join(f"{o['size']} {o['color']} {o['category']}"
                                            for o in objects), flush=True)
        for k, expr in enumerate(commands):
            entries.append(_run_command(obs, k, expr, objects, out_dir, result_timeout_s,
                                        grasp_timeout_s, pick_timeout_s, image_to_numpy,
                                        msg_to_cloud))
            e = entries[-1]
            print(f"[{k + 1}/{len(commands)}] {e['command']!r}: found={e['found']} "
                  f"iou={e['mask_iou']} grasp_success={e['grasp_success']} "
                  f"reply={e['reply']!r}", flush=True)
    finally:
        obs.node.destroy_node()
        rclpy.try_shutdown()
        _stop(procs)
    summary = {'seed': seed, 'engine': engine, 'checkpoint': model,
               'wall_s': round(time.monotonic() - t_start, 1), 'commands': entries}
    (out_dir / 'summary.json').write_text(json.dumps(summary, indent=2))
    (out_dir / 'report.md').write_text(_markdown(summary))
    print(_table(entries))
    print(f'wrote {out_dir / "summary.json"} and {out_dir / "report.md"} '
          f'({summary["wall_s"]} s)')
    return summary


def _run_command(obs: DemoObserver, k: int, expr: dict, objects: List[dict], out_dir: Path,
                 result_timeout_s: float, grasp_timeout_s: float, pick_timeout_s: float,
                 image_to_numpy, msg_to_cloud) -> dict:
    import imageio

    target = expr['target']
    command = f"pick up {expr['text']}"
    entry = {'index': k, 'command': command, 'type': expr['type'], 'expected_found': target is not None,
             'target': objects[target]['body'] if target is not None else None,
             'found': None, 'mask_iou': None, 'centroid_error_cm': None, 'latency_ms': None,
             'reply': None, 'grasp_published': False, 'grasp_success': None, 'lifted': None,
             'files': {}}
    obs.frames, obs.recording = [], True
    t0 = obs.say(command)
    got = obs.spin_until(lambda: bool(obs.after(obs.results, t0)), result_timeout_s)
    if got:
        # the first result answers the command; judge a settled one (3 frames in) when there
        obs.spin_until(lambda: len(obs.after(obs.results, t0)) >= 3, 1.0)
        results = obs.after(obs.results, t0)
        result = results[min(2, len(results) - 1)]
        stamp = result.header.stamp.sec + result.header.stamp.nanosec * 1e-9
        entry['latency_ms'] = round(1e3 * (obs.node.get_clock().now().nanoseconds * 1e-9 - stamp), 1)
        entry['found'] = bool(result.found)
        entry['score'] = round(float(result.score), 3)
        if result.found and obs.instances is not None:
            mask = image_to_numpy(result.mask) > 0
            if target is not None:
                gt = obs.instances == target + 1
                entry['mask_iou'] = round(float((mask & gt).sum() / max((mask | gt).sum(), 1)), 3)
                c = result.centroid
                entry['centroid_error_cm'] = round(100 * float(np.linalg.norm(
                    np.array([c.x, c.y, c.z]) - np.array(objects[target]['center_camera']))), 2)
            if result.cloud.width:
                import open3d as o3d
                pts, cols = msg_to_cloud(result.cloud)
                pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
                if cols is not None:
                    pcd.colors = o3d.utility.Vector3dVector(cols.astype(np.float64) / 255.0)
                ply = out_dir / f'cmd{k}_cloud.ply'
                o3d.io.write_point_cloud(str(ply), pcd)
                entry['files']['cloud'] = ply.name
        if obs.overlay is not None:
            png = out_dir / f'cmd{k}_overlay.png'
            imageio.imwrite(png, image_to_numpy(obs.overlay))
            entry['files']['overlay'] = png.name
    obs.spin_until(lambda: bool(obs.after(obs.replies, t0)), 2.0)
    replies = obs.after(obs.replies, t0)
    entry['reply'] = replies[0] if replies else None
    if target is not None:
        # the node publishes unipixel/pick after pick_stable_frames found frames
        picked = obs.spin_until(lambda: bool(obs.after(obs.picks, t0)), pick_timeout_s)
        entry['grasp_published'] = picked
        done = picked and obs.spin_until(lambda: bool(obs.after(obs.outcomes, t0)),
                                         grasp_timeout_s)
        if done:
            outcome = obs.after(obs.outcomes, t0)[0]
            entry['lifted'] = bool(outcome.get('success'))
            entry['lifted_object'] = outcome.get('target')
            entry['grasp_success'] = bool(outcome.get('success')) and \
                outcome.get('target') == entry['target']
            entry['grasp_reason'] = outcome.get('reason')
            obs.spin_until(lambda: False, 2.0)    # film the held object and the reset
        else:
            entry['grasp_success'] = False
            entry['grasp_reason'] = ('no grasp executed within the timeout' if picked else
                                     'the node published no pick')
    else:
        obs.spin_until(lambda: False, 3.0)        # a pick would have come by now
        entry['grasp_published'] = bool(obs.after(obs.picks, t0))
        entry['grasp_success'] = None
    obs.recording = False
    if obs.frames:
        gif = out_dir / f'cmd{k}_pick.gif'
        imageio.mimsave(gif, obs.frames, duration=0.2)
        entry['files']['gif'] = gif.name
    obs.say('stop')
    obs.spin_until(lambda: False, 1.0)
    return entry


def _fmt(v, unit: str = '') -> str:
    if v is None:
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    return f'{v}{unit}'


def _table(entries: List[dict]) -> str:
    head = ['command', 'found', 'mask IoU', 'centroid err', 'grasp success', 'latency']
    rows = [[e['command'], _fmt(e['found']), _fmt(e['mask_iou']), _fmt(e['centroid_error_cm'], ' cm'),
             (_fmt(e['grasp_success']) if e['expected_found']
              else ('no grasp (correct)' if not e['grasp_published'] else 'GRASPED (wrong)')),
             _fmt(e['latency_ms'], ' ms')] for e in entries]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: ' | '.join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return '\n'.join([line(head), '-+-'.join('-' * w for w in widths)] + [line(r) for r in rows])


def _markdown(summary: dict) -> str:
    lines = [f"# unipixel_ros simulated demo (scene seed {summary['seed']})", '',
             f"Engine {summary['engine']}, checkpoint `{summary['checkpoint']}`, "
             f"{summary['wall_s']} s.", '', '| command | found | mask IoU | centroid error | '
             'grasp success | latency | reply |', '|---|---|---|---|---|---|---|']
    for e in summary['commands']:
        grasp = (_fmt(e['grasp_success']) if e['expected_found']
                 else ('no grasp (correct)' if not e['grasp_published'] else 'grasped (wrong)'))
        lines.append(f"| {e['command']} | {_fmt(e['found'])} | {_fmt(e['mask_iou'])} | "
                     f"{_fmt(e['centroid_error_cm'], ' cm')} | {grasp} | "
                     f"{_fmt(e['latency_ms'], ' ms')} | {e['reply'] or '-'} |")
    lines.append('')
    for e in summary['commands']:
        lines.append(f"## {e['command']}")
        files = e['files']
        if 'overlay' in files:
            lines.append(f"![overlay]({files['overlay']})")
        if 'gif' in files:
            lines.append(f"![pick]({files['gif']})")
        if 'cloud' in files:
            lines.append(f"Object cloud: [{files['cloud']}]({files['cloud']})")
        lines.append('')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='unipixel-sim demo', description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='demo_out', help='report folder (default demo_out)')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help='scene seed')
    parser.add_argument('--engine', default='onnxruntime', choices=('torch', 'onnxruntime', 'tensorrt'))
    parser.add_argument('--checkpoint', help='.safetensors checkpoint (default: the shipped model)')
    args = parser.parse_args(argv)
    try:
        summary = run_demo(args.out, args.seed, args.engine, args.checkpoint)
    except Exception as exc:  # a readable reason, logs are in out/logs
        print(f'demo failed: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 1
    ok = all(e['found'] is not None for e in summary['commands']) and summary['commands']
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
