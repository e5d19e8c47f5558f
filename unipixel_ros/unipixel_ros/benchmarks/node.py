"""``unipixel-ros bench node``: unipixel_node under a 15 Hz RGB-D stream.

A real unipixel_node process (ONNX Runtime on CPU by default) is fed recorded simulator frames
(or analytic frames when no dataset is given) at ``rate_hz`` for ``seconds`` with one active
query.

* ``latency_ms_median`` / ``_p95``: image stamp -> result publish, as the node measures it for
  every result (its status window holds the last 600, more than a 30 s run at 15 Hz);
* ``received_latency_ms_median`` / ``_p95``: image stamp -> the result's arrival in this process
  (adds the result's delivery and this process's own scheduling);
* ``overhead_ms_median``: what the node adds around the model, i.e. the median time from this
  process having handed the frame's last message (colour, depth, camera_info) to the middleware
  to the result's arrival here, minus ``model_ms_median``. It counts receiving, synchronising,
  the slot, the worker's decode/geometry/tracking/result and delivering the result back; it
  leaves out the camera's own publishing (``publisher_ms_median``: stamp -> last input
  published, ~3 ms of rclpy serialisation for a 640x480 RGB-D frame in this Python process).
  ``input_delay_ms_median`` (stamp -> synchronised frame in the node), ``queue_wait_ms_median``
  (latest-frame slot) and ``worker_overhead_ms_median`` (worker time per frame minus the model,
  including the outputs published after the result) split it further;
* dropped frames (latest-frame policy), the node's resident memory (``rss_mb``, max of one
  sample a second) and its CPU use while streaming (``cpu_pct``: user + system CPU time over
  wall time, 100 = one core; psutil).

``ready_path`` / ``go_path`` line several benches up (``bench fleet``): once the node is active
the bench creates ``ready_path`` and waits for ``go_path`` to exist before it speaks and streams.

The bench subscribes only to the result and the status, as a robot's task layer would; the node
then skips drawing and publishing the mask, overlay, cloud and markers topics (it builds them
only for subscribers). ``--subscribe-all`` adds RViz-like subscribers to those four and counts
what arrives (``outputs_received``); ``--param NAME:=VALUE`` passes node parameters.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _frames(data: str | None, width: int = 640, height: int = 480):
    """-> list of (rgb uint8, depth uint16 mm, intrinsics, query) to cycle through."""
    if data:
        from unipixel_ros.dataset.reader import load_scene
        from unipixel_ros.dataset.reader import scene_dirs
        out = []
        for d in scene_dirs(data, None)[:10]:
            rec = load_scene(d)
            positive = [e for e in rec.expressions if e.get('target') is not None]
            if positive:
                depth_mm = np.round(np.nan_to_num(rec.depth_m) * 1000).astype(np.uint16)
                out.append((rec.rgb, depth_mm, rec.intrinsics, positive[0]['text']))
        if out:
            return out
    from unipixel_ros.perception.synthetic import SceneObject, render_scene
    scene = render_scene([SceneObject.box((-0.05, 0.0), 0.05, 0.04, 0.08, yaw_deg=20),
                          SceneObject.cylinder((0.08, 0.03), 0.05, 0.1)], noise_sigma=0.002)
    return [(scene.rgb, scene.depth_mm, scene.intrinsics, 'the red box')]


def launch_node(engine: str, model_path: str = '', threads: int = 2,
                node_params: list | None = None, status_rate_hz: float = 2.0):
    """Start ``unipixel_node`` as a process for a benchmark: (Popen, its log file).

    Sets (here and for the child) loopback discovery and the shipped Fast DDS profile for large
    images unless the environment already chooses. ``node_params``: extra ``NAME:=VALUE``.
    """
    from unipixel_ros.paths import config_file

    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile = str(config_file('fastdds_large_messages.xml'))
    env.setdefault('FASTRTPS_DEFAULT_PROFILES_FILE', profile)
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', profile)
    os.environ.update({k: env[k] for k in ('ROS_AUTOMATIC_DISCOVERY_RANGE',
                                          'FASTRTPS_DEFAULT_PROFILES_FILE',
                                          'FASTDDS_DEFAULT_PROFILES_FILE')})
    cmd = [sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
           '-p', f'engine:={engine}', '-p', f'threads:={threads}',
           '-p', f'status_rate_hz:={status_rate_hz}']
    for param in node_params or ():
        if ':=' not in param:
            raise ValueError(f'node parameter {param!r} is not NAME:=VALUE')
        cmd += ['-p', param]
    if model_path:
        cmd += ['-p', f'model_path:={model_path}']
    # the node's log goes to a file: a pipe nobody reads while the stream runs would block the
    # node once 64 KiB of log lines filled it
    log = tempfile.NamedTemporaryFile('w+', prefix='unipixel_bench_node_', suffix='.log',
                                      delete=False)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True), log


def wait_active(node, statuses: list, node_proc, log, timeout_s: float = 120.0,
                publishers: tuple = ()) -> None:
    """Spin ``node`` until a received ``unipixel/status`` says the node is active and every
    publisher in ``publishers`` has matched a subscription.

    The second condition matters for reliable, volatile topics such as ``speech/text``: a
    message published before discovery has matched the node's subscription is dropped, even
    though the node's status (an earlier match, the other way round) already arrived.

    Raises:
        RuntimeError: the node exited or did not become active in ``timeout_s`` (with its log).
    """
    import rclpy

    from unipixel_ros.ros.status import is_active

    deadline = time.monotonic() + timeout_s
    while not (any(is_active(s) for s in statuses)
               and all(p.get_subscription_count() > 0 for p in publishers)):
        if node_proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError('unipixel_node did not become active:\n'
                               + Path(log.name).read_text()[-4000:])
        rclpy.spin_once(node, timeout_sec=0.1)


def stop_node(node_proc, timeout_s: float = 20.0) -> int:
    """SIGINT (Ctrl-C) the node and wait; its exit status (killed after ``timeout_s``: -9)."""
    import signal

    if node_proc.poll() is None:
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            node_proc.kill()
            node_proc.wait()
    return node_proc.returncode


def bench_node(engine: str = 'onnxruntime', model_path: str = '', seconds: float = 30.0,
               rate_hz: float = 15.0, data: str | None = None, threads: int = 2,
               node_params: list | None = None, subscribe_all: bool = False,
               ready_path: str | None = None, go_path: str | None = None) -> dict:
    """Run the benchmark (see the module docstring) and return its JSON-ready summary.

    ``node_params``: extra ``NAME:=VALUE`` node parameters. ``subscribe_all``: also subscribe
    to the mask, overlay, cloud and markers topics, which the node only builds for subscribers.
    """
    import psutil
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String
    from unipixel_msgs.msg import PipelineStatus, ReferringResult

    from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image

    node_proc, log = launch_node(engine, model_path, threads, node_params)
    frames = _frames(data)
    rclpy.init()
    node = rclpy.create_node('unipixel_bench')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub_c = node.create_publisher(Image, 'camera/camera/color/image_raw', qos_profile_sensor_data)
    pub_d = node.create_publisher(Image, 'camera/camera/aligned_depth_to_color/image_raw',
                                  qos_profile_sensor_data)
    pub_i = node.create_publisher(CameraInfo, 'camera/camera/color/camera_info',
                                  qos_profile_sensor_data)
    pub_s = node.create_publisher(String, 'speech/text', reliable)
    latencies, statuses, sent = [], [], 0
    inputs_done: dict = {}      # stamp (ns) -> ROS time (s) when all 3 inputs were published
    after_inputs: list = []     # per result: input publish done -> result received, ms

    def on_result(msg: ReferringResult) -> None:
        now = node.get_clock().now().nanoseconds * 1e-9
        done = inputs_done.pop(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                               None)
        if done is not None:
            after_inputs.append(1e3 * (now - done))
        latencies.append(1e3 * (now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)))

    node.create_subscription(ReferringResult, 'unipixel/result', on_result, reliable)
    outputs_received: dict = {}
    if subscribe_all:
        from sensor_msgs.msg import PointCloud2
        from visualization_msgs.msg import MarkerArray
        for name, kind in (('mask', Image), ('overlay', Image), ('cloud', PointCloud2),
                           ('markers', MarkerArray)):
            outputs_received[name] = 0

            def count(_msg, name=name):
                outputs_received[name] += 1
            node.create_subscription(kind, f'unipixel/{name}', count, reliable
                                     if kind is MarkerArray else qos_profile_sensor_data)
    node.create_subscription(PipelineStatus, 'unipixel/status', statuses.append,
                             QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    try:
        wait_active(node, statuses, node_proc, log, publishers=(pub_s,))
        deadline = time.monotonic() + 120.0
        if ready_path:
            Path(ready_path).touch()
        while go_path and not Path(go_path).exists():
            if node_proc.poll() is not None or time.monotonic() > deadline + 600:
                raise RuntimeError('unipixel_node exited, or no go, while waiting to start')
            rclpy.spin_once(node, timeout_sec=0.1)
        pub_s.publish(String(data=frames[0][3]))
        period = 1.0 / rate_hz
        start = time.monotonic()
        next_t = start
        rss, publisher_ms = [], []
        proc = psutil.Process(node_proc.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        while time.monotonic() - start < seconds:
            rgb, depth, intr, _ = frames[(sent // 30) % len(frames)]
            stamp = node.get_clock().now()
            header = Header(frame_id='camera_color_optical_frame', stamp=stamp.to_msg())
            pub_c.publish(numpy_to_image(rgb, 'rgb8', header))
            pub_d.publish(numpy_to_image(depth, '16UC1', header))
            pub_i.publish(intrinsics_to_camera_info(intr, header))
            inputs_done[stamp.nanoseconds] = node.get_clock().now().nanoseconds * 1e-9
            publisher_ms.append(1e3 * (inputs_done[stamp.nanoseconds] - stamp.nanoseconds * 1e-9))
            sent += 1
            if sent % 15 == 0:
                rss.append(proc.memory_info().rss / 2**20)
            next_t += period
            while time.monotonic() < next_t:
                rclpy.spin_once(node, timeout_sec=max(0.0, next_t - time.monotonic()))
        cpu_pct = 100.0 * (sum(proc.cpu_times()[:2]) - cpu0) / (time.monotonic() - start)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        node_proc.terminate()
        try:
            node_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        log.close()
    last = statuses[-1] if statuses else None
    lat = np.asarray(latencies[5:] or latencies or [np.nan])
    model_ms = float(last.model_ms_median) if last else float('nan')
    node_ms = np.asarray(after_inputs[5:] or after_inputs or [np.nan])
    return {
        'engine': engine, 'rate_hz': rate_hz, 'seconds': seconds, 'frames_sent': sent,
        'frames_in': int(last.frames_in) if last else 0,
        'frames_processed': int(last.frames_processed) if last else 0,
        'frames_dropped': int(last.frames_dropped) if last else 0,
        'results_received': len(latencies),
        'latency_ms_median': round(float(last.latency_ms_median), 2) if last else None,
        'latency_ms_p95': round(float(last.latency_ms_p95), 2) if last else None,
        'received_latency_ms_median': round(float(np.median(lat)), 2),
        'received_latency_ms_p95': round(float(np.percentile(lat, 95)), 2),
        'model_ms_median': round(model_ms, 2),
        # the camera's own publishing is not the node's: counted from the moment the last of
        # the frame's three messages was handed to the middleware to the result's arrival here
        'overhead_ms_median': round(float(np.median(node_ms)) - model_ms, 2),
        'publisher_ms_median': round(float(np.median(publisher_ms)), 2) if publisher_ms else None,
        'input_delay_ms_median': round(float(last.input_delay_ms_median), 2) if last else None,
        # inside the node: worker time per frame minus the model (decode, geometry, tracking,
        # drawing, publishing) and the time a frame waits in the latest-frame slot
        'worker_overhead_ms_median': round(float(last.worker_overhead_ms_median), 2) if last else None,
        'queue_wait_ms_median': round(float(last.queue_wait_ms_median), 2) if last else None,
        'output_rate_hz': round(float(last.output_rate_hz), 2) if last else 0.0,
        'rss_mb': round(float(np.max(rss)), 1) if rss else None,
        'cpu_pct': round(cpu_pct, 1),
        'frames_source': data or 'analytic scene',
        'outputs_received': outputs_received, 'node_params': list(node_params or ()),
        'query': frames[0][3],
        'node_log': log.name,
    }
