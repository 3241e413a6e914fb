"""check (the advisor), compare (results.json schema) and demo (--quick, made even smaller)."""

from __future__ import annotations

import json

from tests.cli.common import assert_one_line_error, run, tiny_denoising, write_yaml

RUN_KEYS = {"loss", "psnr", "ssim", "val_loss", "steps", "train_seconds", "step_seconds_median",
            "network_evals_per_step", "network_evals_counted", "test_seconds_per_image", "error"}


def test_check_mri_shifts_versus_rotations(tmp_path):
    cfg = tmp_path / "mri.yaml"
    assert run("config", "init", "--task", "mri", "-o", cfg).exit_code == 0
    r = run("check", cfg, "--size", "16", "--transform", "shift", "--transform", "{name: rotate, n: 4}")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "MRI with Shift(): rank" in out and "do not help (MRI is equivariant to them)" in out
    assert "MRI with Rotate(n=4): rank" in out and "(up from" in out
    assert "Operator family: rank 256/256" in out
    assert "✓ sure" in out and "✗ noise2self: defined for denoising (A = I) only" in out
    assert "Configured loss: sure + ei — applies" in out


def test_compare_writes_the_results_schema(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising())
    out = tmp_path / "cmp"
    r = run("compare", cfg, "--losses", "sure,r2r", "--out", out, "--steps", "2")
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert [run_["loss"] for run_ in res["runs"]] == ["sure", "r2r"]
    for entry in res["runs"]:
        assert RUN_KEYS <= set(entry) and entry["error"] is None
        assert entry["steps"] == 2 and entry["psnr"] > 0 and 0 < entry["ssim"] <= 1
        assert entry["network_evals_per_step"] == entry["network_evals_counted"]
        assert entry["train_seconds"] > 0 and entry["test_seconds_per_image"] > 0
    assert res["runs"][0]["network_evals_per_step"] == 2  # SURE: f(y) and f(y + tau b)
    assert set(res["baseline"]) == {"psnr", "ssim"} and res["baseline"]["psnr"] > 0
    assert {"cpu", "threads", "torch"} <= set(res["machine"])
    assert res["config"]["physics"]["name"] == "denoising"
    md = (out / "results.md").read_text()
    assert "| sure |" in md and "| val loss |" not in md
    assert "its own val loss¹" in md and "does not rank the rows" in md  # losses in different units are not compared
    assert (out / "comparison.png").stat().st_size > 0
    assert_one_line_error(run("compare", cfg, "--losses", "sure", "--out", out), "not empty")


def test_compare_records_a_failing_loss_and_continues(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising())
    r = run("compare", cfg, "--losses", "noise2noise,sure", "--out", tmp_path / "cmp", "--steps", "1")
    assert r.exit_code == 1  # not every loss worked ...
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())  # ... but everything is written
    assert res["runs"][0]["error"] and res["runs"][0]["psnr"] is None
    assert res["runs"][0]["run_dir"] is None and not (tmp_path / "cmp" / "runs" / "noise2noise").exists()  # no dead run
    assert res["runs"][1]["error"] is None and res["runs"][1]["psnr"] > 0
    assert_one_line_error(run("compare", cfg, "--losses", "sure,sur", "--out", tmp_path / "x"), "'sur'")


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    r = run("demo", "--quick", "--out", out, "--steps", "3", "--test-size", "32", "--test-images", "camera,coins")
    assert r.exit_code == 0, r.stderr
    assert "noisy (no learning)" in r.stdout and "sure (self-supervised)" in r.stdout and "supervised (reference)" in r.stdout
    for name in ("report.md", "results.json", "comparison.png", "runs/sure/curves.png", "runs/supervised/report.md"):
        assert (out / name).is_file(), name
    assert_one_line_error(run("demo", "--quick", "--out", out), "not empty")


def test_compare_variants_override_the_base_config_and_rebuild_the_data(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_denoising())
    out = tmp_path / "cmp"
    r = run("compare", cfg, "--losses", "sure", "--out", out, "--steps", "1",
            "--variant", "sure-quiet=data.true_noise={name: gaussian, sigma: 0.02}",
            "--variant", "mc-one-test=loss.name=mc;data.max_test_images=1")
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    runs = {x["loss"]: x for x in res["runs"]}
    assert list(runs) == ["sure", "sure-quiet", "mc-one-test"]
    assert runs["sure-quiet"]["overrides"] == ["data.true_noise={name: gaussian, sigma: 0.02}"]
    # the data were re-simulated with less noise: the no-learning baseline is much better
    assert runs["sure-quiet"]["baseline"]["psnr"] > runs["sure"]["baseline"]["psnr"] + 10
    assert runs["mc-one-test"]["network_evals_per_step"] == 1  # the variant's loss, not the base config's
    assert (out / "runs" / "mc-one-test").is_dir()
    assert_one_line_error(run("compare", cfg, "--variant", "nolabel", "--out", tmp_path / "x"), "LABEL=KEY=VALUE")
    assert_one_line_error(run("compare", cfg, "--out", tmp_path / "y"), "--losses and/or --variant")
    assert_one_line_error(run("compare", cfg, "--losses", "sure", "--variant", "sure=loss.name=mc",
                              "--out", tmp_path / "z"), "given twice")
    assert_one_line_error(run("compare", cfg, "--variant", "a/b=loss.name=mc", "--out", tmp_path / "w"), "names a folder")
