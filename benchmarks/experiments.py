"""The experiments of BENCHMARKS.md: per experiment its parts (a config in ``benchmarks/configs`` and the runs
to compare), the GPU preset's overrides and the literature's numbers (../shared/reference/anchors.md).

A run is a loss name (the part's config with that loss) or ``(label, [overrides])``: the config with
``--set``-style overrides (``${DATA}`` is the data folder). Labels ``loss@N`` feed the sample-complexity curve.
"""

from __future__ import annotations

SIGMA25 = 0.0980392  # 25/255
BSD68 = {"BSD68 (first 17, 256² crops)": ["data.test_path=${DATA}/bsd68_gray", "data.max_test_images=17", "data.test_size=256"]}
DENOISING_GPU = ["training.max_steps=20000", "data.patches_per_image=16", "model.backbone.depth=17", "model.backbone.width=64",
                 "data.test_size=256"]
RECON_GPU = ["training.max_steps=5000", "model.backbone.depth=4", "model.backbone.width=32"]


def misspecified_gaussian(true_noise: str, sigma: float = 0.15) -> tuple[str, list[str]]:
    """Gaussian SURE on data whose true noise is ``true_noise`` (a flow mapping), σ matched to the average variance."""
    return ("sure-gaussian-misspecified", ["loss.name=sure", f"noise={{name: gaussian, sigma: {sigma}}}", f"data.true_noise={true_noise}"])


