"""Data: read and write files, the embedded photographs, patches, and the training datasets.

* :mod:`~selfinv.data.readers`: :func:`read_image`, :func:`read_fastmri`, :func:`write_image`,
  :class:`ImageInfo` — one axis convention, (C, H, W) or (D, C, H, W), and one clear error per failure;
  one table from file extension to reader (the formats in :mod:`~selfinv.data.image_formats`,
  :mod:`~selfinv.data.array_formats`, :mod:`~selfinv.data.matlab`, :mod:`~selfinv.data.dicom_io`), and one
  to writer (:mod:`~selfinv.data.writers`).
* :mod:`~selfinv.data.htc2022`: :func:`read_htc2022`, the HTC2022 fan-beam CT sinograms and their geometry.
* :mod:`~selfinv.data.normalization`: :class:`Normalization`, explicit and recorded.
* :mod:`~selfinv.data.embedded`: :func:`embedded_images`, real photographs from the scikit-image
  wheel with a fixed train/test split.
* :mod:`~selfinv.data.patches`: random crops from a generator, :class:`RandomPatches`, tiles.
* :mod:`~selfinv.data.datasets`: :class:`SimulatedDataset` (measurements simulated once),
  :class:`MeasurementDataset` (real measurements, no ground truth), the on-disk format of measurement sets.
* :mod:`~selfinv.data.views`: :class:`Subset`, :func:`split` and the base of every dataset view.
* :mod:`~selfinv.data.samples`: :class:`Sample`, :class:`Batch`, :func:`collate`.
* :mod:`~selfinv.data.physics_params`: per-sample operator parameters ↔ batched physics, and the physics
  record a measurement set stores (the one place physics is serialised).
* :mod:`~selfinv.data.sources`: :func:`~selfinv.data.sources.load_measurements` from any files users have.

Nothing here needs data outside the package: the embedded photographs ship with scikit-image.
"""

from selfinv.data.datasets import MeasurementDataset, PhysicsDataset, SimulatedDataset
from selfinv.data.embedded import NAMES, TEST_NAMES, TRAIN_NAMES, embedded_images, embedded_names, phantom
from selfinv.data.htc2022 import read_htc2022
from selfinv.data.matlab import read_mat_struct
from selfinv.data.normalization import Normalization
from selfinv.data.patches import (
    RandomPatches,
    center_crop,
    crop,
    crop_alignment,
    extract_tiles,
    merge_tiles,
    random_positions,
    tile_positions,
)
from selfinv.data.physics_params import per_sample_buffers, per_sample_params, with_params
from selfinv.data.readers import IMAGE_EXTENSIONS, ImageInfo, list_images, read_fastmri, read_image, write_image
from selfinv.data.samples import Batch, Sample, collate
from selfinv.data.stats import domain_warning, input_statistics
from selfinv.data.views import Subset, split

__all__ = [
    "IMAGE_EXTENSIONS",
    "NAMES",
    "TEST_NAMES",
    "TRAIN_NAMES",
    "Batch",
    "ImageInfo",
    "MeasurementDataset",
    "Normalization",
    "PhysicsDataset",
    "RandomPatches",
    "Sample",
    "SimulatedDataset",
    "Subset",
    "center_crop",
    "collate",
    "crop",
    "crop_alignment",
    "domain_warning",
    "embedded_images",
    "embedded_names",
    "extract_tiles",
    "input_statistics",
    "list_images",
    "merge_tiles",
    "per_sample_buffers",
    "per_sample_params",
    "phantom",
    "random_positions",
    "read_fastmri",
    "read_htc2022",
    "read_image",
    "read_mat_struct",
    "split",
    "tile_positions",
    "with_params",
    "write_image",
]
