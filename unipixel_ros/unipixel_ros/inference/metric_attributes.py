"""Category and size from the network's attribute heads *and* the object's measured 3D box.

Why: "small / medium / large" is a metric property. The camera's height (0.55-0.8 m) and pitch
(30-60 deg) vary from scene to scene, so an object's apparent size in the image does not fix its
real size; the size head, which sees only the image, is right for 77% of found test objects.
The geometry core already measures every found object (``estimate_object_geometry``: an oriented
box standing on the support plane, centre error ~5 mm in the closed loop). This small MLP reads
the box's footprint and height next to the network's category and size probabilities and
re-decides category and size. Colour stays the network's.

It is fitted (``unipixel-ros fit-attributes``, :mod:`unipixel_ros.training.attribute_fitting`) on the network's own answers on scenes the
network never trained on, so it learns how far to trust each head; the result is a separate
small file next to the checkpoint it was fitted for
(``<checkpoint stem>_metric_attributes.safetensors``).

Inputs per object (``feature_vector``): box long side, short side and height (m), 1 if the box
stands on a plane, the camera distance to the box centre (m), then the network's category and
size probabilities. Outputs: category and size logits over the checkpoint's vocabulary.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Geometric features, in order (see module docstring).
GEOMETRY_FEATURES = ('long_m', 'short_m', 'height_m', 'on_plane', 'distance_m')


def geometry_features(geometry) -> np.ndarray:
    """(5,) float32 measured features of an ``ObjectGeometry`` (see ``GEOMETRY_FEATURES``)."""
    box = geometry.box
    extent = np.asarray(box.extent, np.float64)
    if box.gravity_aligned:
        long_m, short_m = sorted(extent[:2], reverse=True)
        height_m = extent[2]
    else:       # no support plane: the largest side is the best guess of the height
        height_m, long_m, short_m = sorted(extent, reverse=True)
    return np.array([long_m, short_m, height_m, float(box.gravity_aligned),
                     float(np.linalg.norm(box.center))], np.float32)


def feature_vector(geometry, category_probs: np.ndarray, size_probs: np.ndarray) -> np.ndarray:
    """(5 + n_categories + n_sizes,) float32 input of :class:`MetricAttributeHead`."""
    return np.concatenate([geometry_features(geometry), np.asarray(category_probs, np.float32),
                           np.asarray(size_probs, np.float32)]).astype(np.float32)


@dataclass
class MetricAttributeModel:
    """The fitted head in numpy (inference needs no torch).

    Attributes:
        mean, std: (F,) input normalisation.
        layers: [(W (in, out), b (out,)), ...]; ReLU between layers.
        categories, sizes: vocabulary of the outputs (the checkpoint's).
        info: how it was fitted (data, samples, held-out accuracy).
    """

    mean: np.ndarray
    std: np.ndarray
    layers: list
    categories: list
    sizes: list
    info: dict

    def logits(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (N, F) or (F,) feature vectors -> (category logits (N, C), size logits (N, S))."""
        h = (np.atleast_2d(np.asarray(x, np.float32)) - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        n_cat = len(self.categories)
        return h[:, :n_cat], h[:, n_cat:]

    def predict(self, geometry, category_probs: np.ndarray, size_probs: np.ndarray):
        """-> ((category name, probability), (size name, probability)) for one object."""
        cat, size = self.logits(feature_vector(geometry, category_probs, size_probs))
        pc, ps = _softmax(cat[0]), _softmax(size[0])
        return ((self.categories[int(pc.argmax())], float(pc.max())),
                (self.sizes[int(ps.argmax())], float(ps.max())))

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file
        tensors = {'mean': self.mean, 'std': self.std}
        for i, (w, b) in enumerate(self.layers):
            tensors[f'layer{i}.weight'], tensors[f'layer{i}.bias'] = w, b
        meta = {'categories': json.dumps(self.categories), 'sizes': json.dumps(self.sizes),
                'info': json.dumps(self.info), 'format': 'unipixel_metric_attributes/1'}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
                  str(path), metadata=meta)
        return path


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def load_metric_attributes(path: str | Path) -> MetricAttributeModel:
    """Load a fitted head (safetensors: plain arrays, nothing unpickled).

    Raises:
        FileNotFoundError: no such file. ValueError: not a metric-attribute file or corrupt.
    """
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'metric attribute head {path} does not exist')
    try:
        with safe_open(str(path), 'numpy') as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get('format') != 'unipixel_metric_attributes/1':
            raise ValueError('missing format tag unipixel_metric_attributes/1')
        n_layers = sum(1 for k in arrays if k.endswith('.weight'))
        layers = [(arrays[f'layer{i}.weight'], arrays[f'layer{i}.bias']) for i in range(n_layers)]
        return MetricAttributeModel(arrays['mean'], arrays['std'], layers,
                                    json.loads(meta['categories']), json.loads(meta['sizes']),
                                    dict(json.loads(meta.get('info', '{}')), file=path.name))
    except Exception as exc:  # safetensors raises its own types for truncated/garbled files
        raise ValueError(f'{path} is not a valid metric attribute head: {exc}') from exc


def default_metric_attributes_path(checkpoint: str | Path) -> Path:
    """``weights/x.safetensors`` -> ``weights/x_metric_attributes.safetensors``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f'{checkpoint.stem}_metric_attributes.safetensors')


def resolve_metric_attributes(option: str, checkpoint: str | Path | None):
    """The ``--metric-attributes`` / ``metric_attributes`` setting -> a loaded head or None.

    ``'auto'`` (or ''): the head fitted for ``checkpoint``
    (:func:`default_metric_attributes_path`) when that file exists, else None; ``'none'``:
    None; anything else: a path that must load (FileNotFoundError / ValueError otherwise).
    """
    option = (option or 'auto').strip()
    if option.lower() == 'none':
        return None
    if option.lower() == 'auto':
        if checkpoint is None:
            return None
        path = default_metric_attributes_path(checkpoint)
        return load_metric_attributes(path) if path.is_file() else None
    return load_metric_attributes(option)
