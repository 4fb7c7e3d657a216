"""benchmarks/widget_latency.py prints each notebook's slowest widget panel against the goal."""

from __future__ import annotations

import importlib.util
import json

from conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("widget_latency", ROOT / "benchmarks" / "widget_latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratio_to_the_goal_and_exit_status(tmp_path, monkeypatch, capsys):
    bench = _bench()
    monkeypatch.setattr(bench, "MEASURED", tmp_path)
    assert bench.main([]) == 2 and "nothing measured" in capsys.readouterr().out
    for name, lat in (("01_a", [0.5, 1.0]), ("02_b", [3.0])):
        (tmp_path / f"{name}.json").write_text(json.dumps({"notebook": name, "run_all_seconds": 9.0,
                                                           "latencies_seconds": lat, "load": 0.5, "cores": 2}))
    assert bench.main([]) == 1
    out = capsys.readouterr().out
    assert "01_a" in out and " 0.50 " in out and "02_b" in out and " 1.50 " in out and "1 notebook(s) over the goal" in out
    assert bench.main(["--goal", "4"]) == 0 and "every panel within its goal" in capsys.readouterr().out
