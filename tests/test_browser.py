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
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m RMBG serve`` on a free port, one worker, for the module's page tests."""
    from RMBG.apps.server.client import (
        free_port,
        start_server,
        stop_server,
        wait_healthy,
    )

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process = start_server(["--port", str(port), "--workers", "1"], log, cwd=PROJECT_ROOT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, SERVER_START_S)
    except RuntimeError as exc:
        stop_server(process)
        pytest.fail(f"{exc}; its log:\n{log.read_text()[-4000:]}")
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


PAGE_PHOTO_SIDE = 320  # the model works at 320 px: small photos keep the page tests quick
RESULT_S = 180
#: A result of the page as base64 (the blob URL of the i-th card's result, read in the page).
RESULT_BYTES_JS = """async (i) => {
  const img = document.querySelectorAll('.card .after')[i];
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let text = '';
  for (let k = 0; k < bytes.length; k += 32768) text += String.fromCharCode(...bytes.subarray(k, k + 32768));
  return btoa(text);
}"""


@pytest.fixture
def page_photos(shared_data, tmp_path) -> list[Path]:
    """Two shared photos (people, cats), shrunk to at most PAGE_PHOTO_SIDE px."""
    from PIL import Image

    found = []
    for subset in ("people", "cats"):
        with Image.open(sorted((shared_data / subset / "images").glob("*.jpg"))[0]) as img:
            picture = img.convert("RGB")
        picture.thumbnail((PAGE_PHOTO_SIDE, PAGE_PHOTO_SIDE))
        picture.save(tmp_path / f"{subset}.jpg", quality=95)
        found.append(tmp_path / f"{subset}.jpg")
    return found


def open_page(page, server: str) -> None:
    page.goto(server + "/")
    page.locator("#model option").first.wait_for(state="attached")  # the page asked /api/models
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0  # nothing to break before a photo
    assert page.locator("#empty").is_visible()


def choose(page, paths: list[Path]) -> None:
    """Pick ``paths`` at once through the drop zone's file chooser, as a person does."""
    with page.expect_file_chooser() as chooser:
        page.locator("#drop").click()
    chooser.value.set_files([str(p) for p in paths])


def wait_finished(page, count: int) -> list[str]:
    """The progress lines of the ``count`` cards once every one says done or an error."""
    def finished():
        lines = page.locator(".card .progress")
        classes = [lines.nth(i).get_attribute("class") for i in range(lines.count())]
        ready = len(classes) == count and all("done" in c or "error" in c for c in classes)
        return lines.all_inner_texts() if ready else None

    return wait_until(finished, RESULT_S, f"{count} photos to finish")


def result_of(page, index: int):
    """The i-th card's result as a PIL image (read from the page)."""
    import io

    from PIL import Image

    wait_until(lambda: page.evaluate(f"() => document.querySelectorAll('.card .after')[{index}].naturalWidth"), 30,
               "the result picture to load")
    picture = Image.open(io.BytesIO(base64.b64decode(page.evaluate(RESULT_BYTES_JS, index))))
    picture.load()
    return picture


