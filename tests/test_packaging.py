"""environment.yml and pyproject.toml must not drift; the README's commands must exist."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _conda_deps():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return conda, pip


def test_environment_installs_the_project_from_pyproject():
    conda, pip = _conda_deps()
    # conda provides only python and pip; every library comes from pyproject.toml through "-e .[dev]"
    assert sorted(re.split(r"[<>=]", c)[0] for c in conda) == ["pip", "python"], conda
    assert pip == ["-e .[dev]"], pip
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    for needed in ("torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets", "papermill", "scikit-learn", "tqdm"):
        assert needed in declared, needed
    dev = {re.split(r"[<>=!~ ]", d)[0].lower() for d in project["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval"} <= dev


def test_python_version_agrees():
    conda, _ = _conda_deps()
    conda_py = re.search(r"python=(\d+)\.(\d+)", " ".join(conda))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    low = re.search(r">=(\d+)\.(\d+)", project["requires-python"])
    assert conda_py and low and tuple(map(int, conda_py.groups())) >= tuple(map(int, low.groups()))


def test_torch_never_newer_than_tested():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(d for d in deps if d.startswith("torch") and not d.startswith("torchvision"))
    assert "<=2.14.1" in torch


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