EXPERIMENTS: dict[str, dict] = {
    "gaussian_ladder": {
        "title": "Gaussian denoising ladder",
        "parts": [{
            "key": "main", "config": "gaussian_ladder.yaml", "bm3d": True, "extra_tests": BSD68,
            "runs": ["supervised", "noise2noise", "sure", "r2r", ("r2r-1-sample", ["loss.name=r2r", "loss.n_samples=1"]),
                     "unsure", "noise2score", "noise2self", "noise2void", "neighbor2neighbor", "blind_spot", "autoencoder", "mc"],
        }],
        "gpu": DENOISING_GPU,
        "literature": [
            ("Supervised (DnCNN, BSD68)", "29.20 dB", "Net-SURE table [V]"),
            ("SURE (DnCNN-SURE, BSD68)", "28.97 dB (−0.23)", "Soltanayev & Chun 2018 [V]"),
            ("Noise2Noise", "≈ supervised (−0.02)", "NVlabs N2N README, Kodak/BSD300 RGB [V]"),
            ("R2R (50 test samples)", "≈ supervised −0.1…0.3", "Pang et al. 2021 [S/R]"),
            ("Neighbor2Neighbor", "supervised −0.35", "Kodak RGB [S]"),
            ("Noise2Void", "27.71 dB (−1.35 vs 29.06)", "Krull et al. 2019, BSD68 [S]"),
            ("BM3D (BSD68)", "28.56 dB", "Net-SURE table [V]"),
            ("MC", "= noisy input (≈ 20.2 dB)", "tutorial: f*(y) = y"),
        ],
    },
    "noise_models": {
        "title": "Poisson and Gamma noise",
        "parts": [
            {"key": "poisson", "heading": "Poisson, gain 0.05 (y = 0.05·P(x/0.05))", "config": "noise_models.yaml",
             "runs": ["supervised", "sure", "r2r", "noise2score", "neighbor2neighbor",
                      misspecified_gaussian("{name: poisson, gain: 0.05}")]},
            {"key": "poisson_gaussian", "heading": "Poisson-Gaussian, gain 0.05 and σ = 0.05", "config": "noise_models.yaml",
             "set": ["noise={name: poisson_gaussian, gain: 0.05, sigma: 0.05}"],
             "runs": ["supervised", "sure", "unsure_pg",
                      "neighbor2neighbor",
                      misspecified_gaussian("{name: poisson_gaussian, gain: 0.05, sigma: 0.05}", 0.16)]},
            {"key": "gamma", "heading": "Gamma, shape ℓ = 10 (y = x·G/ℓ, G ~ Gamma(ℓ))", "config": "noise_models.yaml",
             "set": ["noise={name: gamma, shape: 10.0}"],
             "runs": ["supervised", "r2r", "noise2score", "neighbor2neighbor",
                      misspecified_gaussian("{name: gamma, shape: 10.0}")]},
        ],
        "gpu": DENOISING_GPU,
        "literature": [
            ("Noise2Noise vs supervised, Poisson (λ ≤ 50)", "31.66 = 31.66 dB (Kodak)", "NVlabs N2N README [V]"),
            ("PURE ≈ GR2R", "≈ supervised − 0.2…0.5 dB", "anchors E8 (expected)"),
            ("Neighbor2Neighbor, Poisson λ = 30", "31.44 vs N2C 31.66 dB (Kodak)", "Nb2Nb table [S]"),
            ("SURE-Poisson vs Nb2Nb (MNIST, gain 0.1)", "26.06 vs 23.97 dB", "deepinv demos [V]"),
            ("Gaussian SURE on Poisson data", "worse than PURE", "anchors E8 (expected)"),
        ],
    },
    "unknown_noise": {
        "title": "Unknown noise level",
        "parts": [
            {"key": "white", "heading": "White Gaussian noise, σ = 25/255 hidden from UNSURE", "config": "unknown_noise.yaml",
             "analysis": "unsure_eta",
             "runs": ["supervised", "sure", "unsure",
                      ("sure-half-sigma", ["loss.name=sure", f"noise={{name: gaussian, sigma: {SIGMA25 / 2}}}",
                                           f"data.true_noise={{name: gaussian, sigma: {SIGMA25}}}"]),
                      ("sure-double-sigma", ["loss.name=sure", f"noise={{name: gaussian, sigma: {SIGMA25 * 2}}}",
                                             f"data.true_noise={{name: gaussian, sigma: {SIGMA25}}}"]),
                      "noise2self"]},
            {"key": "correlated", "heading": "Spatially correlated noise: σ = 0.1 convolved with a 3×3 box (‖k‖ = 1)",
             "config": "unknown_noise.yaml", "analysis": "unsure_eta",
             "set": ["noise={name: correlated_gaussian, sigma: 0.1, kernel: [[0.3333333, 0.3333333, 0.3333333], "
                     "[0.3333333, 0.3333333, 0.3333333], [0.3333333, 0.3333333, 0.3333333]]}"],
             "runs": ["supervised", ("unsure_covariance", ["loss.name=unsure_covariance", "loss.radius=2"]), "unsure",
                      ("sure-white-misspecified", ["loss.name=sure", "noise={name: gaussian, sigma: 0.1}",
                                                   "data.true_noise={name: correlated_gaussian, sigma: 0.1, kernel: "
                                                   "[[0.3333333, 0.3333333, 0.3333333], [0.3333333, 0.3333333, 0.3333333], "
                                                   "[0.3333333, 0.3333333, 0.3333333]]}"]),
                      "neighbor2neighbor"]},
        ],
        "gpu": DENOISING_GPU,
        "literature": [
            ("UNSURE learned σ, MNIST σ = 0.1", "0.115 (η̂ > σ², as theory says)", "deepinv demo [V]"),
            ("ZED multiplier", "η̂ = σ²/(1 − MMSE/σ²) ≥ σ²", "UNSURE talk slides 17–19 [V]"),
            ("ordering", "SURE(true σ) > UNSURE > SURE(0.5σ / 2σ); UNSURE ≥ N2S", "anchors E5 (expected)"),
            ("correlated noise", "UNSURE(kernel 3) + MC on DIV2K, σ = 0.2 ⊛ 3×3 box", "UNSURE paper settings [V]; PSNR tables not checked"),
        ],
    },
    "inpainting": {
        "title": "Inpainting",
        "parts": [
            {"key": "fixed", "heading": "One fixed mask (50 % of the pixels), noiseless", "config": "inpainting.yaml",
             "runs": ["mc", ("ei-shift", ["loss.name=ei", "loss.transform=shift"]),
                      ("ei-rotate", ["loss.name=ei", "loss.transform={name: rotate, n: 4}"]), "splitting",
                      ("splitting-ssdu", ["loss.name=splitting", "loss.consistency=none"]), "supervised"]},
            {"key": "random", "heading": "A new random mask per image (50 %), noiseless", "config": "inpainting.yaml",
             "set": ["physics={name: inpainting, sampler: {name: bernoulli_mask, p: 0.5}}"],
             "runs": ["mc", "moi", "splitting", ("splitting-ssdu", ["loss.name=splitting", "loss.consistency=none"]),
                      "supervised"]},
        ],
        "gpu": RECON_GPU + ["data.patch_size=128", "data.test_size=128",
                            "physics.mask={sampler: bernoulli_mask, img_size: 128, p: 0.5, seed: 0}"],
        "literature": [
            ("A†y / MC / EI / supervised (Urban100, one mask)", "3.88 / 3.88 / 24.13 / 24.91 dB", "EI paper figure [V]"),
            ("A†y / AmbientGAN / MOI / supervised (CelebA, G = 40)", "9.05 / 29.57 / 34.05 / 36.21 dB", "MOI paper [V]"),
            ("Splitting with one operator", "≤ A†y (SSIBench Sc.3 MRI: 21.89 < 28.02 dB)", "SSIBench README [V]"),
        ],
    },
    "mri": {
        "title": "Accelerated MRI",
        "parts": [
            {"key": "noiseless", "heading": "×8 Cartesian, one fixed mask (σ = 0.002)", "config": "mri.yaml",
             "runs": ["mc", "splitting",
                      ("splitting-mask-per-image", ["loss.name=splitting", "physics={name: mri, sampler: {name: mri_mask, "
                                                    "acceleration: 8.0, center_fraction: 0.04, pattern: random}}"]),
                      ("moi-mask-per-image", ["loss.name=moi", "physics={name: mri, sampler: {name: mri_mask, "
                                              "acceleration: 8.0, center_fraction: 0.04, pattern: random}}"]),
                      ("ei-rotate", ["loss.name=ei"]), "supervised"]},
            {"key": "noisy", "heading": "×8 Cartesian, one fixed mask, noisy (σ = 0.03)", "config": "mri.yaml",
             "set": ["noise={name: gaussian, sigma: 0.03}", "training.max_steps=1500"],
             "runs": ["mc", ("ei-rotate", ["loss.name=ei"]), ("rei-rotate", ["loss.name=rei"]), "supervised"]},
        ],
        "gpu": RECON_GPU,
        "literature": [
            ("fastMRI ×4, G = 40: A†y / SSDU / MOI / supervised", "25.77 / 29.47 / 31.39 / 32.42 dB", "MOI paper [V]"),
            ("SSIBench Sc.3 (one operator): zero-filled / MC / SSDU / EI / supervised",
             "28.02 / 28.02 / 21.89 / 31.99 / 34.03 dB", "SSIBench README [V]"),
            ("SSIBench Sc.1 (a mask per image): zero-filled / SSDU / MOI / EI / supervised",
             "27.67 / 27.98 / 30.29 / 30.26 / 33.15 dB", "SSIBench README [V]"),
            ("SSIBench Sc.2 (noisy σ = 0.1): zero-filled / Robust-EI / supervised", "24.34 / 29.07 / 30.19 dB",
             "SSIBench README [V]"),
        ],
    },
    "ct": {
        "title": "Sparse-view CT",
        "parts": [
            {"key": "main", "config": "ct.yaml",
             "runs": ["mc", ("ei-rotate", ["loss.name=ei"]), ("rei-rotate", ["loss.name=rei"]), "supervised"]},
        ],
        "gpu": RECON_GPU + ["data.patch_size=128"],
        "literature": [
            ("FBP / MC / EI / supervised (CT100, 50 views, noiseless)", "28.83 / 30.29 / 35.64 / 36.92 dB", "EI paper figure [V]"),
            ("expected at small scale", "MC ≈ FBP + 1.5 dB, EI ≈ supervised − 1.3 dB", "anchors E10"),
        ],
    },
    "deblur": {
        "title": "Deblurring",
        "parts": [
            {"key": "main", "config": "deblur.yaml",
             "runs": ["mc", ("rei-scale", ["loss.name=rei"]), ("ei-scale", ["loss.name=ei", "loss.transform=scale"]),
                      ("rei-shift", ["loss.name=rei", "loss.transform=shift"]), "supervised"]},
        ],
        "gpu": RECON_GPU,
        "literature": [
            ("Blur is shift-equivariant", "shifts cannot help; scale changes can", "Sensing theorems, Part 4 slide 6 [V]"),
        ],
    },
    "sample_complexity": {
        "title": "Sample complexity",
        "parts": [
            {"key": "main", "config": "gaussian_ladder.yaml", "analysis": "curve", "set": ["data.patches_per_image=8"],
             "runs": [(f"{loss}@{n}", [f"loss.name={loss}", f"data.max_images={n}"])
                      for n in (4, 16, 64, 400) for loss in ("supervised", "sure")]},
        ],
        "gpu": DENOISING_GPU,
        "literature": [
            ("SURE vs supervised", "the gap shrinks with more data (SURE is unbiased; its variance averages out)", "tutorial Part 2"),
        ],
    },
}
