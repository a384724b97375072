"""What the real-browser tests (``tests/test_browser.py``) need: Chromium, a JupyterLab server, page helpers.

* :func:`chromium_path`: Debian's Chromium (``/usr/bin/chromium``, or ``RMBG_CHROMIUM``),
  launched by Playwright through ``executable_path`` (never ``playwright install``).
* :func:`project_copy`: a temporary copy of the project's files (what the notebooks need).
* :class:`JupyterLab`: ``jupyter lab`` on 127.0.0.1 with a free port and a random token in
  such a copy, quick mode in its kernels' environment; :meth:`JupyterLab.stop` ends it and
  every process it started (bounded waits).
* Page helpers: open a notebook, Run > Run All Cells from the menu, wait until every code
  cell has run and the kernel is idle, save it, read the pictures and the errors.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Debian's Chromium (apt-get install chromium); ``RMBG_CHROMIUM`` points elsewhere.
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: What a copy of the project holds (folders and files, relative to the root).
COPIED = ("RMBG", "Preprocess", "notebooks", "workspace.ipynb", "Data/models", "Data/README.md", "pyproject.toml")
#: JupyterLab user settings for the tests: every cell in the page (no windowing), no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def chromium_path() -> str | None:
    """The Chromium executable the tests launch, or None when it is absent."""
    path = os.environ.get("RMBG_CHROMIUM") or DEFAULT_CHROMIUM
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


# ---------------------------------------------------------------------------
# A copy of the project
# ---------------------------------------------------------------------------
def _listed_files() -> list[str] | None:
    """Files under :data:`COPIED` that git knows or would add (tracked + untracked, not ignored); None without git."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *COPIED],
                             cwd=PROJECT_ROOT, capture_output=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [name for name in out.decode().split("\0") if name]


def project_copy(target: Path) -> Path:
    """Copy the project's files (:data:`COPIED`, as they are in the working tree) to ``target``."""
    names = _listed_files()
    if names:
        for name in names:
            source = PROJECT_ROOT / name
            if source.is_file():  # a tracked file deleted in the working tree is skipped
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:
        skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")
        for name in COPIED:
            source = PROJECT_ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=skip)
            elif source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    return target


# ---------------------------------------------------------------------------
# JupyterLab
# ---------------------------------------------------------------------------
class JupyterLab:
    """``jupyter lab`` serving ``root`` on 127.0.0.1:``port`` with a random token.

    Its kernels get ``env`` on top of this process's environment (quick mode,
    where ``shared/`` is, the copy first on ``PYTHONPATH``). Its own settings,
    workspaces and runtime files live under ``home``, so nothing of the user's
    JupyterLab is read or written.
    """

    def __init__(self, root: Path, home: Path, env: dict[str, str], start_timeout_s: float = 120.0):
        from RMBG.apps.server.client import free_port

        self.root, self.home = root, home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = home / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        (home / "config" / "labconfig").mkdir(parents=True, exist_ok=True)
        (home / "config" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        self.env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
            MPLCONFIGDIR=str(home / "matplotlib"),
            PYTHONUNBUFFERED="1",
            **env,
        )
        self.log_path = home / "jupyterlab.log"
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--port-retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
            "--ServerApp.terminals_enabled=False", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            self._wait_ready(start_timeout_s)
        except Exception:
            self.stop()
            raise

    def api(self, path: str, timeout: float = 10.0, method: str = "GET"):
        """``METHOD /api/<path>`` as JSON (with the token; None for an empty answer)."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("status", timeout=5)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer within {timeout_s:g} s:\n{self.log_tail()}")

    def lab_url(self, path: str) -> str:
        """The JupyterLab page opening ``path`` (relative to the root) alone, in a workspace of its own
        (so no tab of an earlier test is restored), with the token."""
        workspace = re.sub(r"\W", "-", path)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def kernel_state(self, path: str) -> str | None:
        """The execution state of the kernel of the notebook ``path`` (None while it has none)."""
        for session in self.api("sessions"):
            if session.get("path") == path and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def shut_down(self, path: str) -> None:
        """Shut the kernel of the notebook ``path`` down (frees its memory for the next notebook)."""
        for session in self.api("sessions"):
            if session.get("path") == path:
                self.api(f"sessions/{session['id']}", timeout=30, method="DELETE")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the server (SIGTERM: it shuts its kernels down), then kill whatever of its tree is left."""
        try:
            family = [self.process.pid, *(p.pid for p in psutil.Process(self.process.pid).children(recursive=True))]
        except psutil.Error:
            family = [self.process.pid]
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace_s)
        leftovers = []
        for pid in family[1:]:
            try:
                leftovers.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        for process in leftovers:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)


