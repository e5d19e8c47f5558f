"""``unipixel_node`` parameters: declarations with descriptions, validation, and the core's
settings built from them (one place; the defaults match config/unipixel.yaml)."""
from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

from unipixel_ros.inference.loading import ENGINES
from unipixel_ros.inference.settings import (DEFAULT_SETTINGS, DESCRIBE_COLOR_SOURCES,
                                             VERIFIABLE_ATTRIBUTES, DecisionSettings,
                                             parse_attribute_list)
from unipixel_ros.perception import GeometryConfig, GripperConfig

from .camera_intake import CAMERA_EXECUTORS

D = DEFAULT_SETTINGS
#: (name, default, description, read_only, constraints)
PARAMETERS = (
    ('autostart', True, 'Configure and activate on start (no lifecycle manager needed).', True, ''),
    ('color_topic', 'camera/camera/color/image_raw', 'Color image (rgb8/bgr8).', True, ''),
    ('depth_topic', 'camera/camera/aligned_depth_to_color/image_raw',
     'Depth aligned to color: 16UC1 millimetres or 32FC1 metres.', True, ''),
    ('camera_info_topic', 'camera/camera/color/camera_info', 'CameraInfo of the color image.',
     True, ''),
    ('speech_topic', 'speech/text', 'std_msgs/String commands from speech-to-text.', True, ''),
    ('clicked_point_topic', 'clicked_point', 'RViz Publish Point -> describe.', True, ''),
    ('queue_size', 10, 'Per-input synchroniser queue length.', True, '>= 1'),
    ('slop', 0.05, 'Approximate-time tolerance between color, depth and info, s.', True, '> 0'),
    ('exact_sync', False, 'Require identical stamps instead of approximate sync.', True, ''),
    ('time_jump_threshold_s', 1.0,
     'Camera stamps that go back by more than this (s) for time_jump_messages messages in a '
     'row, or jump ahead of the receive clock by more than this, or a ROS clock (use_sim_time) '
     'that jumps by more than this, are a time jump: the synchroniser, the last stamps and the '
     'tracker are reset. Smaller steps back are late or repeated messages and are dropped.',
     True, '> 0'),
    ('time_jump_messages', 3,
     'Messages of one camera input in a row that must be more than time_jump_threshold_s '
     'behind its last synchronised stamp before the stream is read as restarted (a single late '
     'message is dropped).', True, '>= 1'),
    ('camera_info_timeout_s', 2.0, 'Report a missing input after this many seconds.', False,
     '> 0'),
    ('sensor_qos_reliable', False, 'Camera subscriptions reliable instead of best effort.', True,
     ''),
    ('camera_executor', 'events',
     'Executor of the camera subscriptions: events (rclpy C++ EventsExecutor on its own '
     'thread), single_threaded (rclpy Python executor on its own thread) or node (the '
     "node's own multi-threaded executor).", True, ''),
    ('backend', 'unipixel',
     'Model family: unipixel (the shipped referring model) | sam3 (SAM 3 open-vocabulary '
     'candidates + the referring resolver; needs model_path).', True, ''),
    ('engine', 'onnxruntime',
     'Inference back-end: torch | onnxruntime | tensorrt | triton (a Triton server at '
     'triton_url runs the model).', True, ''),
    ('model_path', '', 'Checkpoint (.safetensors) or ONNX export dir; empty = shipped model. '
     'backend sam3: a Hugging Face id (facebook/sam3) or a local Hugging Face directory. '
     'For engine triton: what the server hosts (only its manifest and tokenizer are read; '
     'backend sam3: a directory with its tokenizer.json and preprocessor_config.json).',
     True, ''),
    ('triton_url', '127.0.0.1:8001', 'gRPC host:port of the Triton server (engine triton).',
     True, ''),
    ('triton_timeout_s', 1.0, 'Deadline of one request to the Triton server, s (engine triton).',
     True, '> 0'),
    ('device', 'cpu', 'cpu | cuda (torch, onnxruntime).', True, ''),
    ('threads', 2, 'CPU threads of the engine (0 = library default).', True, '>= 0'),
    ('geometry_threads', 1, 'CPU threads of the cloud filters (open3d; 0 = its default).', True,
     '>= 0'),
    ('metric_attributes', 'auto',
     "Category and size of described objects re-decided with the measured 3D box: 'auto' "
     '(the head fitted for the model, <checkpoint>_metric_attributes.safetensors, if '
     "present), 'none', or a file from `unipixel-ros fit-attributes`.", True, ''),
    ('describe_color', D.describe_color,
     "Colour word of described objects: 'measured' (the mask's pixels named with the colour "
     "survey) or 'network' (the colour head).", False, ''),
    ('canonical_words', D.canonical_words,
     'The model reads a command in its own vocabulary ("the navy tin" -> "the blue can"); '
     'false: the words as said.', False, ''),
    ('exists_threshold', D.exists_threshold, 'Target-exists probability to report found.', False,
     '[0, 1]'),
    ('uncertain_threshold', D.uncertain_threshold,
     'Below exists_threshold but above this: ask which one.', False, '[0, 1]'),
    ('mask_threshold', D.mask_threshold, 'Mask probability threshold.', False, '[0, 1]'),
    ('verify_attributes', ','.join(D.verify_attributes) or 'none',
     'Attributes checked against the words (comma-separated from category,color,size, or '
     'none): a phrase naming one its selected object is unlikely to have is "not found".',
     False, ''),
    ('verify_min_prob', D.verify_min_prob,
     'verify_attributes rejects below this probability of the named attribute.', False,
     '[0, 1]'),
    ('min_depth_m', 0.1, 'Closest valid depth, m.', False, '> 0'),
    ('max_depth_m', 3.0, 'Farthest valid depth, m.', False, '> min_depth_m'),
    ('voxel_size_m', 0.0075, 'Voxel grid of the cloud filter, m.', False, '(0, 0.05]'),
    ('gripper_max_opening_m', 0.08, 'Parallel gripper maximum opening, m (Panda 0.08).', False,
     '(0, 0.5]'),
    ('gripper_finger_depth_m', 0.04, 'Finger length that can wrap the object, m.', False, '> 0'),
    ('publish_voxel_cloud', True, 'Publish the voxelised object cloud (lighter).', False, ''),
    ('mask_alpha', 0.6, 'EMA weight of the newest mask probability (1 = no smoothing).', False,
     '(0, 1]'),
    ('pose_alpha', 0.4, 'EMA weight of the newest grasp pose (1 = no smoothing).', False,
     '(0, 1]'),
    ('max_misses', 5, 'Frames without the target before it is reported lost.', False, '>= 1'),
    ('pick_stable_frames', 3, 'Consecutive found frames before unipixel/pick is sent.', False,
     '>= 1'),
    ('status_rate_hz', 1.0, 'Rate of unipixel/status and /diagnostics.', True, '> 0'),
    ('carry_forward_period_s', 0.5,
     'While the model works on a newer frame for longer than this, republish the last result '
     '(carried_forward, age_s) at this period; 0 = never.', True, '>= 0'),
    ('stale_after_s', 2.0, 'A result whose image is older than this (s) is marked stale on '
     'unipixel/result and unipixel/status.', True, '> 0'),
    ('depth_scale', 0.001, 'Metres per unit of 16UC1 depth (0.001 = millimetres; e.g. 0.0001 '
     'for cameras in 0.1 mm).', False, '> 0'),
    ('image_transport', 'raw', "Camera input: raw, or compressed (<color>/compressed JPEG/PNG "
     'and <depth>/compressedDepth as compressed_depth_image_transport writes them).', True, ''),
    ('target_frame', '', "Frame of the 3D outputs (e.g. base_link); '' = the camera's color "
     'optical frame.', True, ''),
    ('camera_to_target', [0.0] * 7, 'Pose of the camera optical frame in target_frame, [x, y, z, '
     'qx, qy, qz, qw] (m); all zeros = look it up with tf2 at each image stamp.', True, ''),
    ('tf_timeout_s', 0.1, 'tf2 lookup timeout, s.', True, '> 0'),
    ('expected_rate_hz', 15.0, 'Camera rate /diagnostics checks the input against, Hz.', False,
     '> 0'),
    ('diagnostics_latency_warn_ms', 250.0, '/diagnostics WARN above this latency, ms.', False,
     '> 0'),
    ('diagnostics_latency_error_ms', 1000.0, '/diagnostics ERROR above this latency, ms.', False,
     '> 0'),
)

