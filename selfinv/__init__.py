"""selfinv: train image reconstruction networks from measurements alone."""

__version__ = "0.1.0"
