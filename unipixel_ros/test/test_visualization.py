"""The RViz/report overlay."""


def test_overlay_tints_the_mask_draws_the_box_and_keeps_the_label_inside():
    import numpy as np

    from unipixel_ros.perception.overlay import draw_overlay
    rgb = np.full((48, 64, 3), 100, np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[20:30, 20:30] = True
    out = draw_overlay(rgb, mask, (20, 20, 29, 29), 'a label far too long for this image')
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out[25, 25] != rgb[25, 25]).any()                 # tinted inside
    assert (out[40, 5] == rgb[40, 5]).all()                    # untouched outside
    assert (out[29, 25] == [255, 230, 0]).all()                # box edge
    assert (draw_overlay(rgb, None) == rgb).all()
