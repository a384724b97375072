"""The notebooks and the server's page in a real browser: Debian's Chromium driven by Playwright.

A module-wide JupyterLab (127.0.0.1, a free port, a random token) serves a
temporary copy of the project, with quick mode (``RMBG_QUICK=1``) and the
real ``shared/`` folder in its kernels' environment. Each notebook is opened
in the page and run with Run > Run All Cells; then no cell may show an error,
every picture must have loaded with a size, and the widget panels must answer
clicks. The server page test starts ``python -m RMBG serve`` on a free port and
uploads a shared photo through the page's file chooser. Screenshots go to each
test's ``tmp_path``.

Skipped with the reason when playwright or Chromium (``apt-get install
chromium``; ``RMBG_CHROMIUM`` names another) is absent. Never
``playwright install``: the browser is launched through ``executable_path``.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pytest
from browser_support import (
    ACTIVE,
    ERRORS_JS,
    JupyterLab,
    chromium_path,
    error_outputs,
    open_notebook,
    project_copy,
    run_all_cells,
    save_notebook,
    wait_all_ran,
    wait_images_loaded,
    wait_until,
)

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is absent (pip install -e '.[test]')")
CHROMIUM = chromium_path()
if CHROMIUM is None:
    pytest.skip("Chromium is absent (apt-get install chromium, or set RMBG_CHROMIUM)", allow_module_level=True)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Bounds, in seconds, on this 2-core machine (quick mode).
LAB_START_S = 120
KERNEL_START_S = 120
RUN_S = {"notebooks/04_remove.ipynb": 300, "notebooks/02_train.ipynb": 240, "workspace.ipynb": 420}
WIDGET_S = 90
SERVER_START_S = 240
VIEWPORT = {"width": 1400, "height": 1000}


# ---------------------------------------------------------------------------
# Fixtures: one browser, one JupyterLab, a fresh page per test
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def notebook(lab):
    """The notebook paths a test opened; their kernels are shut down after it (memory for the next one)."""
    opened: list[str] = []
    yield opened
    for path in opened:
        lab.shut_down(path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shared_data):
    """JupyterLab over a temporary copy of the project, quick mode and the real shared/ in its kernels' env."""
    from RMBG.constants import shared_dir

    root = project_copy(tmp_path_factory.mktemp("project"))
    env = {"RMBG_QUICK": "1", "RMBG_DATA": str(shared_data), "PYTHONPATH": str(root),
           "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    if shared_dir() is not None:
        env["RMBG_SHARED"] = str(shared_dir())
    server = JupyterLab(root, tmp_path_factory.mktemp("jupyter-home"), env, LAB_START_S)
    yield server
    server.stop()


def run_notebook(page, lab: JupyterLab, path: str, shots: Path, opened: list[str]) -> list[dict]:
    """Open ``path``, Run All Cells from the menu, wait for the run; check errors and pictures; the pictures."""
    started = time.monotonic()
    opened.append(path)
    open_notebook(page, lab, path, KERNEL_START_S)
    run_all_cells(page)
    try:
        prompts = wait_all_ran(page, lab, RUN_S[path], path)
    finally:
        page.screenshot(path=shots / f"{Path(path).stem}-run.png")
    print(f"{path}: {len(prompts)} code cells ran in {time.monotonic() - started:.0f} s (open + run)")
    shown = page.evaluate(ERRORS_JS)
    assert shown == [], f"{path}: a cell shows an error: {[text[-600:] for text in shown]}"
    saved = save_notebook(page, lab.root / path)
    assert error_outputs(saved) == [], f"{path}: error outputs in the saved notebook"
    ran = [c for c in saved["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in ran), f"{path}: a code cell did not run"
    images = wait_images_loaded(page)
    empty = [i["src"][:80] for i in images if not (i["width"] > 0 and i["height"] > 0)]
    assert not empty, f"{path}: pictures without a size: {empty}"
    assert (lab.root / "Data" / "dataset").is_dir() or path.endswith("04_remove.ipynb"), (
        "the kernel did not work in the copy (wrong PYTHONPATH?)")
    return images


def panel(page, label: str):
    """The output area of the cell whose widget panel has a field labelled ``label``."""
    label_re = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return page.locator(f"{ACTIVE} .jp-Cell").filter(has=page.locator(".widget-label", has_text=label_re)).last


def picture_src(area) -> str:
    """The src of the (one) picture in a widget Output."""
    pictures = area.locator(".widget-output img")
    pictures.first.wait_for(timeout=WIDGET_S * 1000)
    return pictures.last.get_attribute("src") or ""


def wait_src_change(area, before: str, what: str) -> str:
    def changed():
        try:
            src = picture_src(area)
        except sync_api.Error:
            return None  # redrawn right now
        return src if src and src != before else None

    return wait_until(changed, WIDGET_S, what)


def png_size(src: str) -> tuple[int, int]:
    """(width, height) of a ``data:image/png;base64,`` picture, read from its header."""
    assert src.startswith("data:image/png;base64,"), src[:60]
    data = base64.b64decode(src.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ---------------------------------------------------------------------------
# The notebooks
# ---------------------------------------------------------------------------
def test_remove_notebook_runs_and_its_panel_answers_clicks(page, lab, notebook, tmp_path):
    images = run_notebook(page, lab, "notebooks/04_remove.ipynb", tmp_path, notebook)
    assert len(images) >= 6, f"only {len(images)} pictures in the remove notebook"

    area = panel(page, "background")  # the remove panel: photo, mode, background colour, refine
    area.scroll_into_view_if_needed()
    first = picture_src(area)
    assert png_size(first)[0] > 0

    # The colour: typed into the colour picker's text field, then Tab, as a person does (the panel starts in
    # mode "color"). Enter alone does not commit it in JupyterLab: the field sends its value on "change" (blur).
    colour = area.locator(".widget-colorpicker input[type=text]")
    colour.click()
    colour.press("Control+a")
    colour.press_sequentially("#1E90FF")
    colour.press("Tab")
    recoloured = wait_src_change(area, first, "the picture to follow the new colour")
    page.screenshot(path=tmp_path / "04_remove-colour.png", full_page=False)

    # The mode: a click on the "mask" toggle button.
    area.locator("button.widget-toggle-button", has_text=re.compile(r"^\s*mask\s*$")).click()
    masked = wait_src_change(area, recoloured, "the picture to follow the new mode")
    area.screenshot(path=tmp_path / "04_remove-mask-panel.png")
    assert len({first, recoloured, masked}) == 3
    assert min(png_size(masked)) > 0


def test_train_notebook_runs_and_the_preset_dropdown_fills_the_sliders(page, lab, notebook, tmp_path):
    run_notebook(page, lab, "notebooks/02_train.ipynb", tmp_path, notebook)
    area = panel(page, "preset")
    area.scroll_into_view_if_needed()
    select = area.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=re.compile(r"^\s*preset\s*$"))
                          ).locator("select")
    readouts = area.locator(".widget-slider .widget-readout")

    def shown() -> list[str]:
        return [r.strip() for r in readouts.all_inner_texts()]

    before, current = shown(), select.input_value()
    assert len(before) >= 5, f"slider readouts: {before}"
    options = [o for o in select.locator("option").all_inner_texts() if o.strip() != current]
    target = "full" if "full" in options else options[-1]
    select.select_option(label=target)
    after = wait_until(lambda: shown() if shown() != before else None, WIDGET_S,
                       f"the sliders to show preset {target!r}")
    area.screenshot(path=tmp_path / "02_train-preset-panel.png")
    print(f"preset {current} -> {target}: sliders {before} -> {after}")
    assert select.input_value() == target
    assert after[:5] == expected_readouts(target), "the sliders do not show the preset the widgets give in Python"


def expected_readouts(preset: str) -> list[str]:
    """What the training panel's five sliders show for ``preset`` (u2netp), as the widgets compute it in Python."""
    from RMBG.viz.train_widgets import SLIDER_FIELDS, PresetWidgets

    widgets = PresetWidgets(preset=preset, data_dir="data", out_dir="run", quick=True)
    values = widgets.values()
    lr = re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{values['lr']:.1e}")  # as d3-format writes it: 1.0e-3
    shown = {"lr": lr, "split": f"{values['split']:.2f}"}
    return [shown.get(field, str(values[field])) for field in SLIDER_FIELDS]


def test_workspace_runs_top_to_bottom(page, lab, notebook, tmp_path):
    images = run_notebook(page, lab, "workspace.ipynb", tmp_path, notebook)
    assert len(images) >= 5, f"only {len(images)} pictures in the workspace"


# ---------------------------------------------------------------------------
# The server's page
# ---------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path):
    from RMBG.apps.server.client import (
        free_port,
        start_server,
        stop_server,
        wait_healthy,
    )

    port = free_port()
    log = tmp_path / "server.log"
    process = start_server(["--port", str(port), "--workers", "1"], log, cwd=PROJECT_ROOT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, SERVER_START_S)
    except RuntimeError as exc:
        stop_server(process)
        pytest.fail(f"{exc}; its log:\n{log.read_text()[-4000:]}")
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


def test_server_page_removes_the_background_of_an_uploaded_photo(page, server, shared_data, tmp_path):
    from PIL import Image

    photo = sorted((shared_data / "people" / "images").glob("*.jpg"))[0]
    page.goto(server + "/")
    page.locator("#model option").first.wait_for(state="attached")  # the page asked /api/models
    with page.expect_file_chooser() as chooser:
        page.locator("#drop").click()
    chooser.value.set_files(str(photo))
    wait_until(lambda: page.evaluate("() => document.getElementById('before').naturalWidth") > 0, 30,
               "the photo to show before the upload")
    page.locator("#go").click()
    page.locator("#after").wait_for(state="visible", timeout=120_000)
    size = wait_until(lambda: page.evaluate("() => { const i = document.getElementById('after');"
                                            " return i.naturalWidth && [i.naturalWidth, i.naturalHeight]; }"),
                      30, "the result picture to load")
    status = page.locator("#status")
    assert "Done" in status.inner_text() and "error" not in (status.get_attribute("class") or "")
    link = page.locator("#download")
    assert link.is_visible() and link.get_attribute("href").startswith("blob:")
    page.screenshot(path=tmp_path / "server-page.png", full_page=True)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with Image.open(photo) as original, Image.open(saved) as result:
        assert tuple(size) == original.size == result.size
        assert result.mode == "RGBA" and saved.name == "cutout.png"
