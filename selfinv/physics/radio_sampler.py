r"""Random radio observations: per-sample (u, v) coverages of a real array, for multi-operator learning.

An interferometer's operator depends on when and with which stations it observed: the hour angles sweep each
baseline along its ellipse (:func:`~selfinv.physics.uv_coverage`) and a station that does not take part removes
its baselines; another source (declination) or another frequency (the coverage scales with 1/λ) changes the
tracks themselves. :class:`RadioObservationSampler` draws, per sample, a track of ``duration`` hours starting at a
uniform hour angle within ``hour_angle``, keeps each station with probability ``1 − station_dropout`` (at
least two always observe) and, where ``declination`` or ``wavelength`` is a (lo, hi) range, a uniform value of it; the operator is a :class:`~selfinv.physics.RadioInterferometry` whose visibilities are
every (time, baseline) pair, weighted 1 where both stations observe and see the source above ``min_elevation``
and 0 (at u = v = 0) elsewhere, so that the samples of a batch share one tensor shape. With ``duration=None`` (the whole
hour-angle range), ``station_dropout=0`` and single values every draw is the same observation: a fixed operator
(``is_fixed``; configs build it once). Tracks alone only select parts of the same ellipses, so MOI over random
tracks of one source sees no more than the full track; ranges of declination and wavelength give it new ones.

Arrays (:data:`~selfinv.physics.uv_coverage.ARRAYS`) come with an observing set-up (:data:`SETUPS`): the EHT 2017
array at 1.3 mm on M87* (declination 12.39°) with a 160 µas field of view, the VLA in D configuration at 6 cm
(C band) on Cygnus A (declination 40.73°) with a 160″ field. The field of view over the image width gives the
pixel size; the sampler refuses a field whose pixels are too large for the array's longest baseline.

Example:
    >>> import torch
    >>> from selfinv.physics.radio_sampler import RadioObservationSampler
    >>> sampler = RadioObservationSampler(64, "eht2017", duration=3.0, station_dropout=0.25)
    >>> physics = sampler(4, generator=torch.Generator().manual_seed(0))
    >>> physics.uv.shape, physics.n_visibilities.tolist() != [physics.n_visibilities[0].item()] * 4
    (torch.Size([4, 1344, 2]), True)
"""

from __future__ import annotations

import math
import numbers

import torch

from selfinv import _random
from selfinv.noise import NoiseModel
from selfinv.physics.radio import RadioInterferometry, uv_radians
from selfinv.physics.samplers import _check_batch, _size
from selfinv.physics.uv_coverage import ARRAYS, baselines, uv_coverage

__all__ = ["SETUPS", "RadioObservationSampler"]

#: the default observing set-up of each shipped array: wavelength (m), declination (degrees), field of view (arcsec)
#: and the Greenwich hour angles (hours) of the tracks: M87* is up at the EHT's American, European and Hawaiian
#: sites between 0 h and 12 h; at the VLA (longitude −107.6°) ±6 h around transit is 1.2 h to 13.2 h
SETUPS: dict[str, dict] = {
    "eht2017": {"wavelength": 1.3e-3, "declination": 12.39, "fov": 160e-6, "hour_angle": (0.0, 12.0)},
    "vla_d": {"wavelength": 0.06, "declination": 40.73, "fov": 160.0, "hour_angle": (1.2, 13.2)},
}


def _angle(arcsec: float) -> str:
    return f"{arcsec * 1e6:.3g} µas" if arcsec < 1e-2 else f"{arcsec:.3g}″"


