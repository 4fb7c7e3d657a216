"""Every notebook in notebooks/ is covered automatically: structure, and a papermill run with parameters.

nbval (``--nbval-lax``, from pyproject's addopts) executes the notebooks at their defaults, where every
claim must hold. The papermill run here (and the browser test's Run All) use each notebook's small
``smoke_parameters`` at another seed: they check that the code and its parameters work, quickly. Whether
the claims hold at other seeds is the claims report's job (``retune claims``: twenty seeds, committed in
reports/claims.md). That the same seed gives the same numbers is checked where it is cheap
(tests/test_training.py runs training in two fresh processes).
"""

import json
import math

import nbformat
import pytest

from conftest import NOTEBOOKS, smoke_parameters
from retune_lib import runner
from retune_lib.trials import read_claims

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
ids = [p.stem for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_clean(path):
    raw = json.loads(path.read_text())
    assert raw["metadata"].get("kernelspec") == KERNELSPEC
    info = raw["metadata"].get("language_info", {})  # without it JupyterLab opens the notebook as modified
    assert info.get("name") == "python" and info.get("version"), "metadata.language_info must name Python and its version"
    assert "widgets" not in raw["metadata"], "widget state must not be committed"
    for i, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {i} has stored outputs"
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = tagged[0].source
    assert "seed = 0" in src and 'device = "auto"' in src
    import ast

    for node in ast.parse(src).body:  # literals only: papermill injects values after this cell
        assert isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp)), (
            f"parameters cell must assign literals only: {ast.unparse(node)}"
        )
    after = nb.cells[nb.cells.index(tagged[0]) + 1]
    # the next cell validates the parameters and seeds everything (rt.start does both, or the older three calls)
    started = "rt.start(seed, device, n_seeds)" in after.source
    assert started or ("rt.seed_everything(seed)" in after.source and "rt.select_device" in after.source), (
        "the next cell checks the parameters and seeds everything, so a run is reproducible")
    assert "n_seeds = " in src and (started or "rt.trial_seeds(seed, n_seeds)" in after.source), (
        "comparisons run over several paired seeds: n_seeds in the parameters, their trial seeds in the next cell"
    )
    smoke_parameters(path)  # present, and every name one the parameters cell defines


