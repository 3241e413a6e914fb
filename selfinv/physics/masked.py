r"""The diagonal 0/1 (or weighted) mask on measurements, the splitting operator S: :class:`MeasurementMask`.

``LinearOperator.subsample`` builds :math:`S A` and the composition reads its structure, so the class is
defined with the operator algebra in :mod:`selfinv.physics.base` (which keeps the import graph free of
cycles); this module keeps its import path.
"""

from selfinv.physics.base import MeasurementMask

__all__ = ["MeasurementMask"]
