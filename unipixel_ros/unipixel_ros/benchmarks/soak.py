"""``unipixel-ros bench soak``: unipixel_node in long use, as a robot would use it.

A real unipixel_node process (started as in ``bench node``) is fed a 30 Hz RGB-D stream for
``minutes`` while a command arrives every ``command_period_s`` seconds, cycling through
:data:`COMMANDS`: pick / find / track / stop, describe through the Describe service, through an
RViz click and through "what is this", and pick / find of objects that are not in the scene.

Measured (JSON, and a PNG of the same):

* the node's resident memory (psutil, once a second): at the start (node active), after the
  warm-up, at the end, the maximum, and the growth after the warm-up;
* latency, image stamp -> the result's arrival here, ms: median and p95 per minute;
* frames: sent, received by the node, processed, dropped by its latest-frame slot (the model
  is slower than 30 Hz on a CPU: dropping is the designed behaviour) and lost before the node;
* errors: the node's error counter after the warm-up, tracebacks in its log, and service calls
  that failed for another reason than "no object at that point" or got no answer in 10 s;
* replies per command: every ``unipixel/reply`` is counted against the last command sent
  before it. A non-tracking command must get exactly one reply; a tracking one may also say
  "I lost X" / "I see X again".

``checks`` holds the acceptance criteria of a 30-minute run after the warm-up: RSS growth
<= 20 MB; latency drift <= +20 % (the median of the last sixth of the minutes after the warm-up
against the first sixth's; a latency that falls passes); 0 errors; exactly one reply per
non-tracking command; a clean exit on SIGINT. ``passed`` is their conjunction.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: (kind, what is sent) in the order they are sent, then again. kind: 'speech' (a spoken
#: command), 'describe' (the Describe service at the target's pixel), 'click' (an RViz click
#: on the target). Absent objects: the purple ball and the green bowl are not in the frames.
COMMANDS = (
    ('speech', 'pick up the red box'),
    ('speech', 'find the purple ball'),
    ('describe', ''),
    ('speech', 'track the red box'),
    ('speech', 'stop'),
    ('click', ''),
    ('speech', 'what is this'),
    ('speech', 'pick up the green bowl'),
    ('speech', 'where is the blue cylinder'),
    ('speech', 'stop'),
)
#: service answers that are a normal "no" rather than an error
NORMAL_REFUSALS = ('no object at that point',)


def _minute_stats(samples: list[tuple[float, float]], t0: float, minutes: int) -> list[dict]:
    """Per minute since ``t0``: median and p95 of ``(time s, latency ms)`` samples."""
    out = []
    for m in range(minutes):
        vals = [v for t, v in samples if t0 + 60 * m <= t < t0 + 60 * (m + 1)]
        out.append({'minute': m + 1, 'results': len(vals),
                    'latency_ms_median': round(float(np.median(vals)), 2) if vals else None,
                    'latency_ms_p95': round(float(np.percentile(vals, 95)), 2) if vals else None})
    return out


def soak(minutes: float = 30.0, engine: str = 'onnxruntime', model_path: str = '',
         rate_hz: float = 30.0, command_period_s: float = 5.0, warmup_s: float = 60.0,
         data: str | None = None, threads: int = 2, node_params: list | None = None,
         progress: bool = True) -> dict:
    """Run the soak (see the module docstring) and return its JSON-ready summary.

    Args:
        minutes: length of the stream, minutes (the warm-up included).
        rate_hz: camera frame rate, Hz.
        command_period_s: seconds between two commands.
        warmup_s: seconds at the start left out of the growth, drift and error checks.
        data: a dataset folder to take frames from (default: the analytic scene of
            ``bench node``, a red box and a blue cylinder).
        node_params: extra ``NAME:=VALUE`` node parameters.
    """
    import sys

    import psutil
    import rclpy
    from geometry_msgs.msg import PointStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String
    from unipixel_msgs.msg import PipelineStatus, ReferringResult
    from unipixel_msgs.srv import Describe

    from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image

    from .node import _frames, launch_node, stop_node, wait_active

    frames = _frames(data)
    rgb, depth, intr, query = frames[0]
    # the pixel and 3D point that describe and clicks ask about: the centre of the red pixels
    # (the analytic scene's red box), else the image centre
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    ys, xs = np.nonzero(red)
    u, v = ((int(np.median(xs)), int(np.median(ys))) if len(xs)
            else (intr.width // 2, intr.height // 2))
    z = float(depth[v, u]) * 1e-3 or 0.6
    click = PointStamped()
    click.header.frame_id = 'camera_color_optical_frame'
    click.point.x = float((u - intr.cx) * z / intr.fx)
    click.point.y = float((v - intr.cy) * z / intr.fy)
    click.point.z = z

    node_proc, log = launch_node(engine, model_path, threads, node_params, status_rate_hz=1.0)
    rclpy.init()
    node = rclpy.create_node('unipixel_soak')
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pub_c = node.create_publisher(Image, 'camera/camera/color/image_raw', qos_profile_sensor_data)
    pub_d = node.create_publisher(Image, 'camera/camera/aligned_depth_to_color/image_raw',
                                  qos_profile_sensor_data)
    pub_i = node.create_publisher(CameraInfo, 'camera/camera/color/camera_info',
                                  qos_profile_sensor_data)
    pub_s = node.create_publisher(String, 'speech/text', reliable)
    pub_click = node.create_publisher(PointStamped, 'clicked_point', reliable)
    describe = node.create_client(Describe, 'unipixel/describe')
    latencies: list = []            # (monotonic s, stamp -> arrival ms)
    replies: list = []              # (monotonic s, text)
    statuses: list = []
    status_times: list = []         # monotonic s at which each status arrived
    node.create_subscription(
        ReferringResult, 'unipixel/result', lambda m: latencies.append((
            time.monotonic(), 1e3 * (node.get_clock().now().nanoseconds * 1e-9
                                     - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)))),
        reliable)
    node.create_subscription(String, 'unipixel/reply',
                             lambda m: replies.append((time.monotonic(), m.data)), reliable)

    def on_status(msg) -> None:
        statuses.append(msg)
        status_times.append(time.monotonic())

    node.create_subscription(PipelineStatus, 'unipixel/status', on_status, reliable)
    sent_commands: list = []        # dicts: t, kind, text
    calls: list = []                # (sent at, future)
    rss: list = []                  # (monotonic s, MB)
    errors: list = []               # what went wrong, client side
    sent = 0
    try:
        wait_active(node, statuses, node_proc, log, publishers=(pub_s, pub_click))
        proc = psutil.Process(node_proc.pid)
        assert describe.wait_for_service(timeout_sec=30.0), 'no unipixel/describe service'
        start = time.monotonic()
        rss_start = proc.memory_info().rss / 2**20
        end = start + 60.0 * minutes
        period = 1.0 / rate_hz
        next_frame, next_command, next_rss, k = start, start + 2.0, start, 0
        images = [(numpy_to_image(f[0], 'rgb8', Header()), numpy_to_image(f[1], '16UC1', Header()),
                   intrinsics_to_camera_info(f[2], Header())) for f in frames]
        last_print = start
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_frame:
                color, depth_msg, info = images[(sent // 30) % len(images)]
                header = Header(frame_id='camera_color_optical_frame',
                                stamp=node.get_clock().now().to_msg())
                color.header = depth_msg.header = info.header = header
                pub_c.publish(color)
                pub_d.publish(depth_msg)
                pub_i.publish(info)
                sent += 1
                next_frame += period
                if next_frame < now:            # fell behind (a slow moment): do not burst
                    next_frame = now + period
            if now >= next_command:
                kind, text = COMMANDS[k % len(COMMANDS)]
                k += 1
                if kind == 'speech':
                    pub_s.publish(String(data=text))
                elif kind == 'click':
                    pub_click.publish(click)
                    text = f'click at ({u}, {v})'
                else:
                    calls.append((now, describe.call_async(Describe.Request(u=u, v=v))))
                    text = f'Describe ({u}, {v})'
                sent_commands.append({'t': now, 'kind': kind, 'text': text})
                next_command += command_period_s
            if now >= next_rss:
                rss.append((now, proc.memory_info().rss / 2**20))
                next_rss += 1.0
            for sent_at, future in list(calls):
                if future.done():
                    calls.remove((sent_at, future))
                    resp = future.result()
                    if not resp.success and resp.message not in NORMAL_REFUSALS:
                        errors.append(f'Describe failed: {resp.message}')
                elif now - sent_at > 10.0:
                    calls.remove((sent_at, future))
                    errors.append('Describe got no answer within 10 s')
            if progress and now - last_print >= 60.0:
                last_print = now
                print(f'soak: {(now - start) / 60:.0f}/{minutes:g} min, rss '
                      f'{rss[-1][1]:.0f} MB, {len(latencies)} results', file=sys.stderr)
            rclpy.spin_once(node, timeout_sec=max(0.0, min(next_frame, next_command)
                                                  - time.monotonic()))
        settle = time.monotonic() + 3.0
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
        rss_end = proc.memory_info().rss / 2**20
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        exit_status = stop_node(node_proc)
        log.close()
    node_log = Path(log.name).read_text()
    return summarise(
        minutes=minutes, engine=engine, rate_hz=rate_hz, command_period_s=command_period_s,
        warmup_s=warmup_s, start=start, sent=sent, statuses=statuses,
        status_times=status_times, latencies=latencies,
        replies=replies, commands=sent_commands, rss=rss, rss_start=rss_start, rss_end=rss_end,
        client_errors=errors, node_log=node_log, exit_status=exit_status,
        frames_source=data or 'analytic scene', log_path=log.name)


def summarise(*, minutes, engine, rate_hz, command_period_s, warmup_s, start, sent, statuses,
              status_times, latencies, replies, commands, rss, rss_start, rss_end, client_errors, node_log,
              exit_status, frames_source, log_path) -> dict:
    """The JSON of a soak from its raw records (times in monotonic seconds)."""
    warm = start + warmup_s
    n_minutes = int(np.ceil(minutes - 1e-9))
    per_minute = _minute_stats(latencies, start, n_minutes)
    after = [m for m in per_minute if m['latency_ms_median'] is not None
             and start + 60 * m['minute'] > warm + 30]      # minutes mostly after the warm-up
    # drift: the last minutes' median against the first minutes' after the warm-up (a sixth
    # of them each, at least one: one busy minute on a shared machine is not a trend)
    window = max(1, len(after) // 6)
    if after:
        first = float(np.median([m['latency_ms_median'] for m in after[:window]]))
        last = float(np.median([m['latency_ms_median'] for m in after[-window:]]))
        drift = round((last - first) / first, 4)
    else:
        drift = None
    rss_warm = next((mb for t, mb in rss if t >= warm), rss_start)
    rss_max = max([mb for _, mb in rss] + [rss_end])
    # replies: each counted against the last command sent before it
    for c in commands:
        c['replies'] = []
    for t, text in replies:
        owner = next((c for c in reversed(commands) if c['t'] <= t), None)
        if owner is not None:
            owner['replies'].append(text)
    checked = [c for c in commands if c['t'] >= warm and not c['text'].startswith('track')
               and c is not commands[-1]]          # the last one may not have answered yet
    wrong = [{'text': c['text'], 'replies': c['replies']} for c in checked
             if len(c['replies']) != 1]
    # the node's error counter is cumulative: count what it added after the warm-up
    at_warm = [s.errors for s, t in zip(statuses, status_times) if t <= warm]
    errors_node = int(statuses[-1].errors - (at_warm[-1] if at_warm else 0)) if statuses else 0
    tracebacks = node_log.count('Traceback')
    errors = errors_node + tracebacks + len(client_errors)
    last = statuses[-1] if statuses else None
    frames_in = int(last.frames_in) if last else 0
    result = {
        'minutes': minutes, 'engine': engine, 'rate_hz': rate_hz,
        'command_period_s': command_period_s, 'warmup_s': warmup_s,
        'frames_source': frames_source,
        'frames_sent': sent, 'frames_in': frames_in,
        'frames_processed': int(last.frames_processed) if last else 0,
        'frames_dropped': int(last.frames_dropped) if last else 0,
        'frames_lost_before_node': max(0, sent - frames_in),
        'results_received': len(latencies),
        'rss_mb_start': round(rss_start, 1), 'rss_mb_after_warmup': round(rss_warm, 1),
        'rss_mb_end': round(rss_end, 1), 'rss_mb_max': round(rss_max, 1),
        'rss_growth_after_warmup_mb': round(rss_end - rss_warm, 1),
        'latency_per_minute': per_minute,
        'latency_drift': drift,
        'latency_drift_window_minutes': window if after else None,
        'errors': errors, 'errors_node_counter': errors_node, 'node_tracebacks': tracebacks,
        'client_errors': client_errors[:20],
        'commands': len(commands),
        'replies_per_command': [{'t_s': round(c['t'] - start, 1), 'kind': c['kind'],
                                 'text': c['text'], 'replies': c['replies']} for c in commands],
        'non_tracking_commands_checked': len(checked),
        'commands_without_exactly_one_reply': wrong[:20],
        'rss_mb_series': [[round(t - start, 1), round(mb, 1)] for t, mb in rss],
        'node_exit_status': exit_status,
        'node_log': log_path,
    }
    result['checks'] = {
        'rss_growth_le_20mb': result['rss_growth_after_warmup_mb'] <= 20.0,
        # a slower node is the fault; latency that falls (a busy machine calming) is not
        'latency_drift_le_20pct': drift is not None and drift <= 0.20,
        'zero_errors': errors == 0,
        'one_reply_per_non_tracking_command': not wrong and bool(checked),
        'clean_exit': exit_status == 0,
    }
    result['passed'] = all(result['checks'].values())
    return result


def plot_soak(path: Path, result: dict) -> None:
    """RSS over time, latency median / p95 per minute and replies per command -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    series = np.asarray(result['rss_mb_series'] or [[0, 0]], float)
    ax = axes[0]
    ax.plot(series[:, 0] / 60, series[:, 1], color='tab:blue')
    ax.axvline(result['warmup_s'] / 60, color='grey', ls=':', label='end of warm-up')
    ax.set_xlabel('minutes')
    ax.set_ylabel('node RSS [MB]')
    ax.set_title(f"memory: +{result['rss_growth_after_warmup_mb']} MB after warm-up "
                 f"(max {result['rss_mb_max']} MB)")
    ax.legend(loc='lower right')
    ax = axes[1]
    rows = [m for m in result['latency_per_minute'] if m['latency_ms_median'] is not None]
    mins = [m['minute'] for m in rows]
    ax.plot(mins, [m['latency_ms_median'] for m in rows], 'o-', label='median')
    ax.plot(mins, [m['latency_ms_p95'] for m in rows], 's--', label='p95')
    ax.set_xlabel('minute')
    ax.set_ylabel('stamp -> result received [ms]')
    drift = result['latency_drift']
    ax.set_title('latency per minute' + (f' (drift {100 * drift:+.1f} %)' if drift is not None
                                         else ''))
    ax.set_ylim(bottom=0)
    ax.legend()
    ax = axes[2]
    cmds = result['replies_per_command']
    colors = ['tab:orange' if c['text'].startswith('track') else 'tab:green' for c in cmds]
    ax.scatter([c['t_s'] / 60 for c in cmds], [len(c['replies']) for c in cmds], c=colors, s=12)
    ax.set_xlabel('minutes')
    ax.set_ylabel('replies')
    ax.set_yticks(range(0, 1 + max([len(c['replies']) for c in cmds] + [2])))
    ax.set_title(f"replies per command (green: exactly one expected; orange: tracking); "
                 f"{result['errors']} errors", fontsize=9)
    failed = [k for k, ok in result['checks'].items() if not ok]
    fig.suptitle(f"unipixel_node soak: {result['minutes']:g} min at {result['rate_hz']:g} Hz, "
                 f"{result['commands']} commands, {result['frames_sent']} frames sent, "
                 f"{result['frames_dropped']} dropped by the latest-frame slot; "
                 + ('all checks pass' if not failed else 'failed: ' + ', '.join(failed)),
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
