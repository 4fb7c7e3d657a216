"""The notebooks as users meet them: JupyterLab in a real (headless) Chromium, Run All, then the widgets moved.

Marked ``browser``: ``pytest -m browser`` runs only this, ``-m "not browser"`` skips it. It needs Chromium
(Debian's ``chromium`` package, or ``RETUNE_CHROMIUM=/path/to/chrome``) and the ``playwright`` package
(a test extra); without either it is skipped with one line saying which is missing.

For each notebook: JupyterLab on 127.0.0.1 over a temporary copy of ``notebooks/``, each copy with its
smoke parameters injected after the parameters cell as papermill does (``metadata.retune.smoke_parameters``:
small budgets, so Run All takes seconds, and claims recorded instead of raised: whether they hold is nbval's
and the claims report's job; this test is about what only a browser shows). The notebook opens with the
"Python 3" kernel and no dialog; Run All finishes with no error output and no "Error displaying widget";
then one control of each widget panel is moved and the panel's output must change (within 30 s, a stuck
widget). How fast it changed is printed, written to ``runs/browser/NOTEBOOK.json`` and compared with its
goal by ``benchmarks/widget_latency.py`` (a latency under load is a measurement, not a failure).
A screenshot per notebook lands in ``runs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, smoke_parameters

pytestmark = pytest.mark.browser
# RETUNE_BROWSER_NOTEBOOKS points the test at another folder of notebooks (handy when writing one)
NB_DIR = pathlib.Path(os.environ.get("RETUNE_BROWSER_NOTEBOOKS", ROOT / "notebooks"))
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))

TOKEN = "retune-browser-test"
RUN_ALL_TIMEOUT_S = 300
WIDGET_STUCK_S = 30.0
SCREENSHOTS = ROOT / "runs" / "screenshots"
LATENCIES = ROOT / "runs" / "browser"   # one JSON per notebook: benchmarks/widget_latency.py reads them
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("RETUNE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium"), shutil.which("google-chrome")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback over a copy of the notebooks; stopped (with its kernels) afterwards."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("browser test skipped: no Chromium found (apt-get install chromium, or set RETUNE_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser test skipped: the playwright package is not installed (pip install -e '.[dev]')")
    home = tmp_path_factory.mktemp("lab")
    work = home / "notebooks"
    shutil.copytree(NB_DIR, work)
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    for path in NOTEBOOKS:  # the smoke parameters, injected as papermill does (a cell tagged injected-parameters)
        nb = parameterize_notebook(load_notebook_node(str(path)), smoke_parameters(path), kernel_name="python3",
                                   language="python")
        nbformat.write(nb, str(work / path.name))
    settings = home / "settings"
    # JupyterLab 4 draws only the cells in view; draw them all so every output can be inspected. No news prompt.
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=os.environ.get("JUPYTER_DATA_DIR", str(pathlib.Path(sys.prefix) / "share" / "jupyter")),
               PYTHONUNBUFFERED="1", RETUNE_CLAIMS="record")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={work}", "--allow-root",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True"]
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    import urllib.request

    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start: {(home / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield {"url": url, "browser": browser, "work": work}
        finally:
            browser.close()
            try:  # shut down kernels, then the server process group
                req = urllib.request.Request(f"{url}/api/shutdown?token={TOKEN}", method="POST")
                urllib.request.urlopen(req, timeout=5)
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                os.killpg(proc.pid, 9)
            log.close()


# JavaScript run in the page: the open notebook's state, from JupyterLab's own model (exposed by
# --LabApp.expose_app_in_browser).
STATE_JS = """() => {
  if (!window.jupyterapp) return null;  // the page is still loading
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext) return null;
  const s = w.sessionContext;
  const cells = [];
  for (const c of w.content.widgets) {
    if (c.model.type !== 'code') continue;
    const outs = c.model.outputs.toJSON();
    cells.push({count: c.model.executionCount, errors: outs.filter(o => o.output_type === 'error')
                .map(o => o.ename + ': ' + o.evalue)});
  }
  const k = s.session && s.session.kernel;
  return {kernel: s.kernelDisplayName, status: k ? k.status : 'none', cells,
          dirty: w.context.model.dirty};
}"""


def _state(page):
    return page.evaluate(STATE_JS)


def _wait(predicate, timeout, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def _panel_text(panel) -> str:
    return panel.locator(".widget-output, .jp-OutputArea-output").all_inner_texts().__str__()


def _check_in_jupyterlab(lab, path, record_property):
    page = lab["browser"].new_page(viewport={"width": 1400, "height": 1000})
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{lab['url']}/lab/tree/{path.name}?token={TOKEN}&reset")
        state = _wait(lambda: (s := _state(page)) and s["status"] == "idle" and s, 90)
        assert state, f"{path.stem}: the notebook or its kernel did not come up within 90 s"
        assert state["kernel"] == "Python 3", f"{path.stem}: kernel {state['kernel']!r}"
        assert page.locator(".jp-Dialog").count() == 0, f"{path.stem}: a dialog opened: {page.locator('.jp-Dialog').inner_text()}"
        committed = json.loads(path.read_text())["metadata"].get("language_info", {}).get("version")
        if committed == platform.python_version():  # JupyterLab rewrites language_info from the running kernel
            assert not state["dirty"], f"{path.stem}: opens marked as modified (metadata.language_info incomplete?)"
        t0 = time.perf_counter()
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        done = _wait(lambda: (s := _state(page)) and s["status"] == "idle" and all(c["count"] for c in s["cells"])
                     and s, RUN_ALL_TIMEOUT_S)
        run_all = time.perf_counter() - t0
        state = done or _state(page)
        errors = [e for c in state["cells"] for e in c["errors"]]
        assert done and not errors, f"{path.stem}: Run All {'stopped at' if errors else 'did not finish'}: {errors[:2]}"
        assert page.get_by_text("Error displaying widget").count() == 0, f"{path.stem}: a widget failed to display"
        panels = page.locator(".widget-interact")
        latencies = []
        for i in range(panels.count()):
            panel = panels.nth(i)
            panel.scroll_into_view_if_needed()
            before = _panel_text(panel)
            t1 = time.perf_counter()
            if panel.locator(".widget-slider .noUi-handle").count():
                handle = panel.locator(".widget-slider .noUi-handle").first
                handle.focus()
                handle.press("ArrowRight")
            elif panel.locator("select").count():
                select = panel.locator("select").first
                current = select.evaluate("s => s.selectedIndex")
                options = select.locator("option").count()
                select.select_option(index=(current + 1) % options)  # the next option, whichever is selected
            else:
                continue
            changed = _wait(lambda: _panel_text(panel) != before, WIDGET_STUCK_S, step=0.05)
            latency = time.perf_counter() - t1
            assert changed, f"{path.stem}: widget panel {i} did not respond within {WIDGET_STUCK_S:g} s"
            latencies.append(latency)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"), full_page=False)
        print(f"{path.stem}: Run All {run_all:.1f} s; widget latency "
              + (", ".join(f"{x:.2f} s" for x in latencies) if latencies else "(no panel)"))
        record_property("browser_run_all_seconds", run_all)
        if latencies:
            record_property("widget_latency_seconds", max(latencies))
        assert latencies, f"{path.stem}: no widget panel found to move"
        LATENCIES.mkdir(parents=True, exist_ok=True)
        tmp = LATENCIES / f".{path.stem}.json.tmp"
        tmp.write_text(json.dumps({"notebook": path.stem, "run_all_seconds": run_all, "latencies_seconds": latencies,
                                   "load": os.getloadavg()[0], "cores": os.cpu_count()}))
        os.replace(tmp, LATENCIES / f"{path.stem}.json")
        real = [e for e in console_errors if "favicon" not in e]
        assert not real, f"{path.stem}: browser console errors: {real[:3]}"
    finally:
        try:  # shut the notebook's kernel down: a kernel left behind keeps a core busy for the next notebook
            page.evaluate("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                          " if (!w || !w.sessionContext) return null;"
                          " return Promise.race([w.sessionContext.shutdown(), new Promise(r => setTimeout(r, 5000))]); }")
        except Exception:  # noqa: BLE001 - the page may be gone already; the server's shutdown reaps the rest
            pass
        page.close()


def _case(path):
    """One test class per notebook: xdist's loadscope then spreads the notebooks over the workers (each
    worker starts its own JupyterLab), instead of running every browser check on one worker."""

    class Case:
        def test_in_jupyterlab(self, lab, record_property):
            _check_in_jupyterlab(lab, path, record_property)

    Case.__name__ = Case.__qualname__ = f"TestJupyterLab_{path.stem}"
    return Case


for _path in NOTEBOOKS:
    globals()[f"TestJupyterLab_{_path.stem}"] = _case(_path)
