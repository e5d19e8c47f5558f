"""Message <-> numpy conversion: round trips and the errors a node turns into a status."""
import numpy as np
import pytest

pytest.importorskip('sensor_msgs')
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from unipixel_ros.perception import CameraIntrinsics  # noqa: E402
from unipixel_ros.ros.conversions import (MessageConversionError, camera_info_to_intrinsics,  # noqa: E402
                                          cloud_to_msg, color_to_rgb, image_to_numpy,
                                          intrinsics_to_camera_info, mask_bbox, mask_to_image,
                                          msg_to_cloud, numpy_to_image, pose_stamped)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize('encoding,arr', [
    ('rgb8', RNG.integers(0, 255, (4, 5, 3), dtype=np.uint8)),
    ('mono8', RNG.integers(0, 255, (4, 5), dtype=np.uint8)),
    ('16UC1', RNG.integers(0, 65535, (4, 5), dtype=np.uint16)),
    ('32FC1', RNG.random((4, 5), dtype=np.float32)),
])
def test_image_round_trip(encoding, arr):
    header = Header(frame_id='cam')
    msg = numpy_to_image(arr, encoding, header)
    assert msg.header.frame_id == 'cam' and msg.step == arr.shape[1] * arr[0, 0].nbytes
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_padded_step_and_big_endian_depth():
    depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    rows = np.zeros((3, 12), np.uint8)  # 8 bytes of pixels + 4 bytes of padding per row
    rows[:, :8] = depth.astype('>u2').view(np.uint8).reshape(3, 8)
    msg = Image(height=3, width=4, encoding='16UC1', is_bigendian=1, step=12, data=rows.tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), depth)


def test_bgr_is_converted_to_rgb():
    rgb = RNG.integers(0, 255, (2, 3, 3), dtype=np.uint8)
    msg = numpy_to_image(rgb[..., ::-1], 'bgr8')
    np.testing.assert_array_equal(color_to_rgb(msg), rgb)


@pytest.mark.parametrize('kwargs,match', [
    (dict(height=2, width=2, encoding='yuv422', step=4, data=bytes(8)), 'unsupported image encoding'),
    (dict(height=0, width=2, encoding='rgb8', step=6, data=b''), 'zero-size'),
    (dict(height=2, width=2, encoding='rgb8', step=5, data=bytes(10)), 'smaller than one row'),
    (dict(height=2, width=2, encoding='rgb8', step=6, data=bytes(11)), 'expected height\\*step'),
])
def test_bad_images_raise_clear_errors(kwargs, match):
    with pytest.raises(MessageConversionError, match=match):
        image_to_numpy(Image(**kwargs))


def test_color_decoder_rejects_depth_encoding():
    with pytest.raises(MessageConversionError, match='color image encoding'):
        color_to_rgb(numpy_to_image(np.zeros((2, 2), np.uint16), '16UC1'))


def test_camera_info_round_trip_and_zero_focal_length():
    intr = CameraIntrinsics(fx=600.0, fy=601.0, cx=319.5, cy=239.5, width=640, height=480)
    assert camera_info_to_intrinsics(intrinsics_to_camera_info(intr)) == intr
    with pytest.raises(MessageConversionError, match='invalid camera_info'):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))  # K all zeros


def test_cloud_and_mask_messages():
    pts = RNG.normal(size=(50, 3)).astype(np.float32)
    cols = RNG.integers(0, 255, (50, 3), dtype=np.uint8)
    msg = cloud_to_msg(pts, cols, Header(frame_id='cam'))
    assert msg.width == 50 and msg.row_step == 800 and [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb']
    p2, c2 = msg_to_cloud(msg)
    np.testing.assert_array_equal(p2, pts)
    np.testing.assert_array_equal(c2, cols)
    mask = np.zeros((6, 8), bool)
    mask[2:4, 3:7] = True
    img = mask_to_image(mask)
    assert img.encoding == 'mono8' and set(np.unique(image_to_numpy(img))) == {0, 255}
    roi = mask_bbox(mask)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (3, 2, 4, 2)


def test_pose_from_rotation_matrix():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    pose = pose_stamped([0.1, 0.2, 0.3], rot).pose
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    np.testing.assert_allclose(np.abs(q), [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-9)
    assert pose.position.z == pytest.approx(0.3)
