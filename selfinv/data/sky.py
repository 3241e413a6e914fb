r"""Sky images for radio interferometry: parametric black-hole crescents and the Hubble Deep Field.

:func:`black_hole_images` draws images of the kind the EHT fits to M87* and Sgr A* (EHT Collaboration 2019,
Paper VI: the "m-ring" and crescent families): a thin ring of radius :math:`R` and Gaussian radial profile of width
:math:`s` whose brightness varies once around it (an m = 1 mode of amplitude :math:`a` towards position angle
:math:`\varphi`, the Doppler-boosted side), plus a diffuse central floor of relative flux :math:`f`:

.. math::
    I(\rho, \theta) = e^{-(\rho - R)^2 / 2 s^2} \bigl(1 + a \cos(\theta - \varphi)\bigr)
                      + f\, e^{-\rho^2 / 2 (R/2)^2},

with :math:`\rho, \theta` polar coordinates about a centre offset by up to 5 % of the field, every parameter
uniform per image (:data:`CRESCENT_RANGES`, as fractions of the image width), scaled to a peak of 1.

:func:`hubble_images`: the Hubble Deep Field that ships inside scikit-image (``skimage.data.hubble_deep_field``,
Williams et al. 1996; public domain, NASA/STScI), as luminance in [0, 1]: its western 700 columns for training,
96 × 96 tiles of the eastern 300 columns for testing, so that no test galaxy is seen in training.

:data:`SKY_SETS` names these for configs (``data.images: [black_holes]``, ``data.test_images: [black_holes_test]``,
``hubble_train``, ``hubble_test``): the embedded source reads them like its photographs.

Example:
    >>> imgs = black_hole_images(3, 32, seed=0)
    >>> imgs.shape, float(imgs.max(axis=(1, 2, 3)).min())
    ((3, 1, 32, 32), 1.0)
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["CRESCENT_RANGES", "SKY_SETS", "black_hole_images", "hubble_images", "sky_set"]

#: uniform ranges of the crescent parameters (lengths as fractions of the image width, angles in radians)
CRESCENT_RANGES: dict[str, tuple[float, float]] = {
    "radius": (0.12, 0.25),
    "width": (0.02, 0.05),
    "asymmetry": (0.0, 0.9),
    "angle": (0.0, 2 * math.pi),
    "floor": (0.0, 0.3),
    "offset": (-0.05, 0.05),
}


def black_hole_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` crescent images (n, 1, size, size) float32 in [0, 1] with parameters drawn from ``seed``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"black_hole_images: n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"black_hole_images: size must be an int of at least 8 pixels, got {size!r}")
    g = torch.Generator().manual_seed(seed)
    p = {k: lo + (hi - lo) * torch.rand(n, 1, 1, generator=g, dtype=torch.float64) for k, (lo, hi) in CRESCENT_RANGES.items()}
    dy = CRESCENT_RANGES["offset"][0] + torch.rand(n, 1, 1, generator=g, dtype=torch.float64) * 0.1
    coords = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / size  # fractions of the width
    y, x = coords[None, :, None] - dy, coords[None, None, :] - p["offset"]
    rho, theta = torch.sqrt(x**2 + y**2), torch.atan2(-y, x)  # rows grow downwards: north is up
    ring = torch.exp(-((rho - p["radius"]) ** 2) / (2 * p["width"] ** 2)) * (1 + p["asymmetry"] * torch.cos(theta - p["angle"]))
    img = ring + p["floor"] * torch.exp(-(rho**2) / (2 * (p["radius"] / 2) ** 2))
    img = img / img.amax((1, 2), keepdim=True)
    return img[:, None].to(torch.float32).numpy()


def hubble_images(split: str, tile: int = 96) -> list[np.ndarray]:
    """The Hubble Deep Field as (1, H, W) float32 luminance in [0, 1]: ``"train"`` the western 700 columns (one image),
    ``"test"`` the eastern 300 columns cut into ``tile`` × ``tile`` tiles."""
    from selfinv.data.embedded import embedded_images

    if split not in ("train", "test"):
        raise ValueError(f"hubble_images: split must be 'train' or 'test', got {split!r}")
    hdf = embedded_images(gray=True, names=["hubble_deep_field"])[0]  # (1, 872, 1000)
    if split == "train":
        return [np.ascontiguousarray(hdf[:, :, :700])]
    east = hdf[:, :, 700:]
    return [np.ascontiguousarray(east[:, i : i + tile, j : j + tile])
            for i in range(0, east.shape[1] - tile + 1, tile) for j in range(0, east.shape[2] - tile + 1, tile)]


#: named sets of sky images for the embedded data source: name -> (description, loader of float32 (1, H, W) arrays)
SKY_SETS: dict[str, tuple[str, object]] = {
    "black_holes": ("96 crescents of 64 × 64 (seed 0)", lambda: list(black_hole_images(96, 64, seed=0))),
    "black_holes_test": ("16 crescents of 64 × 64 (seed 1000)", lambda: list(black_hole_images(16, 64, seed=1000))),
    "hubble_train": ("the Hubble Deep Field's western 700 columns", lambda: hubble_images("train")),
    "hubble_test": ("27 tiles of 96 × 96 of its eastern 300 columns", lambda: hubble_images("test")),
}


def sky_set(name: str) -> list[np.ndarray]:
    """The images of a :data:`SKY_SETS` name."""
    if name not in SKY_SETS:
        raise ValueError(f"sky_set: unknown set {name!r}; available: {', '.join(SKY_SETS)}")
    return SKY_SETS[name][1]()