# ---------------------------------------------------------------------------
# Driving a notebook in the page
# ---------------------------------------------------------------------------
#: The notebook in the current tab.
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
#: What every code cell's prompt says, in page order ("[3]:", "[*]:", "[ ]:").
PROMPTS_JS = f"""() => [...document.querySelectorAll('{ACTIVE} .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim())"""
#: Every picture in the outputs (widget outputs included): loaded?, natural size, src.
IMAGES_JS = f"""() => [...document.querySelectorAll('{ACTIVE} .jp-OutputArea img')].map(img =>
    ({{complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, src: img.src}}))"""
#: The text of every output shown as stderr or error (JupyterLab renders tracebacks as stderr).
ERRORS_JS = f"""() => [...document.querySelectorAll(
    '{ACTIVE} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.textContent).filter(t => /Traceback|Error\\b/.test(t))"""


def open_notebook(page, lab: JupyterLab, path: str, timeout_s: float = 120.0) -> None:
    """Open ``path`` in JupyterLab and wait for its cells and an idle kernel."""
    page.goto(lab.lab_url(path), timeout=timeout_s * 1000)
    page.locator(f"{ACTIVE} .jp-Cell").first.wait_for(timeout=timeout_s * 1000)
    wait_until(lambda: lab.kernel_state(path) == "idle" and "Idle" in _status_bar(page), timeout_s,
               f"the kernel of {path} to start")
    title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    assert title.inner_text().strip() == Path(path).name, f"the current tab is {title.inner_text()!r}, not {path}"


def _status_bar(page) -> str:
    bar = page.locator("#jp-main-statusbar")
    return bar.inner_text() if bar.count() else ""


def run_all_cells(page) -> None:
    """Run > Run All Cells, from the menu bar, as a person does."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def wait_until(check, timeout_s: float, what: str, every_s: float = 0.5):
    """Call ``check`` until it returns something true (returned), at most ``timeout_s``; TimeoutError names ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(every_s)


def wait_all_ran(page, lab: JupyterLab, timeout_s: float, path: str) -> list[str]:
    """Wait until every code cell of ``path`` shows an execution number and its kernel is idle; the prompts."""
    def done():
        prompts = page.evaluate(PROMPTS_JS)
        finished = prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        return prompts if finished and lab.kernel_state(path) == "idle" else None

    try:
        return wait_until(done, timeout_s, f"every cell of {path} to run and its kernel to go idle", every_s=1.0)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; the prompts: {page.evaluate(PROMPTS_JS)}") from None


def wait_images_loaded(page, timeout_s: float = 30.0) -> list[dict]:
    """The output pictures, once every one of them has finished loading."""
    def loaded():
        images = page.evaluate(IMAGES_JS)
        return images if images and all(i["complete"] for i in images) else None

    return wait_until(loaded, timeout_s, "the output pictures to load")


def save_notebook(page, path: Path, timeout_s: float = 30.0) -> dict:
    """File > Save (Ctrl+S in the page) and the saved notebook as JSON, once it holds the run."""
    before = path.stat().st_mtime_ns
    page.locator(ACTIVE).first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    wait_until(lambda: path.stat().st_mtime_ns != before, timeout_s, f"{path.name} to be saved")
    return json.loads(path.read_text())


def error_outputs(notebook: dict) -> list[str]:
    """``cell n: Ename: value`` of every error output in a saved notebook."""
    return [f"cell {n}: {out.get('ename')}: {out.get('evalue')}"
            for n, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]
