"""Dense attribute supervision: label maps from instance ids, and the heads that learn them."""
import torch

from unipixel_ros.training.losses import referring_loss
from unipixel_ros.model.network import ModelConfig, UniPixelNet
from unipixel_ros.training.train import BatchSampler


def test_dense_labels_map_every_object_pixel_to_its_category_and_colour():
    inst = torch.zeros(1, 16, 16, dtype=torch.uint8)
    inst[0, :8, :8] = 1          # object 0
    inst[0, 8:, 8:] = 2          # object 1
    inst[0, :8, 8:] = 9          # beyond the K=2 object slots: unknown, ignored by the loss
    attrs = torch.tensor([[[3, 5, 0], [1, 2, 2]]])     # (B, K, 3) category, colour, size
    labels = BatchSampler._dense_labels(inst, attrs, 4, 4)
    assert labels.shape == (1, 3, 4, 4)
    assert labels[0, :, 0, 0].tolist() == [4, 6, 1]    # +1: 0 is background
    assert labels[0, :, 3, 3].tolist() == [2, 3, 3]
    assert labels[0, :, 3, 0].tolist() == [0, 0, 0]    # background
    assert labels[0, :, 0, 3].tolist() == [-100, -100, -100]


def test_network_returns_dense_maps_and_their_loss_trains():
    torch.manual_seed(0)
    cfg = ModelConfig(input_width=64, input_height=48, dim=32, widths=(8, 8, 16, 16, 32),
                      blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1)
    net = UniPixelNet(cfg)
    image = torch.randn(2, 3, 48, 64)
    prompt, pmask = torch.randn(2, 5, 32), torch.ones(2, 5)
    out = net(image, prompt, pmask)
    assert out.mask_logits.shape == (2, 1, 48, 64)
    assert out.dense_category.shape == (2, cfg.num_categories + 1, 12, 16)
    assert out.dense_color.shape == (2, cfg.num_colors + 1, 12, 16)
    dense = torch.zeros(2, 3, 12, 16, dtype=torch.long)
    dense[:, 0, 4:8, 4:8], dense[:, 1, 4:8, 4:8] = 3, 7
    mask = torch.zeros(2, 1, 48, 64)
    kw = dict(exists=torch.ones(2), category=torch.zeros(2, dtype=torch.long),
              color=torch.zeros(2, dtype=torch.long), size=torch.zeros(2, dtype=torch.long),
              dense_labels=dense)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    first = None
    for _ in range(15):
        loss, parts = referring_loss(net(image, prompt, pmask), mask, **kw)
        first = parts['dense_attributes'] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, parts = referring_loss(net(image, prompt, pmask), mask, **kw)
    assert parts['dense_attributes'] < 0.5 * first


def test_attribute_match_prefers_pixels_with_the_named_attributes():
    big = 8.0
    # 3 pixels: a red cup, a blue ball, background; categories (bg, cup, ball), colours (bg, red, blue)
    cat = torch.tensor([[0, big, 0], [0, 0, big], [big, 0, 0]]).T.reshape(1, 3, 1, 3)
    col = torch.tensor([[0, big, 0], [0, 0, big], [big, 0, 0]]).T.reshape(1, 3, 1, 3)
    size = torch.zeros(1, 2, 1, 3)
    says_red_cup = (torch.tensor([[0, big, 0.]]), torch.tensor([[0, big, 0.]]),
                    torch.tensor([[big, 0.]]))                 # size not mentioned
    m = UniPixelNet._attribute_match((cat, col, size), says_red_cup)[0, 0, 0]
    assert m[0] > m[1] + 5 and m[0] > m[2] + 5
    says_ball = (torch.tensor([[0, 0, big]]), torch.tensor([[big, 0., 0]]),
                 torch.tensor([[big, 0.]]))
    m = UniPixelNet._attribute_match((cat, col, size), says_ball)[0, 0, 0]
    assert m[1] > m[0] + 5 and m[1] > m[2] + 5


def test_attribute_matching_network_exposes_text_heads():
    cfg = ModelConfig(input_width=64, input_height=48, dim=32, widths=(8, 8, 16, 16, 32),
                      blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1, attribute_matching=True)
    out = UniPixelNet(cfg)(torch.randn(2, 3, 48, 64), torch.randn(2, 5, 32), torch.ones(2, 5))
    assert [t.shape[1] for t in out.text_attributes] == [cfg.num_categories + 1,
                                                         cfg.num_colors + 1, cfg.num_sizes + 1]
    assert out.dense_size.shape == (2, cfg.num_sizes + 1, 12, 16)