def drag(page, locator, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag over ``locator`` between two points given as fractions of its size."""
    box = locator.bounding_box()
    point = lambda f: (box["x"] + f[0] * box["width"], box["y"] + f[1] * box["height"])  # noqa: E731
    page.mouse.move(*point(start))
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(*point([a + (b - a) * step / 5 for a, b in zip(start, end)]))
    page.mouse.up()


def test_server_page_two_photos_give_two_results_with_split_and_downloads(page, server, page_photos, tmp_path):
    import zipfile

    from PIL import Image

    open_page(page, server)
    choose(page, page_photos)
    assert page.locator(".card").count() == 2 and not page.locator("#empty").is_visible()
    page.locator("#go").click()
    lines = wait_finished(page, 2)
    assert all(line.startswith("Done in") for line in lines), lines
    assert page.locator("#status").inner_text() == "All done."
    for i, photo in enumerate(page_photos):
        with Image.open(photo) as original:
            result = result_of(page, i)
            assert result.mode == "RGBA" and result.size == original.size
            alpha = result.getchannel("A")
            assert 10 < sum(alpha.getdata()) / (alpha.width * alpha.height) < 245  # a real cut-out

    stage = page.locator(".card .stage").first
    drag(page, stage, (0.5, 0.5), (0.2, 0.5))  # the split follows the mouse
    split = float(stage.evaluate("e => e.style.getPropertyValue('--split')").rstrip("%"))
    assert 15 < split < 25, split
    page.screenshot(path=tmp_path / "server-page.png", full_page=True)

    with page.expect_download() as download:
        page.locator(".card .download").first.click()
    assert download.value.suggested_filename == "people-rgba.png"
    with page.expect_download() as download:
        page.locator("#download-all").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None and archive.namelist() == ["people-rgba.png", "cats-rgba.png"]
        for name, photo in zip(archive.namelist(), page_photos):
            with archive.open(name) as member, Image.open(member) as result, Image.open(photo) as original:
                assert result.mode == "RGBA" and result.size == original.size


def test_server_page_box_drawn_changes_the_mask_as_the_api_does(page, server, page_photos):
    import io

    import numpy as np
    from PIL import Image

    from RMBG.apps.server.client import post_photo

    photo = page_photos[0]
    open_page(page, server)
    page.locator("#mode").select_option("mask")
    choose(page, [photo])
    page.locator("#go").click()
    wait_finished(page, 1)
    whole = np.asarray(result_of(page, 0))
    before_src = page.locator(".card .after").get_attribute("src")

    page.locator(".card .box-tool").click()
    drag(page, page.locator(".card .stage"), (0.1, 0.05), (0.6, 0.9))  # a box cutting the subject
    text = page.locator(".card .box-text").inner_text()
    assert re.fullmatch(r"box \d+,\d+,\d+,\d+", text), text
    wait_until(lambda: page.locator(".card .after").get_attribute("src") != before_src, RESULT_S,
               "the photo to run again with its box")
    wait_finished(page, 1)
    boxed = np.asarray(result_of(page, 0))
    x0, y0, x1, y1 = map(int, text.split()[1].split(","))
    with Image.open(photo) as original:
        assert abs(x0 - 0.1 * original.width) <= 3 and abs(y1 - 0.9 * original.height) <= 3
    outside = np.ones(boxed.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert boxed[outside].max() == 0 and whole[outside].max() > 128  # the box cut part of the subject away
    reply = post_photo(server, photo.read_bytes(), fields={"mode": "mask", "box": text.split()[1]})
    assert reply.status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(reply.body))), boxed)


def test_server_page_corrupt_file_shows_its_error_while_the_others_finish(page, server, page_photos, tmp_path):
    from PIL import Image
    from shared_sets import BAD_FILES

    bad_files, reasons = [], []
    for kind in ("corrupt", "not an image"):  # Chromium shows part of the corrupt PNG; the text file not at all
        name, make, reason = BAD_FILES[kind]
        bad = tmp_path / name
        with Image.open(page_photos[0]) as img:
            make(bad, img.convert("RGB"))
        bad_files.append(bad)
        reasons.append(reason)
    open_page(page, server)
    choose(page, [page_photos[0], bad_files[0], page_photos[1], bad_files[1]])
    page.locator("#go").click()
    lines = wait_finished(page, 4)
    assert lines[0].startswith("Done in") and lines[2].startswith("Done in"), lines
    for line, reason in zip(lines[1::2], reasons):
        assert line.startswith(f"422 unreadable image: file: {reason}"), lines  # the API's words
    progress = page.locator(".card .progress")
    assert ["error" in progress.nth(i).get_attribute("class") for i in range(4)] == [False, True, False, True]
    assert "2 of 4 failed" in page.locator("#status").inner_text()
    broken = page.evaluate("() => [...document.querySelectorAll('img')].filter(i => !i.hidden && i.complete"
                           " && i.naturalWidth === 0).length")
    assert broken == 0 and page.locator(".card").nth(3).locator(".unviewable").is_visible()
    assert min(result_of(page, 0).size) > 0 and min(result_of(page, 2).size) > 0
    page.screenshot(path=tmp_path / "server-page-error.png", full_page=True)
