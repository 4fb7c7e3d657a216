"""The base benchmark (benchmarks/base_benchmark.py) runs end to end on a tiny base, and keeps scratch's results."""

from __future__ import annotations

import doctest
import importlib.util
import json
import pathlib
import random

import numpy as np
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = {"n_glyphs": 512, "epochs": 1, "widths": [4, 4, 8, 8], "batch_size": 128}  # a base built in a second


@pytest.fixture(autouse=True)
def _global_rngs_untouched():
    """The benchmark reseeds the global RNGs (rt.fit does); later tests on this worker get theirs back."""
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        yield
    random.setstate(py)
    np.random.set_state(np_state)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("base_benchmark", ROOT / "benchmarks" / "base_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scratch_equivalent_doctest(bench):
    result = doctest.testmod(bench)
    assert result.attempted > 0 and result.failed == 0
    assert bench.scratch_equivalent([1, 10], [0.5, 0.9], 0.4) == 1.0      # already reached at the smallest k
    assert bench.scratch_equivalent([1, 10], [0.5, 0.9], 0.95) is None    # never reached


def test_tiny_run_reports_every_arm_and_reuses_scratch(bench, tmp_path, monkeypatch):
    # main() points RETUNE_CACHE at --cache; monkeypatch puts the session's value back after the test
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "base"))
    scratch_file, out = tmp_path / "scratch.json", tmp_path / "report.md"
    args = ["--seeds", "3", "--k", "1", "2", "--ft-lrs", "1e-3", "--ft-steps", "2", "--scratch-lrs", "1e-3",
            "--scratch-steps", "2", "--probe-lrs", "1e-2", "--probe-steps", "2", "--fixed-steps", "3",
            "--recipe", json.dumps(TINY), "--cache", str(tmp_path / "base"), "--scratch-cache", str(scratch_file),
            "--out", str(out)]
    assert bench.main(args) == 0
    report = out.read_text()
    for arm in ("probe, tuned", "fine-tune, tuned", "rows probe, tuned", "rows fine-tune, tuned",
                "chosen on validation", "scratch, tuned"):
        assert arm in report, arm
    assert "Zero-shot on the test digits" in report
    kept = json.loads(scratch_file.read_text())
    assert len(kept) == 6  # 2 values of k x 3 seeds
    # a second run reads scratch from the file instead of training it: mark the kept results and look for the mark
    for r in kept.values():
        r["tuned"] = 0.123
    scratch_file.write_text(json.dumps(kept))
    assert bench.main(args) == 0
    assert "| 0.123 ± 0.000 (3) |" in out.read_text()


def test_probe_only_screens_without_a_report(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "base"))
    out = tmp_path / "report.md"
    assert bench.main(["--probe-only", "--seeds", "3", "--k", "1", "--probe-lrs", "1e-2", "--probe-steps", "2",
                       "--recipe", json.dumps(TINY), "--cache", str(tmp_path / "base"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rows probe" in printed and "zero-shot on the test digits" in printed
    assert not out.exists()


def test_shipped_weights_are_benchmarked_without_a_build(bench, tmp_path, monkeypatch, capsys):
    import retune_lib as rt
    from retune_lib import models

    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "base"))
    monkeypatch.setattr(models, "build_base", lambda *a, **kw: pytest.fail("--shipped must not build a base"))
    assert bench.main(["--shipped", "--probe-only", "--seeds", "3", "--k", "1", "--probe-lrs", "1e-2", "--probe-steps",
                       "2", "--cache", str(tmp_path / "base"), "--out", str(tmp_path / "r.md")]) == 0
    printed = capsys.readouterr().out
    assert f"the shipped weights** `{rt.BASE_WEIGHTS.file}`" in printed and f"shipped weights {rt.BASE_WEIGHTS.meta['build_seconds']:.1f} s" in printed
    with pytest.raises(SystemExit):
        bench.main(["--shipped", "--recipe", json.dumps(TINY)])
