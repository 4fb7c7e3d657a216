import json

import nbformat

import pytest
import torch

import retune_lib as rt
from retune_lib import claims, notebook_runs, runner


def test_record_metrics_validates(capsys, monkeypatch):
    monkeypatch.setattr(rt.models, "_LAST_LOADED", None)  # no base loaded in this process: no base_weights row
    assert rt.record_metrics({"acc": 0.5, "name": "x", "n": 3, "t": torch.tensor(2.0)}) is None
    assert capsys.readouterr().out.split() == ["metric", "value", "acc", "0.5000", "name", "x", "n", "3", "t", "2.0000"]
    with pytest.raises(ValueError, match="non-finite"):
        rt.record_metrics({"loss": float("nan")})
    with pytest.raises(TypeError, match="must be a number, string or bool"):
        rt.record_metrics({"x": [1, 2]})
    with pytest.raises(ValueError, match="non-empty dict"):
        rt.record_metrics({})


def test_read_metrics_from_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={notebook_runs.METRICS_MIME: {"a": 1}, "text/plain": "a"})]
    cell2 = nbformat.v4.new_code_cell("y")
    cell2.outputs = [nbformat.v4.new_output("display_data", data={notebook_runs.METRICS_MIME: json.dumps({"a": 2, "b": 3})})]
    nb.cells = [cell, cell2]
    assert rt.read_metrics(nb) == {"a": 2, "b": 3}


def test_notebook_selection():
    all_paths = notebook_runs.notebook_paths()
    assert all_paths and all_paths[0].name.startswith("00_")
    assert notebook_runs.notebook_paths(["00"]) == [all_paths[0]]
    with pytest.raises(ValueError, match="no notebook matches \\['99'\\]"):
        notebook_runs.notebook_paths(["99"])


def test_cli(capsys):
    assert runner.main(["list"]) == 0
    assert "00_start_here" in capsys.readouterr().out
    assert runner.main(["run", "99"]) == 2
    assert "retune: no notebook matches" in capsys.readouterr().err
    assert runner._parse_value("[1, 2]") == [1, 2] and runner._parse_value("cuda") == "cuda"


def _tiny_notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('seed = 0\ndevice = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path))
    return path


def test_misspelt_parameter_name_is_refused_before_running(tmp_path, capsys):
    path = _tiny_notebook(tmp_path / "nb.ipynb", "x = 1")
    with pytest.raises(ValueError, match="nb has no parameter 'sede'; allowed: seed, device"):
        notebook_runs.run_notebook(path, tmp_path / "out", {"sede": 1})
    assert not (tmp_path / "out" / "nb.ipynb").exists()
    assert runner.main(["run", "01", "-p", "sede", "1"]) == 2
    assert "retune: 01_differentiable_transforms has no parameter 'sede'; allowed: seed, device" in capsys.readouterr().err


def test_stuck_cell_fails_fast_naming_the_cell(tmp_path, monkeypatch):
    path = _tiny_notebook(tmp_path / "stuck.ipynb", "import time\ntime.sleep(60)")
    monkeypatch.setenv("RETUNE_CELL_TIMEOUT", "3")
    run = notebook_runs.run_notebook(path, tmp_path / "out")
    assert run.status == "failed"
    assert run.error == "stuck: cell 1 (import time) ran over the 3 s cell timeout (stuck?)"
    monkeypatch.setenv("RETUNE_CELL_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="RETUNE_CELL_TIMEOUT must be a whole number of seconds"):
        notebook_runs.cell_timeout()


def test_claims_report_over_seeds_and_threads(tmp_path, monkeypatch):
    body = (
        "import retune_lib as rt\n"
        "seeds = rt.trial_seeds(seed, 3)\n"
        "a = rt.Trials('a', seeds, [1.0 + s % 7 / 100 for s in seeds])\n"
        "rt.claim('a is above one half', a, 0.5)\n"
        "rt.claim('a is above one', a, 1.0)\n"  # fails at seed 0 (values 1.00, 1.01, 1.02): recorded, not raised
    )
    path = _tiny_notebook(tmp_path / "claims.ipynb", body)
    jobs = claims.run_claims([str(path)], seeds=2, threads=[1], jobs=2, output_dir=tmp_path / "runs", echo=False)
    assert [(j.seed, j.threads, j.status) for j in jobs] == [(0, 1, "ok"), (1, 1, "ok")]
    assert [c["passed"] for c in jobs[0].claims] == [True, False]
    report = claims.claims_report(jobs, "retune claims test")
    assert "**Exploration: 1 of 2 claims passed in every run**; 2 of 2 notebook runs completed (1 thread(s): seeds 0–1, 2 runs)" in report
    assert "confirmation" not in report.split("## Claims that failed")[0]  # no held-out runs yet: no such columns
    assert "- claims, seed 0 (exploration), 1 thread(s): a is above one — mean" in report
    row = next(line for line in report.splitlines() if "a is above one half" in line)
    assert "| claims | a is above one half | lower end > 0 | 2/2 |" in row
    assert "| a is above one | lower end > 0 | 1/2 |" in report
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert [(j.seed, j.status, len(j.claims)) for j in loaded] == [(0, "ok", 2), (1, "ok", 2)] and stale == []
    again = claims.run_claims([str(path)], seeds=3, threads=[1], jobs=2, output_dir=tmp_path / "runs", echo=False)
    assert [j.seed for j in again] == [2]  # seeds 0 and 1 are recorded for this code: kept, not repeated
    again = claims.run_claims([str(path)], seeds=1, threads=[1], output_dir=tmp_path / "runs", echo=False, rerun=True)
    assert [j.seed for j in again] == [0]
    held_out = claims.run_claims([str(path)], seeds="10-11", threads=[1], output_dir=tmp_path / "runs", echo=False)
    assert [j.seed for j in held_out] == [10, 11]  # the confirmation seeds: a range
    loaded, _ = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    both = claims.claims_report(loaded, "retune claims test")
    assert "**Confirmation: " in both and "(1 thread(s): seeds 10–11, 2 runs)" in both
    assert "| exploration: passed | exploration: smallest slack | confirmation: passed |" in both
    assert "| claims | a is above one half | lower end > 0 | 3/3 |" in both and "| 2/2 |" in both
    monkeypatch.setattr(claims, "_base_key", lambda: "another")  # a new default base: every run is stale
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert loaded == [] and stale[0] == "claims seed 0 threads 1 (another base)"
    assert [j.seed for j in claims.run_claims([str(path)], seeds=1, threads=[1], output_dir=tmp_path / "runs",
                                              echo=False)] == [0]  # and is run again, not kept
    monkeypatch.undo()
    record = tmp_path / "runs" / "threads1" / "seed1" / "claims.json"  # written before runs recorded their base
    r = json.loads(record.read_text())
    del r["base"]
    record.write_text(json.dumps(r))
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])  # made on the print base, the default
    assert [j.seed for j in loaded] == [2, 10, 11] and "claims seed 1 threads 1 (another base)" in stale  # before #14
    _tiny_notebook(path, body + "# edited\n")  # a changed notebook: its old runs no longer count
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert loaded == [] and sorted(stale) == [f"claims seed {s} threads 1" for s in (0, 1, 10, 11, 2)]


