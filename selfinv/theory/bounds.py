r"""The counting conditions: the necessary :math:`m \ge n/G` and the sufficient :math:`m > k + n/G`."""

from __future__ import annotations


def counting_bound(n: int, G: int) -> int:
    r"""The necessary count :math:`m \ge n / G`, as the smallest integer :math:`\lceil n / G \rceil`.

    ``G`` is the number of operators (multi-operator imaging) or the group size :math:`|G|` (EI, where
    the exact necessary bound :math:`\max_j c_j/s_j` of Tachella et al. 2023 is at least this).

    Example:
        >>> from selfinv.theory import counting_bound
        >>> counting_bound(256, 16), counting_bound(10, 3)
        (16, 4)
    """
    n, G = _positive_int(n, "n"), _positive_int(G, "G")
    return -(-n // G)


def multi_operator_bound(n: int, G: int, k: int) -> int:
    r"""The sufficient count of multi-operator imaging: the smallest integer :math:`m > k + n/G`.

    For almost every family of G operators with m measurements each, a signal set of (box-counting)
    dimension k is identifiable from the measurements alone when :math:`m > k + n/G` (Tachella, Chen &
    Davies, NeurIPS 2022 and JMLR 2023). Compare :func:`counting_bound`, the necessary :math:`m \ge n/G`.

    Example:
        >>> from selfinv.theory import multi_operator_bound
        >>> multi_operator_bound(784, 40, 12)       # MNIST-like: n = 784, G = 40, k = 12
        32
    """
    n, G = _positive_int(n, "n"), _positive_int(G, "G")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"multi_operator_bound: k must be an int >= 0, got {k!r}")
    return (k * G + n) // G + 1


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v
