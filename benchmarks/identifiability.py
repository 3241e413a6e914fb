"""Identifiability: rank of the averaged normal operator vs the number of operators G and vs the group.

Reproduces the necessary conditions of the tutorial (parts 3–4; Tachella, Chen & Davies, JMLR 2023):
rank(E_g A_gᵀA_g) = n needs m ≥ n/G, and rank(E_g T_gᵀAᵀAT_g) = n needs A not equivariant to the group.
Pure linear algebra (no training): a couple of minutes on 2 CPU cores.

    python benchmarks/identifiability.py [--no-write]

Writes benchmarks/results/identifiability.json, benchmarks/figures/identifiability.png and the
"Identifiability" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from selfinv.physics import CompressedSensing, Inpainting
from selfinv.physics.samplers import BernoulliMaskSampler, MRIMaskSampler
from selfinv.theory import rank_condition
from selfinv.transforms import Reflect, Rotate, Shift

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- identifiability:begin -->", "<!-- identifiability:end -->"
H = W = 16
N = H * W


def rank_vs_operators(seed: int = 0) -> dict[str, list[dict]]:
    """Rank of (1/G) Σ_g A_gᵀA_g for G = 1.. operators of three families, with m per operator."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[dict]] = {}
    families = {
        "inpainting p=0.1": (lambda k: BernoulliMaskSampler(H, p=0.1)(k, generator=g), 0.1 * N),
        "MRI ×8 random lines": (lambda k: MRIMaskSampler(H, acceleration=8, center_fraction=0.0)(k, generator=g), N / 8),
        "CS m=24 (Gaussian)": (
            lambda k: [CompressedSensing(24, (1, H, W), kind="gaussian", generator=g) for _ in range(k)],
            24,
        ),
    }
    for name, (make, m) in families.items():
        rows = []
        pool = make(32)  # nested families: G operators are the first G of one draw, so rank grows with G
        pool = pool if isinstance(pool, list) else [pool.select(i) for i in range(32)]
        for G in (1, 2, 4, 6, 8, 10, 11, 12, 16, 24, 32):
            r = rank_condition(pool[:G], x_shape=(1, H, W))
            rows.append({"G": G, "rank": r.rank, "n": r.n, "m": m, "bound_G": N / m, "holds": r.holds})
        out[name] = rows
    return out


def rank_vs_groups(seed: int = 0) -> list[dict]:
    """Rank of E_g T_gᵀAᵀAT_g for one operator and several groups (the equivariance theorem)."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(1, 1, H, W, generator=g) < 0.5).float()
    mri = MRIMaskSampler(H, acceleration=4, center_fraction=0.125, pattern="equispaced")(1, generator=g)
    cs = CompressedSensing(N // 8, (1, H, W), kind="gaussian", generator=g)
    cases = [("inpainting, random mask 50 %", Inpainting(mask)), ("MRI ×4 equispaced lines", mri), ("CS m = n/8", cs)]
    groups = [("none", None), ("shifts (256)", Shift()), ("90° rotations (4)", Rotate(4)),
              ("reflections (4)", Reflect()), ("shifts × rotations (1024)", Shift() * Rotate(4))]
    rows = []
    for name, op in cases:
        for gname, T in groups:
            r = rank_condition(op, transforms=T, x_shape=(1, H, W)) if T is not None else rank_condition(op, x_shape=(1, H, W))
            rows.append({"operator": name, "group": gname, "rank": r.rank, "n": r.n, "group_size": r.group_size,
                         "holds": r.holds, "method": r.method})
    return rows


def figure(ops: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for (name, rows), colour in zip(ops.items(), ("C0", "C1", "C2"), strict=True):
        ax.plot([r["G"] for r in rows], [r["rank"] / r["n"] for r in rows], "o-", color=colour, label=name)
        ax.axvline(rows[0]["bound_G"], color=colour, ls=":", lw=1)
    ax.set_xlabel("number of operators G")
    ax.set_ylabel("rank(E_g A_gᵀA_g) / n")
    ax.set_title(f"Identifiability vs G (n = {N}); dotted: bound G = n/m")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(ops: dict[str, list[dict]], groups: list[dict], seconds: float) -> str:
    lines = [
        BEGIN,
        f"16×16 images (n = {N}), exact dense ranks in float64 (tolerance n·eps·λ_max). "
        f"Regenerate with `python benchmarks/identifiability.py` ({seconds:.0f} s on this machine).",
        "",
        "![rank vs number of operators](benchmarks/figures/identifiability.png)",
        "",
        "**Rank vs number of operators G** (rank / n; the necessary bound is G ≥ n/m):",
        "",
        "| family | m per operator | n/m | " + " | ".join(f"G={r['G']}" for r in next(iter(ops.values()))) + " |",
        "|---|---:|---:|" + "---:|" * len(next(iter(ops.values()))),
    ]
    for name, rows in ops.items():
        cells = " | ".join(f"{r['rank']}" for r in rows)
        lines.append(f"| {name} | {rows[0]['m']:.0f} | {rows[0]['bound_G']:.1f} | {cells} |")
    lines += [
        "",
        "**Rank vs transform group** for one fixed operator (EI's necessary condition):",
        "",
        "| operator | group | rank / n | condition |",
        "|---|---|---:|---|",
    ]
    for r in groups:
        lines.append(f"| {r['operator']} | {r['group']} | {r['rank']}/{r['n']} | {'holds' if r['holds'] else 'fails'} |")
    first = {name: next((r["G"] for r in rows if r["holds"]), None) for name, rows in ops.items()}
    lines += [
        "",
        "Reading: the first G with full rank is "
        + ", ".join(f"{name}: {g if g is not None else '> 32'} (bound n/m = {ops[name][0]['bound_G']:.1f})" for name, g in first.items())
        + ". Gaussian CS operators are in general position, so they reach full rank as soon as G·m ≥ n; "
        "random inpainting and MRI masks need more operators than the bound because their supports overlap "
        "(full rank once every pixel, or k-space column, is seen by some operator: P = (1 − (1 − p)^G)^n). "
        "With one operator, shifts make a random inpainting mask identifiable but not Cartesian MRI, which is "
        "shift-equivariant (a shift is a k-space phase modulation): its rank with shifts equals its rank alone, "
        "while rotations raise it (not to n here: 4 rotations of a ×4 mask give |G|·m = n, the bare minimum, "
        "and the rotated line sets overlap). A generic CS matrix with n/8 rows cannot reach full rank with 4 "
        "rotations or 4 reflections (|G|·m < n) but does with all 256 shifts.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    ops = rank_vs_operators()
    groups = rank_vs_groups()
    seconds = time.perf_counter() - t0
    text = section(ops, groups, seconds)
    print(text)
    if args.no_write:
        return
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "identifiability.json").write_text(json.dumps({"operators": ops, "groups": groups}, indent=2))
    figure(ops, ROOT / "benchmarks" / "figures" / "identifiability.png")
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    if BEGIN in doc:
        doc = doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip() + "\n\n## Identifiability\n\n" + text + "\n"
    bench.write_text(doc)


if __name__ == "__main__":
    main()