_UNIT = ('exists_threshold', 'uncertain_threshold', 'mask_threshold', 'verify_min_prob')
_POSITIVE = ('slop', 'camera_info_timeout_s', 'time_jump_threshold_s', 'min_depth_m',
             'status_rate_hz', 'gripper_finger_depth_m', 'depth_scale', 'tf_timeout_s',
             'expected_rate_hz', 'diagnostics_latency_warn_ms', 'diagnostics_latency_error_ms',
             'triton_timeout_s', 'stale_after_s')
_AT_LEAST_ONE = ('queue_size', 'max_misses', 'pick_stable_frames', 'time_jump_messages')


def declare_parameters(node) -> None:
    """Declare every parameter of :data:`PARAMETERS` on ``node`` with its descriptor."""
    for name, default, description, read_only, constraints in PARAMETERS:
        node.declare_parameter(name, default, ParameterDescriptor(
            description=description, read_only=read_only, additional_constraints=constraints))


def check_parameter(name: str, value, get) -> str | None:
    """Why ``value`` is not acceptable for ``name`` (None when it is). ``get(name)`` reads the
    current value of another parameter."""
    if name in _UNIT and not 0 <= value <= 1:
        return 'must be in [0, 1]'
    if name == 'verify_attributes' and not set(parse_attribute_list(value)) <= set(
            VERIFIABLE_ATTRIBUTES):
        return "must be 'none' or a comma-separated subset of category,color,size"
    if name in ('mask_alpha', 'pose_alpha') and not 0 < value <= 1:
        return 'must be in (0, 1]'
    if name in _POSITIVE and not value > 0:
        return 'must be > 0'
    if name == 'voxel_size_m' and not 0 < value <= 0.05:
        return 'must be in (0, 0.05]'
    if name == 'gripper_max_opening_m' and not 0 < value <= 0.5:
        return 'must be in (0, 0.5]'
    if name in _AT_LEAST_ONE and value < 1:
        return 'must be >= 1'
    if name in ('threads', 'geometry_threads', 'carry_forward_period_s') and value < 0:
        return 'must be >= 0'
    if name == 'camera_executor' and value not in CAMERA_EXECUTORS:
        return f'must be one of {", ".join(CAMERA_EXECUTORS)}'
    if name == 'backend' and value not in ('unipixel', 'sam3'):
        return 'must be one of unipixel, sam3'
    if name == 'engine' and value not in ENGINES:
        return f'must be one of {", ".join(ENGINES)}'
    if name == 'max_depth_m' and value <= get('min_depth_m'):
        return 'must be > min_depth_m'
    if name == 'describe_color' and value not in DESCRIBE_COLOR_SOURCES:
        return f'must be one of {", ".join(DESCRIBE_COLOR_SOURCES)}'
    if name == 'image_transport' and value not in ('raw', 'compressed'):
        return 'must be raw or compressed'
    if name == 'camera_to_target' and len(value) != 7:
        return 'must be 7 numbers [x, y, z, qx, qy, qz, qw]'
    return None