def test_claims_records_name_the_shipped_weights(tmp_path, monkeypatch):
    """Each record names the base weights it ran on (the shipped file's short hash); the report names the file, and
    records made on other weights (an earlier shipped file, or a per-machine build before weights shipped) are stale."""
    from retune_lib import weights

    path = _tiny_notebook(tmp_path / "claims.ipynb", "import retune_lib as rt\nrt.claim('one is above zero', "
                          "rt.Trials('one', rt.trial_seeds(seed, 3), [1.0, 1.0, 1.0]), 0.0)\n")
    jobs = claims.run_claims([str(path)], seeds=1, threads=[1], output_dir=tmp_path / "runs", echo=False)
    assert jobs[0].build == rt.BASE_WEIGHTS.short
    record = json.loads((tmp_path / "runs" / "threads1" / "seed0" / "claims.json").read_text())
    assert record["base"] == rt.BASE_WEIGHTS.short and "base_build" not in record
    report = claims.claims_report(jobs, "retune claims test")
    assert (f"pretrained base: the shipped weights `{rt.BASE_WEIGHTS.file}` (sha256 `{rt.BASE_WEIGHTS.short}`, "
            f"source accuracy {rt.BASE_WEIGHTS.meta['source_accuracy']:.3f})") in report
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert len(loaded) == 1 and stale == []
    other = weights.Weights(file="base_mnist-00000000.pt", sha256="0" * 64, recipe={}, meta={"source_accuracy": 0.5})
    monkeypatch.setattr(weights, "BASE_WEIGHTS", other)  # new weights shipped: every earlier run is stale
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert loaded == [] and stale == ["claims seed 0 threads 1 (another base)"]
    monkeypatch.undo()
    record.pop("base")  # a record from before runs named their base
    (tmp_path / "runs" / "threads1" / "seed0" / "claims.json").write_text(json.dumps(record))
    loaded, stale = claims.load_claims_runs(tmp_path / "runs", [str(path)])
    assert loaded == [] and stale == ["claims seed 0 threads 1 (another base)"]