@pytest.fixture(scope="module")
def warm_base():
    """Build (or load) the pretrained base once, so a notebook's wall time is its own, not the one-off build."""
    import retune_lib as rt

    return rt.load_base("cpu", progress=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_papermill_with_parameters(path, tmp_path, warm_base, record_property, monkeypatch):
    """papermill at another seed with the smoke parameters: every cell runs, the metrics are recorded and
    every claim is computed (recorded, not asserted: see :func:`smoke_parameters`).

    Wall time is reported, not asserted (a stuck cell fails through the runner's per-cell timeout).
    """
    monkeypatch.setenv("RETUNE_CLAIMS", "record")  # the kernel inherits it: a claim prints and records, never raises
    run = runner.run_notebook(path, tmp_path, smoke_parameters(path))
    record_property("papermill_seconds", run.seconds)
    assert run.status == "ok", run.error
    assert run.metrics, "the notebook must record its key metrics with rt.record_metrics"
    claims = read_claims(run.output)
    nb = nbformat.read(path, as_version=4)
    if any("rt.claim(" in c.source for c in nb.cells if c.cell_type == "code"):
        assert claims, "the notebook's claims must be computed and recorded"
    for c in claims:
        assert {"claim", "passed", "mean", "lo", "hi", "n"} <= set(c) and c["n"] >= 3, c
    for key, value in run.metrics.items():
        if isinstance(value, float):  # accuracies are floats; counts such as scratch_epochs are ints
            assert math.isfinite(value), key
            if "acc" in key or key.startswith(("pretrained_", "scratch_")):
                assert 0.0 <= value <= 1.0, (key, value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_bad_parameter_is_one_clear_line(path, tmp_path):
    run = runner.run_notebook(path, tmp_path, {"device": "gpu"})
    assert run.status == "failed"
    assert run.error == "ValueError: device='gpu' is not supported; allowed: 'auto', 'cpu', 'cuda', 'mps'"


# --- the lessons' prose speaks to a learner (#27) ---------------------------------------------------------------

#: Words about how the workbook was made, not about the technique: they belong in reports/ and commit messages.
PROCESS_WORDS = ("claims report", "build of the base", "notebook seed", "our runs", "earlier version", "earlier base",
                 "reported", "not claimed")
MAX_PROSE_WORDS = 1600
OPENING_LABELS = ("**Situation:**", "**You will learn:**", "**Short answer:**")


def _sections(path):
    """{level-2 heading: its markdown text} and the markdown cells, from the notebook at ``path``."""
    import re

    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "markdown"]
    text = "\n\n".join(cells)
    parts = re.split(r"(?m)^## +", text)
    return {p.splitlines()[0].strip(): p for p in parts[1:]}, cells


def prose_words(path) -> int:
    """Words of markdown prose: fenced code blocks and the References section do not count."""
    import re

    _, cells = _sections(path)
    text = re.sub(r"```.*?```", " ", "\n\n".join(cells), flags=re.S)
    text = re.sub(r"(?ms)^## References.*?(?=^## |\Z)", " ", text)
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", text))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_prose_speaks_to_the_learner(path):
    import re

    sections, cells = _sections(path)
    lower = "\n".join(cells).lower()
    found = [w for w in PROCESS_WORDS if w in lower]
    assert not found, f"{path.stem}: process words in the lesson's prose: {found}"
    assert all(label in cells[0] for label in OPENING_LABELS), (
        f"{path.stem}: the first cell opens with the box {OPENING_LABELS}")
    words = prose_words(path)
    assert words <= MAX_PROSE_WORDS, f"{path.stem}: {words} words of prose (at most {MAX_PROSE_WORDS})"
    for name in ("Summary", "Exercises", "References"):
        assert name in sections, f"{path.stem}: no '## {name}' section"
    bullets = [ln for ln in sections["Summary"].splitlines() if ln.startswith(("* ", "- "))]
    assert 3 <= len(bullets) <= 5, f"{path.stem}: the Summary has {len(bullets)} bullets (3 to 5)"
    assert not re.search(r"\d\.\d|\d%", sections["Summary"]), f"{path.stem}: numbers in the Summary"
    exercises = re.findall(r"(?m)^\d+\. ", sections["Exercises"])
    assert exercises and sections["Exercises"].count("<details>") >= len(exercises), (
        f"{path.stem}: every exercise's outcome sits in a collapsed <details> block")


# --- a conceptual figure per lesson, drawn by docs/figures.py (#27) ---------------------------------------------

FIGURES_DIR = NOTEBOOKS[0].parent / "figures"
FIGURES_SCRIPT = NOTEBOOKS[0].parent.parent / "docs" / "figures.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_lesson_shows_a_conceptual_figure(path):
    """Every lesson shows at least one committed figure from notebooks/figures/ in its markdown."""
    import re

    _, cells = _sections(path)
    refs = re.findall(r"!\[[^\]]*\]\((figures/[^)\s]+\.svg)\)", "\n".join(cells))
    assert refs, f"{path.stem}: no ![...](figures/*.svg) in the lesson's markdown"
    missing = [r for r in refs if not (path.parent / r).is_file()]
    assert not missing, f"{path.stem}: figures referenced but not committed: {missing}"


def test_figures_regenerate_byte_identical(tmp_path):
    """`python docs/figures.py` rewrites notebooks/figures/ byte for byte: the committed SVGs are the code's.

    SVG output changes between matplotlib releases (the version is in each file's metadata), so on another
    matplotlib the comparison is skipped, with the command that regenerates them.
    """
    import importlib.util
    import re

    import matplotlib

    spec = importlib.util.spec_from_file_location("retune_docs_figures", FIGURES_SCRIPT)
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    written = figures.main(tmp_path)
    committed = sorted(p.name for p in FIGURES_DIR.glob("*.svg"))
    assert sorted(p.name for p in written) == committed, "notebooks/figures/ holds exactly what docs/figures.py writes"
    made_with = {re.search(rb"Matplotlib v([^,<]+)", (FIGURES_DIR / n).read_bytes()).group(1).decode() for n in committed}
    if made_with != {matplotlib.__version__}:
        pytest.skip(f"figures made with matplotlib {made_with}, this is {matplotlib.__version__}: "
                    "run `python docs/figures.py` to regenerate them")
    changed = [n for n in committed if (tmp_path / n).read_bytes() != (FIGURES_DIR / n).read_bytes()]
    assert not changed, f"regenerated figures differ from the committed ones: {changed} (run `python docs/figures.py`)"


# --- one idea per cell, plumbing out of sight (#27 item 3) ------------------------------------------------------

MAX_CELL_LINES = 35          # "about 30": a cell the reader takes in at once


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_code_cells_are_short_and_plumbing_hidden(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(code) if len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"{path.stem}: code cells over {MAX_CELL_LINES} lines (index, lines): {long}"
    setup = code[1].source
    assert "rt.start(seed, device, n_seeds)" in setup, f"{path.stem}: the setup cell starts with rt.start"
    own_check = [c.source for c in code if "n_seeds < 3" in c.source]
    assert not own_check, f"{path.stem}: checks n_seeds itself (rt.start does)"
    results = [c for c in code if "rt.record_metrics(" in c.source]
    assert len(results) == 1 and results[0].metadata.get("jupyter", {}).get("source_hidden"), (
        f"{path.stem}: the results cell's source is collapsed (metadata.jupyter.source_hidden)")
