"""Shared by the tests that run unipixel_node as a process on crafted 160x120 frames: the frame
geometry and a small randomly initialised checkpoint (these tests are about the node, not about
accuracy)."""
from __future__ import annotations

from pathlib import Path

from unipixel_ros.perception import CameraIntrinsics

W, H = 160, 120
INTR = CameraIntrinsics(fx=150.0, fy=150.0, cx=79.5, cy=59.5, width=W, height=H)


def save_tiny_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A seeded, untrained UniPixelNet small enough to run at frame rate on one thread."""
    import torch

    from unipixel_ros.model.checkpoint import save_checkpoint
    from unipixel_ros.model.network import ModelConfig, UniPixelNet

    torch.manual_seed(seed)
    tiny = ModelConfig(input_width=64, input_height=48, dim=32, widths=(8, 8, 16, 16, 32),
                       blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1)
    return save_checkpoint(UniPixelNet(tiny), Path(directory) / 'tiny.safetensors')
