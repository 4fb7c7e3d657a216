import json

import nbformat
import pytest
import torch

import retune_lib as rt
from retune_lib import runner


def test_record_metrics_validates(capsys):
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
    cell.outputs = [nbformat.v4.new_output("display_data", data={runner.METRICS_MIME: {"a": 1}, "text/plain": "a"})]
    cell2 = nbformat.v4.new_code_cell("y")
    cell2.outputs = [nbformat.v4.new_output("display_data", data={runner.METRICS_MIME: json.dumps({"a": 2, "b": 3})})]
    nb.cells = [cell, cell2]
    assert rt.read_metrics(nb) == {"a": 2, "b": 3}


def test_notebook_selection():
    all_paths = runner.notebook_paths()
    assert all_paths and all_paths[0].name.startswith("00_")
    assert runner.notebook_paths(["00"]) == [all_paths[0]]
    with pytest.raises(ValueError, match="no notebook matches \\['99'\\]"):
        runner.notebook_paths(["99"])


def test_cli(capsys):
    assert runner.main(["list"]) == 0
    assert "00_start_here" in capsys.readouterr().out
    assert runner.main(["run", "99"]) == 2
    assert "retune: no notebook matches" in capsys.readouterr().err
    assert runner._parse_value("[1, 2]") == [1, 2] and runner._parse_value("cuda") == "cuda"