def test_channel_waits_are_sliced_so_a_lost_wakeup_costs_one_slice(monkeypatch):
    """A kernel channel's get_msg never waits longer than one slice: a reply whose zmq wake-up was lost is picked up
    by the next slice's real poll (it used to cost the whole 240 s cell timeout)."""
    import asyncio
    from queue import Empty
    from types import SimpleNamespace

    class Channel:
        def __init__(self, ready_after, clock=None):
            self.calls, self.ready_after, self.clock = [], ready_after, clock

        async def get_msg(self, timeout=None):
            self.calls.append(timeout)
            if len(self.calls) > self.ready_after:
                return {"msg": "reply"}
            if self.clock is None:
                await asyncio.sleep(timeout)
            else:  # a wait that times out moves the runner's clock on by the timeout, in no time
                self.clock.now += timeout
            raise Empty

    kc = SimpleNamespace(shell_channel=Channel(ready_after=2), iopub_channel=Channel(ready_after=0))
    notebook_runs.short_channel_waits(kc, step=0.01)
    notebook_runs.short_channel_waits(kc, step=0.01)  # wrapping twice changes nothing
    assert asyncio.run(kc.shell_channel.get_msg(timeout=240)) == {"msg": "reply"}
    assert kc.shell_channel.calls == [0.01, 0.01, 0.01]  # two empty slices, then the reply
    assert asyncio.run(kc.iopub_channel.get_msg(timeout=None)) == {"msg": "reply"}
    assert kc.iopub_channel.calls == [0.01]  # "wait forever" is sliced too

    # the overall timeout still holds: slices until it is spent, the last one cut to what is left, then Empty
    # (the runner reads a fake clock that only the waits move: no wall time is measured)
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(notebook_runs, "time", SimpleNamespace(monotonic=lambda: clock.now))
    never = SimpleNamespace(shell_channel=Channel(ready_after=10**9, clock=clock), iopub_channel=Channel(ready_after=0))
    notebook_runs.short_channel_waits(never, step=0.25)
    with pytest.raises(Empty):
        asyncio.run(never.shell_channel.get_msg(timeout=0.625))
    assert never.shell_channel.calls == [0.25, 0.25, 0.125] and clock.now == 1000.625


def test_papermill_runs_use_the_sliced_channel_waits(tmp_path, monkeypatch):
    """The runner's papermill client really slices its kernel waits (an override papermill never calls would not)."""
    calls = []
    original = notebook_runs.short_channel_waits

    def spy(kc, *args, **kwargs):
        calls.append(kc)
        return original(kc, *args, **kwargs)

    monkeypatch.setattr(notebook_runs, "short_channel_waits", spy)
    path = _tiny_notebook(tmp_path / "tiny.ipynb", "x = seed + 1\n")
    run = notebook_runs.run_notebook(path, tmp_path / "out", {"seed": 2})
    assert run.status == "ok", run.error
    assert len(calls) == 1
    assert getattr(calls[0].shell_channel.get_msg, "sliced", False) and getattr(calls[0].iopub_channel.get_msg, "sliced", False)


def test_then_runs_a_solution_in_the_notebooks_namespace(tmp_path, capsys):
    path = _tiny_notebook(tmp_path / "nb.ipynb", "x = seed + 1\n")
    before = path.read_text()
    solution = tmp_path / "solution.py"
    solution.write_text("import retune_lib as rt\nrt.record_metrics({'answer': x * 10})\n")
    run = notebook_runs.run_notebook(path, tmp_path / "out", {"seed": 2}, then=[solution])
    assert run.status == "ok", run.error
    assert run.metrics["answer"] == 30                          # the solution saw the notebook's `x`
    assert path.read_text() == before                           # the notebook itself is unchanged
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nb.ipynb"]  # no copy left beside it
    cells = nbformat.read(str(run.output), as_version=4).cells
    assert "solution" in cells[-1].metadata["tags"] and str(solution) in cells[-1].source
    with pytest.raises(ValueError, match="--then takes existing .py files"):
        notebook_runs.run_notebook(path, tmp_path / "out", then=[tmp_path / "missing.py"])
    assert runner.main(["run", "00", "01", "--then", str(solution)]) == 2
    assert "--then runs a solution after one notebook; 2 notebooks were selected" in capsys.readouterr().err


def test_every_solution_file_names_its_notebook():
    solutions = sorted((notebook_runs.notebooks_dir() / "solutions").glob("*.py"))
    assert solutions
    stems = {p.stem[:2] for p in notebook_runs.notebook_paths()}
    for f in solutions:
        assert f.stem[:2] in stems and "_exercise_" in f.stem, f.name
        assert f"retune run {f.stem[:2]} --then notebooks/solutions/{f.name}" in f.read_text(), f.name


def test_claims_seeds_are_a_count_or_a_range():
    assert claims.parse_seeds(10) == list(range(10)) and claims.parse_seeds("10") == list(range(10))
    assert claims.parse_seeds("10-19") == list(range(10, 20)) and claims.parse_seeds([3, 1, 3]) == [1, 3]
    for bad in ("19-10", "ten", "1-2-3", [], 0, -1):
        with pytest.raises(ValueError):
            claims.parse_seeds(bad)
    assert runner.main(["claims", "--seeds", "9-1", "--report-only"]) == 2  # one line, no traceback


def test_executed_copies_get_the_lessons_figures(tmp_path):
    """The lessons link figures/*.svg from their markdown: the executed copies in runs/ show them too."""
    nb_dir = tmp_path / "nbs"
    (nb_dir / "figures").mkdir(parents=True)
    (nb_dir / "figures" / "x.svg").write_text("<svg/>")
    path = _tiny_notebook(nb_dir / "nb.ipynb", "x = 1")
    run = notebook_runs.run_notebook(path, tmp_path / "out")
    assert run.status == "ok" and (tmp_path / "out" / "figures" / "x.svg").read_text() == "<svg/>"