def validate(params, get) -> SetParametersResult:
    """The node's set-parameters callback: refuse the whole change at the first bad value."""
    for prm in params:
        bad = check_parameter(prm.name, prm.value, get)
        if bad:
            return SetParametersResult(successful=False, reason=f'{prm.name}={prm.value!r}: {bad}')
    return SetParametersResult(successful=True)


def decision_settings(get) -> DecisionSettings:
    """The predictor's :class:`DecisionSettings` from the current parameters."""
    return DecisionSettings(
        exists_threshold=get('exists_threshold'), mask_threshold=get('mask_threshold'),
        uncertain_threshold=get('uncertain_threshold'),
        verify_attributes=parse_attribute_list(get('verify_attributes')),
        verify_min_prob=get('verify_min_prob'), metric_attributes=get('metric_attributes'),
        describe_color=get('describe_color'), canonical_words=get('canonical_words'))


def geometry_config(get) -> GeometryConfig:
    """The geometry tunables from the current parameters."""
    return GeometryConfig(min_depth=get('min_depth_m'), max_depth=get('max_depth_m'),
                          voxel_size=get('voxel_size_m'),
                          gripper=GripperConfig(max_opening=get('gripper_max_opening_m'),
                                                finger_depth=get('gripper_finger_depth_m')))


def diagnostic_thresholds(get):
    """The /diagnostics thresholds from the current parameters."""
    from .diagnostics import DiagnosticThresholds
    return DiagnosticThresholds(expected_rate_hz=get('expected_rate_hz'),
                                latency_warn_ms=get('diagnostics_latency_warn_ms'),
                                latency_error_ms=get('diagnostics_latency_error_ms'))
