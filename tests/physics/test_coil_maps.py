"""ESPIRiT coil maps (sigpy): the calibration region, smooth known maps recovered up to a phase with unit
root-sum-of-squares, SENSE with the estimated maps, errors; and the real brain slice against BART's pics
reconstruction (SELFINV_DATA)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from selfinv.physics import MultiCoilMRI, calibration_size, espirit_maps
from tests.helpers import gen

pytest.importorskip("sigpy", reason="ESPIRiT needs the mri extra: pip install 'selfinv[mri]'")
pytestmark = pytest.mark.usefixtures("one_thread")

DATA = os.environ.get("SELFINV_DATA")
real = pytest.mark.skipif(not DATA, reason="set SELFINV_DATA to the shared data folder to run")

H, W, COILS = 48, 40, 6


def phantom(shift: float = 0.0):
    """(object mask (H, W), image (1, 1, H, W), unit-RSS smooth maps (1, C, H, W)): an ellipse with a smooth
    texture and phase, coils on a ring (rotated by ``shift`` rad) with Gaussian profiles and linear phases."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, H, dtype=torch.float64), torch.linspace(-1, 1, W, dtype=torch.float64),
                            indexing="ij")
    obj = ((xx / 0.8) ** 2 + (yy / 0.9) ** 2) < 1
    x = obj * (1 + 0.5 * torch.cos(3 * xx) * torch.sin(2 * yy)) * torch.exp(1j * 0.5 * xx)
    maps = []
    for a in torch.arange(COILS) * 2 * torch.pi / COILS + shift:
        profile = torch.exp(-((xx - 1.2 * torch.cos(a)) ** 2 + (yy - 1.2 * torch.sin(a)) ** 2) / 1.5)
        maps.append(profile * torch.exp(1j * (0.7 * torch.cos(a) * xx + 0.4 * yy + a)))
    maps = torch.stack(maps)
    return obj, x[None, None].to(torch.complex128), (maps / maps.abs().pow(2).sum(0).sqrt())[None]


