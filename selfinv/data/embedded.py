"""The embedded default dataset: real photographs shipped inside the scikit-image wheel.

Every image here loads offline from the installed ``skimage/data`` folder (checked with
scikit-image 0.26; images that scikit-image downloads on demand are not used). They are real
photographs and micrographs, not synthetic patterns; the binary ``horse`` silhouette, ``logo``,
``checkerboard``, ``colorwheel``, the motion-blurred ``clock`` and the Shepp-Logan phantom are left
out on purpose (the phantom is :func:`phantom`, for CT tests).

Fixed split (reference/anchors.md §7): :data:`TEST_NAMES` = camera, coins, moon, astronaut are held
out for testing; the 14 others (:data:`TRAIN_NAMES`) are for training. Draw training patches from
the training images only and report results on the held-out ones.

Images are returned as float32 arrays of shape (C, H, W) with values in [0, 1] (8-bit values
divided by 255). ``gray=True`` converts colour with ``skimage.color.rgb2gray``
(0.2125 R + 0.7154 G + 0.0721 B) and gives C = 1; ``gray=False`` gives C = 3, grayscale images
repeated in the three channels. Sizes differ between images (102 × 102 to 1411 × 1411), so use
patches or crops to batch them.

Example:
    >>> imgs = embedded_images(names=["camera", "coins"])
    >>> [img.shape for img in imgs], float(imgs[0].min()) >= 0.0, float(imgs[0].max()) <= 1.0
    ([(1, 512, 512), (1, 303, 384)], True, True)
    >>> len(embedded_images(split="train")), sorted(TEST_NAMES)
    (14, ['astronaut', 'camera', 'coins', 'moon'])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

__all__ = ["NAMES", "TEST_NAMES", "TRAIN_NAMES", "embedded_images", "embedded_names", "phantom"]

#: held out for testing
TEST_NAMES: tuple[str, ...] = ("camera", "coins", "moon", "astronaut")
#: for training
TRAIN_NAMES: tuple[str, ...] = (
    "brick",
    "cell",
    "chelsea",
    "coffee",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "motorcycle",
    "page",
    "retina",
    "rocket",
    "text",
)
#: every embedded image, training images first
NAMES: tuple[str, ...] = TRAIN_NAMES + TEST_NAMES

# skimage.data function for each name (motorcycle: the left view of stereo_motorcycle)
_LOADERS = {name: name for name in NAMES} | {"motorcycle": "stereo_motorcycle"}


@functools.cache
def _load_uint8(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, _LOADERS[name])()
    if isinstance(img, tuple):  # stereo_motorcycle -> (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise RuntimeError(f"embedded image {name!r}: expected uint8 from scikit-image, got {img.dtype}")
    img.setflags(write=False)
    return img


def embedded_names(split: str | None = None) -> tuple[str, ...]:
    """The names of the ``"train"`` or ``"test"`` split, or all of them (``None``)."""
    if split is None:
        return NAMES
    if split == "train":
        return TRAIN_NAMES
    if split == "test":
        return TEST_NAMES
    raise ValueError(f"embedded_names: split must be 'train', 'test' or None, got {split!r}")


def embedded_images(gray: bool = True, names: Sequence[str] | None = None, split: str | None = None) -> list[np.ndarray]:
    """The embedded photographs as float32 (C, H, W) arrays in [0, 1] (module docstring).

    Args:
        gray: one channel (luminance) if True, three (RGB) if False.
        names: which images, in this order (default: all of ``split``).
        split: ``"train"``, ``"test"`` or ``None`` (all); only used when ``names`` is None.
    """
    if names is None:
        names = embedded_names(split)
    elif split is not None:
        raise ValueError("embedded_images: pass names= or split=, not both")
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in _LOADERS]
    if unknown:
        raise ValueError(f"embedded_images: unknown image(s) {unknown}; available: {', '.join(NAMES)}")
    out = []
    for name in names:
        img = _load_uint8(name).astype(np.float32) / 255.0
        if img.ndim == 3:
            img = img[..., :3]
            if gray:
                from skimage.color import rgb2gray

                img = rgb2gray(img).astype(np.float32)[None]
            else:
                img = np.moveaxis(img, -1, 0)
        elif gray:
            img = img[None]
        else:
            img = np.repeat(img[None], 3, axis=0)
        out.append(np.ascontiguousarray(np.clip(img, 0.0, 1.0)))
    return out


def phantom(size: int | None = None) -> np.ndarray:
    """The Shepp-Logan phantom (scikit-image, 400 × 400) as a float32 (1, H, W) array in [0, 1].

    ``size`` resizes it (anti-aliased) to size × size. Synthetic, so not part of :data:`NAMES`.

    Example:
        >>> phantom(64).shape
        (1, 64, 64)
    """
    import skimage.data

    img = np.asarray(skimage.data.shepp_logan_phantom(), dtype=np.float64)
    if size is not None:
        from skimage.transform import resize

        img = resize(img, (int(size), int(size)), anti_aliasing=True)
    return np.clip(img, 0.0, 1.0).astype(np.float32)[None]
