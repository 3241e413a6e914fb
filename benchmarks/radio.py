"""Radio interferometry: the tutorial's black-hole example with the EHT 2017 array, and the VLA on the Hubble Deep Field.

    python benchmarks/radio.py [--parts nufft,coverage,ranks,eht,vla] [--steps 600] [--no-write] [--rewrite]

* nufft: the NUFFT behind :class:`selfinv.physics.RadioInterferometry` — FINUFFT (ours) against torchkbnufft (if
  installed: ``pip install -e .[bench]``) and the exact non-uniform DFT (einsum), float32 and float64: relative
  error, adjointness, forward and adjoint times on this machine.
* coverage: the (u, v) coverages (EHT 2017 on M87* over 12 h; three random 4-hour EHT tracks with stations dropped,
  as MOI draws them; the VLA D configuration in a 1-hour snapshot), their dirty beams, a sky and its dirty image.
* ranks: the identifiability ranks of ``selfinv check`` on 32² images: the operator alone, with rotations (n = 8),
  with down-scalings (fixed centre, factors 1, 0.75, 0.5), with both, and the MOI family (16 random observations).
* eht / vla: networks trained from the simulated visibilities (64² images, thermal noise σ = 0.05 per real and
  imaginary part): MC, EI and REI (rotations × down-scalings), MOI over random observations, supervised, through
  ``selfinv.engine.run_comparison`` (the same U-Net after 10 CG steps of least squares, seed and budget); and the
  classical rows on the same test measurements: the dirty image (scaled to the truth by least squares: an oracle
  scale), A†y (minimum-norm least squares, the runs' "no learning"), and TV-regularised non-negative least
  squares whose λ is chosen without ground truth (20 % of the visibilities held out, the λ that predicts them best).

Results: benchmarks/results/radio/ (results.json per part, figures); the section "Radio interferometry" of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from run import write_section  # noqa: E402

from selfinv.config import parse_config  # noqa: E402
from selfinv.data.sky import black_hole_images, hubble_images  # noqa: E402
from selfinv.engine import Variant, build_test_set, run_comparison  # noqa: E402
from selfinv.physics import RadioInterferometry, RadioObservationSampler  # noqa: E402
from selfinv.physics._nufft import nudft, nudft_adjoint  # noqa: E402
from selfinv.physics.solvers import tv_reconstruct  # noqa: E402
from selfinv.theory import rank_condition  # noqa: E402
from selfinv.training.metrics import psnr, ssim  # noqa: E402
from selfinv.transforms import Rotate, Scale  # noqa: E402

NAME, TITLE = "radio", "Radio interferometry"
OUT = ROOT / "benchmarks" / "results" / NAME
SIGMA = 0.05
TRANSFORM = [{"name": "rotate", "degrees": [0, 360]}, {"name": "scale"}]
#: the observations: fixed (every sample the same) and random (MOI)
OBS = {
    "eht": {"fixed": {"name": "radio_observation", "array": "eht2017"},
            "random": {"name": "radio_observation", "array": "eht2017", "duration": 4.0, "station_dropout": 0.25,
                       "declination": [-30.0, 30.0], "wavelength": [0.87e-3, 1.3e-3]}},
    "vla": {"fixed": {"name": "radio_observation", "array": "vla_d", "hour_angle": [6.7, 7.7], "n_times": 4},
            "random": {"name": "radio_observation", "array": "vla_d", "duration": 1.0, "n_times": 4, "station_dropout": 0.25,
                       "declination": [20.0, 60.0]}},
}
PARTS = {
    "eht": {"heading": "EHT 2017 on synthetic black holes (M87*, 12-hour track, 160 µas field)",
            "data": {"source": "embedded", "images": ["black_holes"], "test_images": ["black_holes_test"], "gray": True,
                     "patch_size": None, "patches_per_image": 1, "test_size": 64, "val_fraction": 0.15,
                     "normalization": "none"}},
    "vla": {"heading": "VLA D configuration on the Hubble Deep Field (6 cm, 1-hour snapshot, 160″ field)",
            "data": {"source": "embedded", "images": ["hubble_train"], "test_images": ["hubble_test"], "gray": True,
                     "patch_size": 64, "patches_per_image": 128, "test_size": 64, "val_fraction": 0.15,
                     "normalization": "none"}},
}
LAMBDAS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]


def config(part: str, steps: int) -> dict:
    return {
        "data": PARTS[part]["data"],
        "physics": {"name": "radio_interferometry", "sampler": OBS[part]["fixed"]},
        "noise": {"name": "gaussian", "sigma": SIGMA},
        "loss": {"name": "rei", "transform": TRANSFORM},
        "model": {"backbone": {"name": "unet", "depth": 2, "width": 16}, "wrapper": {"name": "backprojection", "init": "cg"}},
        "training": {"epochs": 10_000, "batch_size": 8, "lr": 0.001, "scheduler": "cosine", "max_steps": steps,
                     "device": "cpu"},
        "seed": 0,
    }


def runs(part: str) -> list:
    moi = json.dumps({"name": "radio_interferometry", "sampler": OBS[part]["random"]})
    return ["mc", Variant("ei", ("loss.name=ei",)), "rei",
            Variant("moi-random-observations", ("loss={name: moi}", f"physics={moi}")), "supervised"]


# ---------------------------------------------------------------------- nufft
def exact(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    r = torch.arange(h, dtype=torch.float64) - h // 2
    c = torch.arange(w, dtype=torch.float64) - w // 2
    return torch.einsum("kh,bhw,kw->bk", torch.exp(-1j * points[0][:, None] * r), x.to(torch.complex128),
                        torch.exp(-1j * points[1][:, None] * c)) / math.sqrt(h * w)


def timed(fn, *args, repeat: int = 5) -> float:
    fn(*args)
    t = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - t) / repeat


def nufft_part() -> dict:
    try:
        import torchkbnufft as tkbn
    except ImportError:
        tkbn = None
    g = torch.Generator().manual_seed(0)
    rows = []
    for n, k, b in [(64, 3000, 8), (128, 20000, 8)]:
        pts = (torch.rand(2, k, generator=g, dtype=torch.float64) * 2 - 1) * math.pi * 0.95
        x = torch.rand(b, n, n, generator=g, dtype=torch.float64)
        ref = exact(x, pts)
        t_exact = timed(exact, x, pts, repeat=1)
        rows.append({"lib": "exact NUDFT (einsum)", "n": n, "k": k, "dtype": "float64", "err": 0.0, "adj": None,
                     "fwd_ms": t_exact * 1e3, "adj_ms": None})
        for dt in (torch.complex64, torch.complex128):
            xx = x.to(dt)[:, None]
            y = nudft(xx, pts[None])
            err = float((y[:, 0].to(torch.complex128) - ref).norm() / ref.norm())
            yr = torch.randn(b, 1, k, generator=g, dtype=torch.float64).to(dt)
            adj = float(abs((y.conj() * yr).sum() - (xx.conj() * nudft_adjoint(yr, pts[None], (n, n))).sum()) /
                        (xx.norm() * yr.norm()))
            rows.append({"lib": "FINUFFT (ours)", "n": n, "k": k, "dtype": str(dt.to_real()).split(".")[-1], "err": err,
                         "adj": adj, "fwd_ms": timed(nudft, xx, pts[None]) * 1e3,
                         "adj_ms": timed(nudft_adjoint, yr, pts[None], (n, n)) * 1e3})
            if tkbn is not None:
                op = tkbn.KbNufft(im_size=(n, n), dtype=dt)
                opa = tkbn.KbNufftAdjoint(im_size=(n, n), dtype=dt)
                om = pts.to(dt.to_real())
                yk = op(xx, om) / n
                err = float((yk[:, 0].to(torch.complex128) - ref).norm() / ref.norm())
                adj = float(abs((yk.conj() * yr).sum() - (xx.conj() * opa(yr, om) / n).sum()) / (xx.norm() * yr.norm()))
                rows.append({"lib": "torchkbnufft 1.5 (table, 6 neighbours)", "n": n, "k": k,
                             "dtype": str(dt.to_real()).split(".")[-1], "err": err, "adj": adj,
                             "fwd_ms": timed(op, xx, om) * 1e3, "adj_ms": timed(opa, yr, om) * 1e3})
    return {"rows": rows, "threads": torch.get_num_threads()}


# ---------------------------------------------------------------------- coverage figure
def coverage_part(out: Path) -> dict:
    g = torch.Generator().manual_seed(1)
    eht = RadioObservationSampler(64, **{k: v for k, v in OBS["eht"]["fixed"].items() if k != "name"})
    moi = RadioObservationSampler(64, **{k: v for k, v in OBS["eht"]["random"].items() if k != "name"})
    vla = RadioObservationSampler(64, **{k: v for k, v in OBS["vla"]["fixed"].items() if k != "name"})
    ops = {"EHT 2017, M87*, 12 h": eht(1, g), **{f"random EHT track {i + 1}": moi(1, g) for i in range(3)},
           "VLA D, 1 h snapshot": vla(1, g)}
    fig, ax = plt.subplots(3, 5, figsize=(17, 10))
    facts = {}
    sky = {"EHT": torch.from_numpy(black_hole_images(1, 64, seed=1000))[:1].double(),
           "VLA": torch.from_numpy(hubble_images("test")[4][None, :, 16:80, 16:80]).double()}
    for j, (label, op) in enumerate(ops.items()):
        w = op.weights[0] > 0
        uv = op.uv[0][w].numpy()
        ax[0, j].scatter(uv[:, 0], uv[:, 1], s=2, c="k")
        ax[0, j].scatter(-uv[:, 0], -uv[:, 1], s=2, c="gray")
        ax[0, j].set(xlim=(-math.pi, math.pi), ylim=(-math.pi, math.pi), aspect="equal", title=f"{label}\n{int(w.sum())} visibilities",
                     xlabel="u (rad/pixel)", ylabel="v (rad/pixel)")
        beam = op.dirty_beam(torch.float64)[0, 0]
        ax[1, j].imshow((beam / beam.max()).numpy()[32:96, 32:96], cmap="RdBu_r", vmin=-1, vmax=1)
        ax[1, j].set_title("dirty beam (peak 1)")
        x = sky["VLA" if "VLA" in label else "EHT"]
        y = op.with_noise(None).A(x)
        ax[2, j].imshow(op.dirty_image(y)[0, 0].numpy(), cmap="afmhot")
        ax[2, j].set_title("dirty image (beam units)")
        facts[label] = {"visibilities": int(w.sum()), "max_radius_of_band": float(op.uv[0][w].norm(dim=1).max() / math.pi)}
        for a in ax[:, j]:
            a.set_xticks([]) if a is not ax[0, j] else None
    fig.tight_layout()
    fig.savefig(out / "coverage.png", dpi=80)
    plt.close(fig)
    return facts


# ---------------------------------------------------------------------- ranks
def ranks_part() -> dict:
    out = {}
    groups = {"A alone": None, "rotations (n = 8)": Rotate(n=8),
              "down-scalings (1, 0.75, 0.5; fixed centre)": Scale((1.0, 0.75, 0.5), random_center=False),
              "rotations × down-scalings": Rotate(n=8) * Scale((1.0, 0.75, 0.5), random_center=False)}
    for part in ("eht", "vla"):
        fixed = RadioObservationSampler(32, **{k: v for k, v in OBS[part]["fixed"].items() if k != "name"})
        op = fixed(1, torch.Generator().manual_seed(0))
        rows = {}
        for label, t in groups.items():
            r = rank_condition(op, transforms=t, x_shape=(1, 32, 32))
            rows[label] = {"rank": r.rank, "n": r.n, "m": r.m}
        family = RadioObservationSampler(32, **{k: v for k, v in OBS[part]["random"].items() if k != "name"})
        r = rank_condition(family, n_operators=16, x_shape=(1, 32, 32), generator=torch.Generator().manual_seed(0))
        rows["MOI: 16 random observations"] = {"rank": r.rank, "n": r.n, "m": r.m}
        out[part] = rows
    return out


# ---------------------------------------------------------------------- classical rows
def classical_part(part: str, steps: int) -> dict:
    cfg = parse_config(config(part, steps))
    test = build_test_set(cfg)
    y = torch.stack([test[i].y for i in range(len(test))])
    x = torch.stack([test[i].x for i in range(len(test))])
    op = RadioObservationSampler(64, **{k: v for k, v in OBS[part]["fixed"].items() if k != "name"})(1)  # the fixed one
    rows = {}
    t = time.perf_counter()
    dirty = op.dirty_image(y)
    scale = (dirty * x).flatten(1).sum(1) / dirty.square().flatten(1).sum(1)  # the oracle scale, per image
    rows["dirty image (oracle scale)"] = _scores(dirty * scale[:, None, None, None], x, time.perf_counter() - t)
    t = time.perf_counter()
    rows["A†y (min-norm least squares, 200 CG steps)"] = _scores(op.A_dagger(y), x, time.perf_counter() - t)
    t = time.perf_counter()
    rec, lam = tv_select(op, y)
    rows[f"TV, non-negative (λ by held-out visibilities; median {np.median(lam):.3g})"] = _scores(rec, x, time.perf_counter() - t)
    return {"rows": rows, "n_test": len(test)}


def tv_select(op: RadioInterferometry, y: torch.Tensor, n_iter: int = 300) -> tuple[torch.Tensor, list[float]]:
    """Per image: TV-regularised non-negative least squares on 80 % of the visibilities for every λ of LAMBDAS, the λ
    whose image predicts the other 20 % best, rerun on all of them."""
    g = torch.Generator().manual_seed(0)
    w = op.weights.expand(y.shape[0], -1)
    held = (torch.rand(w.shape, generator=g, dtype=torch.float64) < 0.2) & (w > 0)
    k, b = len(LAMBDAS), y.shape[0]
    fit = RadioInterferometry(op.uv, op.img_size, (w * ~held).repeat_interleave(k, 0))
    lam = torch.tensor(LAMBDAS, dtype=y.real.dtype).repeat(b)
    xs = tv_reconstruct(fit, y.repeat_interleave(k, 0) * (~held).repeat_interleave(k, 0)[:, None], lam, n_iter, nonneg=True)
    pred = RadioInterferometry(op.uv, op.img_size, (w * held).repeat_interleave(k, 0)).A(xs)
    err = (pred - y.repeat_interleave(k, 0) * held.repeat_interleave(k, 0)[:, None]).abs().square().flatten(1).sum(1)
    best = err.reshape(b, k).argmin(1)
    chosen = torch.tensor(LAMBDAS, dtype=y.real.dtype)[best]
    return tv_reconstruct(op, y, chosen, n_iter, nonneg=True), chosen.tolist()


def _scores(x_hat: torch.Tensor, x: torch.Tensor, seconds: float) -> dict:
    return {"psnr": float(psnr(x_hat.float(), x.float(), data_range=1.0).mean()),
            "ssim": float(ssim(x_hat.float(), x.float(), data_range=1.0).mean()), "seconds_per_image": seconds / x.shape[0]}


# ---------------------------------------------------------------------- section
def section(res: dict, seconds: float) -> str:
    lines = [f"<!-- {NAME}:begin -->",
             f"{seconds / 60:.1f} min on this machine's CPU ({res.get('threads', '?')} threads). Regenerate with "
             "`python benchmarks/radio.py` (torchkbnufft for the NUFFT comparison: `pip install -e .[bench]`).", ""]
    if "nufft" in res:
        lines += ["### The NUFFT", "",
                  "B = 8 images, K random points within 95 % of the band; error relative to the exact non-uniform DFT; "
                  "adjointness |⟨Ax, y⟩ − ⟨x, Aᴴy⟩| / (‖x‖‖y‖).", "",
                  "| library | image | K | dtype | rel. error | adjointness | forward ms | adjoint ms |",
                  "|---|---|---:|---|---:|---:|---:|---:|"]
        for r in res["nufft"]["rows"]:
            adj = "" if r["adj"] is None else f"{r['adj']:.1e}"
            adj_ms = "" if r["adj_ms"] is None else f"{r['adj_ms']:.1f}"
            lines.append(f"| {r['lib']} | {r['n']}² | {r['k']} | {r['dtype']} | {r['err']:.1e} | {adj} | "
                         f"{r['fwd_ms']:.1f} | {adj_ms} |")
        lines.append("")
    if "coverage" in res:
        lines += ["### Coverages", "", "![uv coverages, dirty beams and dirty images](benchmarks/figures/radio-coverage.png)", "",
                  "| observation | visibilities | longest baseline (fraction of the band) |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['visibilities']} | {v['max_radius_of_band']:.2f} |" for k, v in res["coverage"].items()]
        lines.append("")
    if "ranks" in res:
        lines += ["### Identifiability (`selfinv check`'s rank tests, 32² images, n = 1024)", "",
                  "| group / family | EHT 2017 12 h: rank | VLA D 1 h: rank |", "|---|---:|---:|"]
        for label in res["ranks"]["eht"]:
            e, v = res["ranks"]["eht"][label], res["ranks"]["vla"][label]
            lines.append(f"| {label} | {e['rank']}/{e['n']} | {v['rank']}/{v['n']} |")
        m = {p: res["ranks"][p]["A alone"]["m"] for p in ("eht", "vla")}
        lines += ["", f"Real measurements per observation at 32²: EHT {m['eht']}, VLA {m['vla']} (2 per visibility).", ""]
    for part in ("eht", "vla"):
        if part not in res:
            continue
        r = res[part]
        lines += [f"### {PARTS[part]['heading']}", "", f"![{part}](benchmarks/figures/radio-{part}.png)", "",
                  f"{r['n_test']} test images, {r['steps']} steps of batch 8 per network.", "",
                  "| method | PSNR (dB) | SSIM | train min | test s / image |", "|---|---:|---:|---:|---:|"]
        for label, s in r["classical"].items():
            lines.append(f"| {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | | {s['seconds_per_image']:.3f} |")
        for run in r["runs"]:
            if run.get("error"):
                lines.append(f"| {run['loss']} | failed: {run['error']} | | | |")
                continue
            note = " (its own test observations)" if run["loss"].startswith("moi") else ""
            lines.append(f"| {run['loss']}{note} | {run['psnr']:.2f} | {run['ssim']:.3f} | {run['train_seconds'] / 60:.1f} | "
                         f"{run.get('test_seconds_per_image', float('nan')):.3f} |")
        lines.append("")
    lines.append(f"<!-- {NAME}:end -->")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="nufft,coverage,ranks,eht,vla")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rewrite", action="store_true", help="rebuild the section from the stored results")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    store = OUT / "results.json"
    res = json.loads(store.read_text()) if store.exists() else {}
    t0 = time.perf_counter()
    if not args.rewrite:
        parts = args.parts.split(",")
        res["threads"] = torch.get_num_threads()
        if "nufft" in parts:
            res["nufft"] = nufft_part()
        if "coverage" in parts:
            res["coverage"] = coverage_part(OUT)
        if "ranks" in parts:
            res["ranks"] = ranks_part()
        for part in ("eht", "vla"):
            if part not in parts:
                continue
            folder = OUT / part
            if folder.exists():
                shutil.rmtree(folder)
            cfg = parse_config(config(part, args.steps))
            comp = run_comparison(cfg, runs(part), folder).results
            classical = classical_part(part, args.steps)
            res[part] = {"runs": comp["runs"], "classical": classical["rows"], "steps": args.steps, "n_test": classical["n_test"]}
        res["seconds"] = res.get("seconds", 0.0) * (0 if set(parts) >= {"nufft", "coverage", "ranks", "eht", "vla"} else 1) \
            + time.perf_counter() - t0
        store.write_text(json.dumps(res, indent=1))
    body = section(res, res.get("seconds", time.perf_counter() - t0))
    print(body)
    if args.no_write:
        return
    figures = ROOT / "benchmarks" / "figures"
    if (OUT / "coverage.png").exists():
        shutil.copy(OUT / "coverage.png", figures / "radio-coverage.png")
    for part in ("eht", "vla"):
        if (OUT / part / "comparison.png").exists():
            shutil.copy(OUT / part / "comparison.png", figures / f"radio-{part}.png")
    write_section(NAME, TITLE, body)


if __name__ == "__main__":
    main()