def variable_density_mask(seed: int = 1) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    mask = (torch.rand(H, W, generator=gen(seed)) < 0.2 + 0.8 * torch.exp(-(xx**2 + yy**2) / 0.1)).float()
    mask[H // 2 - 8 : H // 2 + 8, W // 2 - 8 : W // 2 + 8] = 1  # a 16 x 16 calibration region
    return mask


def test_calibration_size_is_the_largest_fully_sampled_centred_square():
    for h, w in [(16, 16), (15, 17), (20, 13)]:
        for top, bottom, left, right in [(3, 2, 4, 5), (1, 1, 1, 1), (5, 6, 2, 2), (0, 0, 0, 0)]:
            m = torch.zeros(1, 1, h, w)
            m[..., h // 2 - top : h // 2 + bottom + 1, w // 2 - left : w // 2 + right + 1] = 1
            m[..., 0, :] = 1  # an isolated sampled line does not count
            best = 0
            for s in range(1, min(h, w) + 1):  # brute force: the squares sigpy and BART crop
                r0, c0 = h // 2 - s // 2, w // 2 - s // 2
                if r0 >= 0 and c0 >= 0 and bool(m[0, 0, r0 : r0 + s, c0 : c0 + s].all()):
                    best = s
                else:
                    break
            assert calibration_size(m).tolist() == [best], (h, w, top, bottom, left, right)
    per_coil = torch.ones(2, 3, 8, 8)
    per_coil[1, 2, 4, 4] = 0  # one coil misses the centre of sample 1
    assert calibration_size(per_coil).tolist() == [8, 0]


@pytest.mark.parametrize("sampling", ["full", "variable_density"])
def test_espirit_recovers_smooth_maps_up_to_a_phase(sampling):
    """|<s_est(r), s_true(r)>| = 1 inside the object (the maps agree up to a pixel-wise phase, which the SENSE image
    takes), the root-sum-of-squares is 1 there, and SENSE with the estimated maps recovers the image."""
    obj, x, true = phantom()
    mask = torch.ones(H, W) if sampling == "full" else variable_density_mask()
    op = MultiCoilMRI(mask, true)
    y = op.A(x) + 1e-3 * torch.randn(op.A(x).shape, generator=gen(2), dtype=torch.complex128) * mask
    est = espirit_maps(y, calib_size=16)
    assert est.shape == true.shape and est.dtype == torch.complex128
    agree = (est.conj() * true).sum(1).abs()[0]
    assert float(agree[obj].mean()) > 0.9995 and float(agree[obj].min()) > 0.99  # measured 0.99996, 0.9970
    rss = est.abs().pow(2).sum(1).sqrt()[0]
    assert float((rss[obj] - 1).abs().max()) < 1e-4
    x_hat = MultiCoilMRI(mask, est).A_dagger(y, tol=1e-10, max_iter=100)
    err = (x_hat.abs() - x.abs())[0, 0][obj].norm() / x.abs()[0, 0][obj].norm()
    assert float(err) < (0.005 if sampling == "full" else 0.05)  # measured 0.0007, 0.020


def test_each_sample_gets_its_own_maps_and_the_default_calibration():
    obj, x, maps_a = phantom()
    _, _, maps_b = phantom(shift=0.5)
    maps = torch.cat([maps_a, maps_b])
    mask = variable_density_mask()
    y = MultiCoilMRI(mask, maps).A(x.expand(2, -1, -1, -1)).to(torch.complex64)  # complex64 in, complex64 out
    est = espirit_maps(y)  # calib_size: the 16 x 16 fully sampled centre
    assert est.shape == (2, COILS, H, W) and est.dtype == torch.complex64
    for i in range(2):
        agree = (est[i].conj() * maps[i]).sum(0).abs()
        assert float(agree[obj].mean()) > 0.999
    alone = espirit_maps(y[1:])
    torch.testing.assert_close(alone, est[1:])


def test_bad_inputs_are_one_line_errors():
    _, x, maps = phantom()
    y = MultiCoilMRI(variable_density_mask(), maps).A(x)
    cases = {
        "calib_size 20 is larger than the fully sampled": lambda: espirit_maps(y, calib_size=20),
        "too small": lambda: espirit_maps(torch.where(torch.rand(H, W, generator=gen(3)) > 0.5, y, 0)),  # no centre
        "must be complex": lambda: espirit_maps(y.real),
        "NaN": lambda: espirit_maps(torch.where(y.abs() > 1, y, torch.nan + 0j)),
        "(B, C, H, W)": lambda: espirit_maps(y[0]),
        "mask must be": lambda: espirit_maps(y, mask=torch.ones(H, W + 1)),
        "calib_size must be an int >= kernel_size + 2 = 8": lambda: espirit_maps(y, calib_size=5),
        "the maps are all zero": lambda: espirit_maps(y, calib_size=8),  # 9 patches for 6 x 36 unknowns
    }
    for fragment, call in cases.items():
        with pytest.raises(ValueError, match=re.escape(fragment)) as err:
            call()
        assert "\n" not in str(err.value) and str(err.value).startswith("espirit_maps")


# ---------------------------------------------------------------------- the real brain slice (SELFINV_DATA)
def _agreement(x: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(normalised correlation of magnitudes, PSNR in dB after the least-squares scale of |x| to |ref|)."""
    a, r = x.abs().double().flatten(), ref.abs().double().flatten()
    corr = float(a @ r / (a.norm() * r.norm()))
    scale = (a @ r) / (a @ a)
    mse = ((scale * a - r) ** 2).mean()
    return corr, float(10 * torch.log10(r.max() ** 2 / mse))


@real
def test_real_brain_slice_maps_and_sense_agree_with_bart():
    """8-coil Poisson-disc k-space (12.7 %, 20 x 20 fully sampled centre) and BART's pics reconstruction with 2
    ESPIRiT maps. Measured: RSS of the maps 1.0000 (min) over the object; zero-filled A^H y: correlation 0.978,
    25.2 dB; CG-SENSE A† y after 5 iterations: 0.998, 34.7 dB (more iterations amplify noise: 0.93 at 100)."""
    from selfinv.data.kspace import read_kspace

    folder = Path(DATA) / "mri_bart_brain_kspace"
    y = read_kspace(folder / "ksp.cfl")
    assert y.shape == (1, 8, 180, 230)
    ref = read_kspace(folder / "img.cfl")  # (1, 2, 180, 230): the image of each ESPIRiT map set
    ref = ref.abs().pow(2).sum(1, keepdim=True).sqrt()
    obj = ref[0, 0] > 0.1 * ref.max()
    maps = espirit_maps(y)
    assert calibration_size((y != 0).any(1, keepdim=True)).tolist() == [20]
    rss = maps.abs().pow(2).sum(1).sqrt()[0]
    assert float(rss[obj].min()) > 0.99 and abs(float(rss[obj].mean()) - 1) < 1e-3
    op = MultiCoilMRI((y != 0).any(1, keepdim=True).float(), maps)
    corr, psnr = _agreement(op.A_adjoint(y), ref)
    assert corr > 0.96 and psnr > 23.5  # measured 0.978, 25.2 dB
    corr, psnr = _agreement(op.A_dagger(y, max_iter=5), ref)
    assert corr > 0.995 and psnr > 32.5  # measured 0.998, 34.7 dB


def test_importing_selfinv_does_not_import_sigpy_or_numba():
    import subprocess
    import sys

    code = ("import sys, selfinv, selfinv.physics, selfinv.data.kspace, selfinv.engine.measurements, selfinv.cli; "
            "print(sorted(m for m in ('sigpy', 'numba', 'llvmlite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
