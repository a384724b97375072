"""``python -m RMBG serve`` over real HTTP on 127.0.0.1: the server runs in a subprocess on a free port.

One server (the default model, 2 workers) serves the module; a second,
short-lived one (an API key, 1 worker, 1 waiting, a 1 MB body limit) serves
the key, busy and body-limit cases. Masks are compared with
``Remover().remove(photo, mode="mask")``, the pipeline the CLI runs.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from shared_sets import BAD_FILES, jpeg_bytes, odd_uploads, png_bomb

from RMBG.apps.server.client import (
    Reply,
    free_port,
    multipart,
    post_photo,
    request,
    start_server,
    stop_server,
    wait_healthy,
)
from RMBG.constants import MAX_IMAGE_PIXELS
from RMBG.removal.foreground import spread_band, spread_width

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Longest side of the photos sent (small: the model works at 320 px anyway).
PHOTO_SIDE = 320
#: How long a server may take to become healthy (the first start converts the model to TFLite, ~20 s).
START_TIMEOUT_S = 240
LOAD_REQUESTS, LOAD_CLIENTS, LOAD_TIME_LIMIT_S = 200, 16, 600
RSS_GROWTH_LIMIT = 100 * 2**20
API_KEY = "correct horse battery staple"


# ---------------------------------------------------------------------------
# Servers and photos
# ---------------------------------------------------------------------------
class Server:
    def __init__(self, args: list[str], log: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = start_server(["--port", str(self.port), *args], log, cwd=PROJECT_ROOT, env=env)
        try:
            wait_healthy(self.url, self.process, START_TIMEOUT_S)
        except RuntimeError as exc:
            stop_server(self.process)
            pytest.fail(f"{exc}; its log:\n{log.read_text()[-4000:]}")

    def stop(self) -> int:
        return stop_server(self.process)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(["--workers", "2", "--max-queue", "16"], tmp_path_factory.mktemp("serve") / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server with an API key, one worker, one waiting place and a 1 MB body limit."""
    args = ["--workers", "1", "--max-queue", "1", "--max-upload-mb", "1", "--api-key", API_KEY]
    running = Server(args, tmp_path_factory.mktemp("guarded") / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def photos(shared_data, tmp_path_factory) -> list[Path]:
    """Three real photos (people, cats, ECSSD), shrunk to at most PHOTO_SIDE px, as JPEG files."""
    folder = tmp_path_factory.mktemp("photos")
    found = []
    for subset in ("people", "cats", "ecssd"):
        source = sorted((shared_data / subset / "images").glob("*.jpg"))[0]
        with Image.open(source) as img:
            picture = img.convert("RGB")
        picture.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
        target = folder / f"{subset}.jpg"
        picture.save(target, quality=95)
        found.append(target)
    return found


@pytest.fixture(scope="module")
def cli_masks(photos) -> dict[str, np.ndarray]:
    """The mask the CLI's pipeline gives each photo (uint8)."""
    from RMBG.removal.pipeline import Remover

    remover = Remover()
    return {p.name: np.asarray(remover.remove(p, mode="mask")) for p in photos}


def picture_of(reply: Reply) -> Image.Image:
    assert reply.status == 200, reply.body[:300]
    img = Image.open(io.BytesIO(reply.body))
    img.load()
    return img


def assert_error(reply: Reply, status: int, *words: str) -> dict:
    """``reply`` is a JSON error of ``status`` whose detail names ``words`` (and is no stack trace)."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"]
    for word in words:
        assert word in body["detail"], body
    assert "Traceback" not in body["detail"]
    return body


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(int) - b.astype(int)).max())


# ---------------------------------------------------------------------------
# Serving photos
# ---------------------------------------------------------------------------
def test_health_and_models_list_what_was_loaded(server):
    health = request(server.url, "GET", "/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    assert health.json()["models"] == ["rmbg-default"]
    models = request(server.url, "GET", "/api/models").json()
    assert [m["name"] for m in models["models"]] == ["rmbg-default"] and models["models"][0]["default"]
    assert "rgba" in models["modes"] and models["formats"] == ["png", "webp", "jpg"]


def test_photo_gives_an_rgba_png_of_its_size_with_the_cli_mask(server, photos, cli_masks):
    for photo in photos:
        reply = post_photo(server.url, photo.read_bytes(), fields={"foreground_estimation": "false"})
        assert reply.headers["content-type"] == "image/png"
        out = picture_of(reply)
        with Image.open(photo) as original:
            assert out.mode == "RGBA" and out.size == original.size
            assert np.array_equal(np.asarray(out)[..., :3], np.asarray(original.convert("RGB")))
        estimated = np.asarray(picture_of(post_photo(server.url, photo.read_bytes())))  # the default
        assert np.array_equal(estimated[..., 3], np.asarray(out)[..., 3])
        band = spread_band(estimated[..., 3], spread_width(*estimated.shape[:2]))  # soft pixels grown (issue 36)
        assert np.array_equal(estimated[~band, :3], np.asarray(out)[~band, :3])
        mask = cli_masks[photo.name]
        assert max_diff(np.asarray(out)[..., 3], mask) <= 1
        assert 10 < mask.mean() < 245  # a real cut-out, neither empty nor everything
        served_mask = picture_of(post_photo(server.url, photo.read_bytes(), fields={"mode": "mask"}))
        assert served_mask.mode == "L" and max_diff(np.asarray(served_mask), mask) <= 1


def test_flat_modes_and_formats_match_the_pipeline(server, photos):
    from RMBG.removal.pipeline import Remover

    photo, backdrop = photos[0], photos[1]
    remover = Remover()
    cases = [  # (options, extra files, content type, tolerance in mean grey levels)
        ({"mode": "color", "bg_color": "#00FF00", "format": "png"}, {}, "image/png", 0.0),
        ({"mode": "color", "bg_color": "#00FF00", "format": "jpg"}, {}, "image/jpeg", 3.0),
        ({"mode": "blur", "format": "webp"}, {}, "image/webp", 3.0),
        ({"mode": "image"}, {"background": backdrop.read_bytes()}, "image/png", 0.0),
    ]
    for options, files, content_type, tolerance in cases:
        reply = post_photo(server.url, photo.read_bytes(), query=options, files=files)  # options as query parameters
        assert reply.headers["content-type"] == content_type
        served = np.asarray(picture_of(reply).convert("RGB")).astype(int)
        expected = np.asarray(remover.remove(photo, options["mode"], options.get("bg_color", "#FFFFFF"),
                                             backdrop if files else None)).astype(int)
        assert served.shape == expected.shape
        assert np.abs(served - expected).mean() <= tolerance, options
    side = picture_of(post_photo(server.url, photo.read_bytes(), fields={"mode": "side-by-side"}))
    with Image.open(photo) as original:
        assert side.size == (2 * original.width + 10, original.height)


def test_refine_changes_the_mask_as_the_pipeline_does(server, photos):
    from RMBG.removal.pipeline import Remover

    photo = photos[0]
    served = np.asarray(picture_of(post_photo(server.url, photo.read_bytes(), fields={"mode": "mask",
                                                                                     "refine": "guided"})))
    expected = np.asarray(Remover(refine="guided").remove(photo, mode="mask"))
    assert max_diff(served, expected) <= 1
    plain = np.asarray(Remover().remove(photo, mode="mask"))
    assert max_diff(served, plain) > 1  # the option reached the pipeline


def box_by_hand(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mask of the subject in a pixel ``box``, made by hand: the pipeline's mask of the box grown by the
    box margin on each side, pasted at its place, zero outside the box."""
    from RMBG.removal.box import BOX_MARGIN_FRACTION
    from RMBG.removal.pipeline import Remover

    x0, y0, x1, y1 = box
    grow_x, grow_y = round(BOX_MARGIN_FRACTION * (x1 - x0)), round(BOX_MARGIN_FRACTION * (y1 - y0))
    top, left = max(0, y0 - grow_y), max(0, x0 - grow_x)
    crop = rgb[top:y1 + grow_y, left:x1 + grow_x]
    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[top:top + crop.shape[0], left:left + crop.shape[1]] = np.asarray(Remover().remove(crop, mode="mask"))
    inside = np.zeros_like(mask, bool)
    inside[y0:y1, x0:x1] = True
    mask[~inside] = 0
    return mask


def test_box_runs_the_model_on_the_crop_and_keeps_nothing_outside(server, photos, cli_masks):
    photo = photos[0]
    with Image.open(photo) as img:
        rgb = np.asarray(img.convert("RGB"))
    height, width = rgb.shape[:2]
    box = (round(0.1 * width), round(0.05 * height), round(0.6 * width), round(0.9 * height))
    served = np.asarray(picture_of(post_photo(server.url, photo.read_bytes(),
                                              fields={"mode": "mask", "box": ",".join(map(str, box))})))
    assert max_diff(served, box_by_hand(rgb, box)) <= 1
    outside = np.ones(served.shape, bool)
    outside[box[1]:box[3], box[0]:box[2]] = False
    plain = cli_masks[photo.name]
    assert served[outside].max() == 0 and plain[outside].max() > 128  # the box cut part of the subject away
    assert np.abs(served[~outside].astype(int) - plain[~outside]).mean() > 0.5  # the crop changed the mask
    fractions = ",".join(f"{v:.6f}" for v in (box[0] / width, box[1] / height, box[2] / width, box[3] / height))
    in_fractions = picture_of(post_photo(server.url, photo.read_bytes(), query={"mode": "mask", "box": fractions}))
    assert max_diff(np.asarray(in_fractions), served) == 0


def two_people(photo: Path, target: Path) -> Path:
    """``photo`` and a half-size copy of it side by side on its corner's colour: a mask of two regions."""
    with Image.open(photo) as img:
        person = img.convert("RGB")
    small = person.resize((person.width // 2, person.height // 2))
    both = Image.new("RGB", (person.width + small.width + 24, person.height), person.getpixel((0, 0)))
    both.paste(person, (0, 0))
    both.paste(small, (person.width + 24, person.height - small.height))
    both.save(target)
    return target


def test_largest_invert_post_process_and_crop_match_the_pipeline(server, photos, tmp_path):
    from RMBG.removal.pipeline import Remover

    cases = [(two_people(photos[0], tmp_path / "two.png"), {"largest": "true"}, {"largest": True}),
             (photos[1], {"post_process": "yes"}, {"post_process": True}),
             (photos[1], {"invert": "on"}, {"invert": True})]
    for photo, fields, settings in cases:
        plain = np.asarray(Remover().remove(photo, mode="mask"))
        served = np.asarray(picture_of(post_photo(server.url, photo.read_bytes(), fields={"mode": "mask", **fields})))
        assert max_diff(served, np.asarray(Remover(**settings).remove(photo, mode="mask"))) <= 1, fields
        assert max_diff(served, plain) > 1, fields  # the option reached the pipeline
    assert max_diff(served.astype(int) + plain, np.full(plain.shape, 255)) <= 1  # inverted: alpha + inverse = 255
    photo = photos[0]  # a person who does not fill the photo
    cropped = picture_of(post_photo(server.url, photo.read_bytes(), fields={"crop_margin": "4"}))
    expected = Remover(crop_margin=4).remove(photo)
    with Image.open(photo) as original:
        assert cropped.size == expected.size and cropped.size != original.size


@pytest.mark.parametrize("fields, words", [
    ({"box": "a,b,c,d"}, ["box 'a,b,c,d'", "four numbers"]),
    ({"box": "1,2,3"}, ["box '1,2,3'", "four numbers"]),
    ({"box": "50,50,10,10"}, ["box '50,50,10,10'", "inverted corners"]),
    ({"box": "10,10,10,40"}, ["box '10,10,10,40'", "zero area"]),
    ({"box": "-5,0,10,10"}, ["box '-5,0,10,10'", "outside the photo"]),
    ({"box": "0,0,5000,100"}, ["box 0,0,5000,100", "outside the photo"]),  # known only once the photo is decoded
    ({"invert": "maybe"}, ["invert 'maybe'", "true or false"]),
    ({"crop_margin": "-3"}, ["crop_margin '-3'", "whole number"]),
])
def test_bad_box_and_options_are_422_naming_the_value(fields, words, server, photos):
    assert_error(post_photo(server.url, photos[0].read_bytes(), fields=fields), 422, *words)


# ---------------------------------------------------------------------------
# Bad and odd inputs: the CLI suite's kinds
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_unusable_upload_is_a_json_error_with_the_cli_reason(kind, server, photos, tmp_path):
    name, make, reason = BAD_FILES[kind]
    bad = tmp_path / name
    with Image.open(photos[0]) as img:
        make(bad, img.convert("RGB"))
    assert_error(post_photo(server.url, bad.read_bytes()), 422, f"file: {reason}")


def test_png_bomb_is_refused_naming_the_pixel_limit(server):
    bomb = png_bomb()
    assert len(bomb) < 2**20
    started = time.monotonic()
    assert_error(post_photo(server.url, bomb), 413, "image too large", f"{MAX_IMAGE_PIXELS:,} pixels")
    assert time.monotonic() - started < 10  # refused from the header, never decoded


def test_odd_uploads_work(server, photos, cli_masks):
    photo = photos[0]
    with Image.open(photo) as img:
        rgb = img.convert("RGB")
    reference = cli_masks[photo.name].astype(int)

    def served(data: bytes, **fields) -> np.ndarray:
        # about decoding: the cut-out keeps the decoded colours at soft edges too
        fields = {"foreground_estimation": "false", **fields}
        return np.asarray(picture_of(post_photo(server.url, data, fields=fields)))

    odd = odd_uploads(rgb)
    cmyk = served(odd["CMYK JPEG"])
    assert cmyk.shape == (rgb.height, rgb.width, 4) and np.abs(cmyk[..., 3] - reference).mean() / 255 < 0.03

    grey8 = np.asarray(rgb.convert("L"))
    with Image.open(io.BytesIO(odd["16-bit PNG"])) as deep:
        assert deep.mode == "I;16"
    out16 = served(odd["16-bit PNG"])
    assert max_diff(out16[..., 0], grey8) <= 1

    out_rgba = served(odd["RGBA PNG"])  # the left half transparent
    assert np.array_equal(out_rgba[..., :3], np.asarray(rgb)) and max_diff(out_rgba[..., 3], reference) <= 1

    rotated = served(odd["EXIF-rotated JPEG"])
    assert rotated.shape[:2] == (rgb.height, rgb.width) and np.abs(rotated[..., 3] - reference).mean() / 255 < 0.03

    dot = served(jpeg_bytes(Image.new("RGB", (1, 1), (200, 30, 30)), format="PNG"))
    assert dot.shape == (1, 1, 4) and tuple(dot[0, 0, :3]) == (200, 30, 30)

    # A JPEG uploaded under a PNG name: the client's name plays no part.
    misnamed = post_photo(server.url, photo.read_bytes(), files={"file": ("photo.png", photo.read_bytes())})
    assert max_diff(np.asarray(picture_of(misnamed))[..., 3], reference) <= 1


def test_unknown_options_name_the_choices(server, photos):
    data = photos[0].read_bytes()
    assert_error(post_photo(server.url, data, fields={"mode": "sepia"}), 422, "unknown mode 'sepia'", "rgba")
    assert_error(post_photo(server.url, data, query={"model": "u2net"}), 422, "unknown model 'u2net'", "rmbg-default")
    assert_error(post_photo(server.url, data, fields={"refine": "magic"}), 422, "unknown refine 'magic'")
    assert_error(post_photo(server.url, data, fields={"format": "gif"}), 422, "unknown format 'gif'")
    assert_error(post_photo(server.url, data, fields={"format": "jpg"}), 422, "'jpg' has no transparency")
    assert_error(post_photo(server.url, data, fields={"mode": "color", "bg_color": "nope"}), 422, "colour 'nope'")
    assert_error(post_photo(server.url, data, fields={"mode": "image"}), 422, "background")


def test_malformed_requests_are_json_errors(server):
    assert_error(request(server.url, "POST", "/api/remove", b"{}", {"Content-Type": "application/json"}), 400,
                 "multipart/form-data")
    body, content_type = multipart({"mode": "rgba"})
    assert_error(request(server.url, "POST", "/api/remove", body, {"Content-Type": content_type}), 400, "'file'")
    body, content_type = multipart({"file": "just text"})
    assert_error(request(server.url, "POST", "/api/remove", body, {"Content-Type": content_type}), 400,
                 "must be a file upload")
    assert_error(request(server.url, "GET", "/no/such/page"), 404, "Not Found")
    assert_error(request(server.url, "GET", "/api/remove"), 405, "Method Not Allowed")


def test_declared_oversized_body_gets_413_before_it_is_sent(server):
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(21 * 2**20)}
    assert_error(request(server.url, "POST", "/api/remove", None, headers), 413, "20 MB")


def test_server_is_healthy_after_the_bad_inputs_and_logs_each_request(server):
    assert request(server.url, "GET", "/health").status == 200
    lines = [line for line in server.log.read_text().splitlines() if " POST /api/remove " in line]
    assert any(" 422 " in line for line in lines) and any(" 413 " in line for line in lines)
    assert all(line.rstrip().endswith("ms") and "B " in line for line in lines)
    assert "Traceback" not in server.log.read_text()


# ---------------------------------------------------------------------------
# The page and the docs
# ---------------------------------------------------------------------------
def test_page_is_served_without_external_assets(server):
    reply = request(server.url, "GET", "/")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    page = reply.body.decode()
    assert '<form id="form">' in page and 'type="file" accept="image/*" multiple' in page and "<script>" in page
    assert 'xhr.open("POST", "/api/remove")' in page and 'body.append("box"' in page and "download" in page
    outside_template = page.split("<template")[0] + page.split("</template>")[1]
    assert "<img" not in outside_template  # no picture element before a photo is chosen
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_openapi_docs_describe_the_remove_endpoint(server):
    assert request(server.url, "GET", "/docs").status == 200
    spec = request(server.url, "GET", "/openapi.json").json()
    body = spec["paths"]["/api/remove"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and "background" in body["properties"]
    assert {"box", "largest", "invert", "post_process", "crop_margin"} <= set(body["properties"])
    assert "X0,Y0,X1,Y1" in body["properties"]["box"]["description"]


# ---------------------------------------------------------------------------
# Load: 200 requests from 16 clients
# ---------------------------------------------------------------------------
def test_load_answers_200_or_503_correctly_without_memory_growth(server, photos, cli_masks):
    bodies = [(p.name, p.read_bytes()) for p in photos]
    process = psutil.Process(server.process.pid)
    lock = threading.Lock()
    done: list[tuple[int, float, bool]] = []  # (status, seconds, result correct)
    rss: dict[int, int] = {}
    deadline = time.monotonic() + LOAD_TIME_LIMIT_S

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            return
        name, data = bodies[i % len(bodies)]
        start = time.perf_counter()
        reply = post_photo(server.url, data, fields={"mode": "mask"}, timeout=120)
        seconds = time.perf_counter() - start
        correct = reply.status != 200 or max_diff(np.asarray(picture_of(reply)), cli_masks[name]) <= 1
        if reply.status == 503:
            assert int(reply.headers["retry-after"]) >= 1
            time.sleep(0.2)
        with lock:
            done.append((reply.status, seconds, correct))
            if len(done) in (50, LOAD_REQUESTS):
                rss[len(done)] = process.memory_info().rss

    started = time.monotonic()
    with ThreadPoolExecutor(LOAD_CLIENTS) as clients:
        for future in [clients.submit(one, i) for i in range(LOAD_REQUESTS)]:
            future.result()
    elapsed = time.monotonic() - started
    assert len(done) == LOAD_REQUESTS, f"only {len(done)} requests within {LOAD_TIME_LIMIT_S} s"
    codes = {code: sum(1 for c, _, _ in done if c == code) for code in sorted({c for c, _, _ in done})}
    assert set(codes) <= {200, 503}, codes
    assert codes.get(200, 0) >= LOAD_REQUESTS // 2, codes
    assert all(correct for _, _, correct in done)
    latency = np.array([s for c, s, _ in done if c == 200])
    growth = rss[LOAD_REQUESTS] - rss[50]
    print(f"\nload: {LOAD_REQUESTS} requests, {LOAD_CLIENTS} clients, {elapsed:.1f} s, codes {codes}, "
          f"p50 {np.percentile(latency, 50) * 1000:.0f} ms, p95 {np.percentile(latency, 95) * 1000:.0f} ms, "
          f"RSS at 50 {rss[50] / 2**20:.0f} MB, at {LOAD_REQUESTS} {rss[LOAD_REQUESTS] / 2**20:.0f} MB")
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.0f} MB between request 50 and 200"
    assert request(server.url, "GET", "/health").json()["busy"] == 0


# ---------------------------------------------------------------------------
# API key, a full pool, the body limit
# ---------------------------------------------------------------------------
def test_api_key_is_required_on_the_api_only(guarded, photos):
    data = photos[0].read_bytes()
    assert_error(post_photo(guarded.url, data), 401, "X-API-Key")
    assert_error(post_photo(guarded.url, data, headers={"X-API-Key": API_KEY + "x"}), 401, "does not hold")
    assert_error(request(guarded.url, "GET", "/api/models"), 401, "X-API-Key")
    assert request(guarded.url, "GET", "/api/models", headers={"X-API-Key": API_KEY}).status == 200
    assert picture_of(post_photo(guarded.url, data, headers={"X-API-Key": API_KEY})).mode == "RGBA"
    assert request(guarded.url, "GET", "/health").status == 200 and request(guarded.url, "GET", "/").status == 200


def test_no_api_key_needed_without_the_option(server, photos):
    assert post_photo(server.url, photos[0].read_bytes(), headers={"X-API-Key": "anything"}).status == 200


def test_full_pool_answers_503_with_retry_after_at_once(guarded, photos):
    data = photos[2].read_bytes()
    barrier = threading.Barrier(8)

    def one(_):
        barrier.wait()
        start = time.perf_counter()
        reply = post_photo(guarded.url, data, headers={"X-API-Key": API_KEY}, timeout=120)
        return reply, time.perf_counter() - start

    with ThreadPoolExecutor(8) as clients:
        replies = list(clients.map(one, range(8)))
    codes = sorted(reply.status for reply, _ in replies)
    assert set(codes) == {200, 503} and codes.count(200) >= 2, codes  # 1 working + 1 waiting at least
    for reply, seconds in replies:
        if reply.status == 503:
            assert_error(reply, 503, "retry")
            assert int(reply.headers["retry-after"]) >= 1
            assert seconds < 2.0  # refused at once, not after waiting
    assert request(guarded.url, "GET", "/health").json()["busy"] == 0


def test_streamed_body_over_the_limit_gets_413(guarded):
    big = bytes(3 * 2**19)  # 1.5 MB against a 1 MB limit, sent without Content-Length (chunked)
    body, content_type = multipart(files={"file": big})
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=30)
    try:
        conn.request("POST", "/api/remove", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                     headers={"Content-Type": content_type, "X-API-Key": API_KEY}, encode_chunked=True)
        answer = conn.getresponse()
        reply = Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()
    assert_error(reply, 413, "1 MB")
    assert request(guarded.url, "GET", "/health").status == 200


# ---------------------------------------------------------------------------
# The pool's timeout, in process (no server needed)
# ---------------------------------------------------------------------------
def test_pool_timeout_is_504_and_the_running_job_keeps_its_slot():
    import asyncio

    from RMBG.apps.server.work import ApiError, WorkPool

    pool = WorkPool(workers=1, max_queue=0, timeout_s=0.1)
    finished = threading.Event()

    def slow():
        time.sleep(0.6)
        finished.set()
        return "late"

    async def scenario():
        slot = pool.admit()
        with pytest.raises(ApiError) as timed_out:
            await pool.run(slot, slow)
        assert timed_out.value.status == 504 and "0.1 s" in timed_out.value.detail
        with pytest.raises(ApiError) as busy:  # the job still runs: its slot is still taken
            pool.admit()
        assert busy.value.status == 503 and int(busy.value.headers["Retry-After"]) >= 1

    try:
        asyncio.run(scenario())
        assert finished.wait(5)
        deadline = time.monotonic() + 5
        while pool.admitted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.admitted == 0
        pool.admit().release()  # free again once the job ended
    finally:
        pool.shutdown()
