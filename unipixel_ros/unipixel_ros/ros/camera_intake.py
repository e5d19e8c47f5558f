"""The camera subscriptions of unipixel_node on their own executor thread.

Why: unipixel_node needs a multi-threaded executor, because its services and its track action
block until the worker has answered them. rclpy's Python ``MultiThreadedExecutor`` rebuilds a
wait set and hands every message to a thread pool, which on a 2-core machine added ~2 ms to
every camera frame (``unipixel-ros bench node``: overhead 11.5 ms with the camera on the node's
own executor, 8.8 ms with rclpy's C++ ``EventsExecutor``). Three messages per frame arrive at
15-30 Hz; the blocking callbacks arrive a few times a minute. So the camera topics get their own
small node, spun by its own executor in its own thread, and nothing that blocks ever runs there.

The intake node is hidden (its name starts with ``_``). It is created without the process's
command-line arguments, so that a launch file's ``__node`` remap does not rename it to the main
node's name; it subscribes to the topic names the main node has already resolved (namespace
and remaps applied), so remapping the camera topics works as before.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile

#: ``camera_executor`` values: rclpy's C++ events executor, rclpy's Python single-threaded
#: executor, or ``node`` (no intake node: the subscriptions stay on unipixel_node's executor).
CAMERA_EXECUTORS = ('events', 'single_threaded', 'node')


def events_executor_available() -> bool:
    """True when this rclpy has ``rclpy.experimental.EventsExecutor`` (Jazzy 7.1 and newer)."""
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


class CameraIntake:
    """A hidden node that subscribes to camera topics and calls ``on_message`` for each message.

    Args:
        context: the rclpy context of the main node.
        name: the intake node's name (prefix it with ``_`` to hide it from ``ros2 node list``).
        subscriptions: ``(msg_type, fully qualified topic, callback(msg))`` per topic; the
            callbacks run in the intake thread, one at a time.
        qos: QoS of every subscription.
        executor: ``'events'`` or ``'single_threaded'`` (see ``CAMERA_EXECUTORS``); ``'events'``
            falls back to ``'single_threaded'`` where this rclpy has no events executor.
    """

    def __init__(self, context, name: str, subscriptions: Sequence[tuple[type, str, Callable]],
                 qos: QoSProfile, executor: str = 'events') -> None:
        if executor not in ('events', 'single_threaded'):
            raise ValueError(f"camera executor {executor!r} is not 'events' or 'single_threaded'")
        self.executor_kind = executor if executor != 'events' or events_executor_available() \
            else 'single_threaded'
        self.node = rclpy.create_node(name, context=context, use_global_arguments=False,
                                      start_parameter_services=False, enable_rosout=False)
        for msg_type, topic, callback in subscriptions:
            if not topic.startswith('/'):
                raise ValueError(f'intake topic {topic!r} is not fully qualified')
            self.node.create_subscription(msg_type, topic, callback, qos)
        if self.executor_kind == 'events':
            from rclpy.experimental import EventsExecutor
            self._executor = EventsExecutor(context=context)
        else:
            self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, name='unipixel_camera_intake',
                                        daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        # spin_once in a loop rather than spin(): close() only has to clear the flag
        try:
            while self._running and self.node.context.ok():
                self._executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            return      # the process is shutting down (SIGINT): nothing left to receive

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread, then destroy the executor and the node (idempotent)."""
        if not self._running:
            return
        self._running = False
        self._thread.join(timeout=timeout_s)
        self._executor.shutdown(timeout_sec=timeout_s)
        self.node.destroy_node()


def subscribe_camera(node, subscriptions: Sequence[tuple[type, str, Callable]],
                     qos: QoSProfile, executor: str, callback_group=None):
    """The camera subscriptions of ``node`` on the chosen ``executor``.

    Args:
        subscriptions: (message type, topic as the node names it, callback) per input.
        executor: one of :data:`CAMERA_EXECUTORS`.
    Returns:
        (subscriptions created on ``node``, :class:`CameraIntake` or None): for 'node' the
        subscriptions live on ``node`` itself; otherwise on a hidden intake node.
    """
    if executor == 'node':
        return [node.create_subscription(t, topic, cb, qos, callback_group=callback_group)
                for t, topic, cb in subscriptions], None
    intake = CameraIntake(node.context, f'_{node.get_name()}_camera',
                          [(t, node.resolve_topic_name(topic), cb)
                           for t, topic, cb in subscriptions], qos, executor)
    if intake.executor_kind != executor:
        node.get_logger().warning(f'camera_executor {executor!r} is not available in this '
                                  f'rclpy; using {intake.executor_kind!r}')
    return [], intake


def camera_topics(color_topic: str, depth_topic: str, info_topic: str, transport: str,
                  on_input: Callable) -> list:
    """(message type, topic, callback) for the three camera inputs.

    ``transport`` 'raw' subscribes to the Image topics; 'compressed' to
    ``<color>/compressed`` and ``<depth>/compressedDepth`` (image_transport's topic names),
    decoded to Image on arrival (``compressed.compressed_to_image``), so synchronisation and
    decoding are the same for both. ``on_input(name, index, msg)`` receives every message; a
    message that cannot be decoded is passed on as the exception, for the node to report.
    """
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    def decoded(name: str, index: int):
        from .compressed import compressed_to_image

        def callback(msg) -> None:
            try:
                image = compressed_to_image(msg)
            except Exception as exc:   # a malformed frame: reported, never raised here
                on_input(name, index, exc)
                return
            on_input(name, index, image)
        return callback

    if transport == 'compressed':
        return [(CompressedImage, f'{color_topic}/compressed', decoded('color', 0)),
                (CompressedImage, f'{depth_topic}/compressedDepth', decoded('depth', 1)),
                (CameraInfo, info_topic, lambda m: on_input('info', 2, m))]
    return [(Image, color_topic, lambda m: on_input('color', 0, m)),
            (Image, depth_topic, lambda m: on_input('depth', 1, m)),
            (CameraInfo, info_topic, lambda m: on_input('info', 2, m))]