def _range(value, name: str, low: float, high: float | None) -> tuple[float, float]:
    """A number or a (lo, hi) range of one, as (lo, hi)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"RadioObservationSampler: {name} must be a number or (lo, hi), got {value!r}")
        lo, hi = (_number(v, name, low, high) for v in value)
        if lo > hi:
            raise ValueError(f"RadioObservationSampler: {name} range must have lo <= hi, got {value!r}")
        return lo, hi
    v = _number(value, name, low, high)
    return v, v


def _number(value, name: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"RadioObservationSampler: {name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"RadioObservationSampler: {name} must be in [{low}, {high}], got {value}")
    return float(value)


class RadioObservationSampler:
    r"""Per-sample radio observations with a real array (see the module docstring).

    Args:
        img_size: (H, W) or an int.
        array: a name of :data:`~selfinv.physics.uv_coverage.ARRAYS` (``eht2017``, ``vla_d``).
        fov: field of view across the image width, in arcseconds (default: the array's :data:`SETUPS`).
        declination: of the source, in degrees (default: the array's set-up); (lo, hi): uniform per sample (a
            different source for each image).
        wavelength: in metres (default: the array's set-up); (lo, hi): uniform per sample (each image observed at
            its own frequency: the coverage scales with 1/λ).
        hour_angle: (start, end) Greenwich hour angles in hours within which tracks lie (default: the set-up's).
        duration: hours per track, at most the range (None: the whole range, every sample the same track).
        n_times: integrations per track (one visibility per baseline each).
        station_dropout: probability that a station is missing from a sample's observation, in [0, 1).
        min_elevation: degrees above the horizon for a station to see the source.
    """

    def __init__(self, img_size: int | tuple[int, int], array: str = "eht2017", fov: float | None = None,
                 declination: float | tuple[float, float] | None = None,
                 wavelength: float | tuple[float, float] | None = None,
                 hour_angle: tuple[float, float] | None = None, duration: float | None = None, n_times: int = 48,
                 station_dropout: float = 0.0, min_elevation: float = 10.0) -> None:
        self.img_size = _size(img_size, "RadioObservationSampler")
        if array not in ARRAYS:
            raise ValueError(f"RadioObservationSampler: array {array!r} is not one of {', '.join(ARRAYS)}")
        setup = SETUPS[array]
        self.array = array
        self.stations = torch.tensor(list(ARRAYS[array].values()), dtype=torch.float64)
        self.fov = _number(setup["fov"] if fov is None else fov, "fov", 0)
        self.declination = _range(setup["declination"] if declination is None else declination, "declination", -90, 90)
        self.wavelength = _range(setup["wavelength"] if wavelength is None else wavelength, "wavelength", 0, None)
        if self.fov <= 0 or self.wavelength[0] <= 0:
            raise ValueError("RadioObservationSampler: fov and wavelength must be > 0")
        hour_angle = setup["hour_angle"] if hour_angle is None else tuple(hour_angle)
        if len(hour_angle) != 2:
            raise ValueError(f"RadioObservationSampler: hour_angle must be (start, end) in hours, got {hour_angle!r}")
        lo, hi = (_number(h, "hour_angle", -24, 24) for h in hour_angle)
        if not lo < hi:
            raise ValueError(f"RadioObservationSampler: hour_angle must have start < end, got {hour_angle!r}")
        self.hour_angle = (lo, hi)
        self.duration = hi - lo if duration is None else _number(duration, "duration", 0, hi - lo)
        if isinstance(n_times, bool) or not isinstance(n_times, int) or n_times < 1:
            raise ValueError(f"RadioObservationSampler: n_times must be a positive int, got {n_times!r}")
        self.n_times = n_times
        self.station_dropout = _number(station_dropout, "station_dropout", 0, 1)
        if self.station_dropout >= 1:
            raise ValueError("RadioObservationSampler: station_dropout must be < 1")
        self.min_elevation = _number(min_elevation, "min_elevation", -90, 90)
        self.pixel_size = math.radians(self.fov / 3600) / self.img_size[1]
        self.pairs = baselines(self.stations.shape[0])
        # the band must hold every visible point of any track: check a dense grid of the hour-angle range (5 min)
        # (5 declinations of the range, the shortest wavelength)
        grid = torch.linspace(lo, hi, max(2, math.ceil((hi - lo) * 12) + 1), dtype=torch.float64)
        decs = torch.linspace(*self.declination, 5, dtype=torch.float64).repeat_interleave(len(grid))
        uvw, visible = uv_coverage(self.stations, decs, grid.repeat(5), self.wavelength[0], self.min_elevation)
        where = f"declination {self.declination[0]:g}°" + (f" to {self.declination[1]:g}°" if self.declination[1] > self.declination[0] else "")
        if not bool(visible.any()):
            raise ValueError(f"RadioObservationSampler: no baseline of {array} sees a source at {where} above "
                             f"{self.min_elevation:g}° within hour angles {self.hour_angle}")
        far = float(uv_radians(uvw[visible], self.pixel_size).abs().max())
        if far > math.pi:
            raise ValueError(f"RadioObservationSampler: a {_angle(self.fov)} field over {self.img_size[1]} pixels is too "
                             f"coarse for the baselines of {array} at {self.wavelength[0]:g} m (at most "
                             f"{_angle(self.fov * math.pi / far)} for this image width)")

    @property
    def is_fixed(self) -> bool:
        """Whether every draw is the same observation (tracks over the whole range, every station): a fixed operator,
        which configs build once instead of per sample."""
        return (self.duration == self.hour_angle[1] - self.hour_angle[0] and self.station_dropout == 0
                and self.declination[0] == self.declination[1] and self.wavelength[0] == self.wavelength[1])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T·S(S−1)/2, 3) float64: per visibility (u, v) in radians per pixel and its weight (0 or 1)."""
        _check_batch(batch_size, "RadioObservationSampler")
        lo, hi = self.hour_angle
        u = _random.rand((batch_size, 3 + self.stations.shape[0]), generator=generator, dtype=torch.float64,
                         device=generator.device if generator is not None else torch.device("cpu")).cpu()
        start = lo + u[:, :1] * (hi - lo - self.duration)
        steps = torch.linspace(0, self.duration, self.n_times, dtype=torch.float64) if self.n_times > 1 else torch.zeros(1, dtype=torch.float64)
        hours = start + steps  # (B, T)
        dec = self.declination[0] + u[:, 1:2] * (self.declination[1] - self.declination[0])  # (B, 1)
        lam = self.wavelength[0] + u[:, 2] * (self.wavelength[1] - self.wavelength[0])  # (B,)
        uvw, visible = uv_coverage(self.stations, dec.expand_as(hours).reshape(-1), hours.reshape(-1), 1.0,
                                   self.min_elevation)
        uvw = uvw.reshape(batch_size, -1, 3) / lam[:, None, None]  # in wavelengths
        keys = u[:, 3:]
        keep = (keys >= self.station_dropout) | (keys.argsort(1).argsort(1) < 2)  # the two smallest keys always observe
        pair_on = keep[:, self.pairs[:, 0]] & keep[:, self.pairs[:, 1]]  # (B, n_baselines)
        weights = visible.reshape(batch_size, self.n_times, -1) & pair_on[:, None, :]
        weights = weights.reshape(batch_size, -1, 1)
        uv = uv_radians(uvw, self.pixel_size) * weights  # unmeasured points: 0 (in band)
        return torch.cat([uv, weights.to(torch.float64)], -1)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None,
                 noise: NoiseModel | None = None) -> RadioInterferometry:
        obs = self.sample(batch_size, generator)
        return RadioInterferometry(obs[..., :2], self.img_size, weights=obs[..., 2], noise=noise)
