"""``python -m RMBG serve``: an HTTP API and a small web page over the removal pipeline.

::

    python -m RMBG serve [--host 127.0.0.1] [--port 7000] [--model FILE ...] [--workers N]
                         [--max-queue N] [--max-upload-mb N] [--timeout S] [--api-key KEY]
                         [--max-connections N] [--per-client N] [--body-timeout S]

Endpoints (FastAPI on uvicorn):

* ``POST /api/remove``: multipart field ``file`` (the photo) and, for mode
  ``image``, ``background``; options ``mode``, ``bg_color``, ``refine``,
  ``format`` (png, webp; jpg for the flat modes), ``foreground_estimation``
  (true by default; false composes the photo's own colours at soft edges),
  ``model``, ``box`` (``X0,Y0,X1,Y1`` in pixels, or fractions when all four are
  0-1: the model runs on that part and nothing outside it is kept),
  ``post_process``, ``largest`` (keep the largest region), ``invert`` (keep the
  background) and ``crop_margin`` (crop to the subject, this many pixels
  around it) as form fields or query parameters. Answers the picture with its content type.
* ``GET /api/models``: the models this server was started with, every model name, the modes,
  formats and refinements; ``GET /health``: 200 with the loaded models and
  the connections open, uploads being received, requests queued and running;
  ``GET /docs``: the OpenAPI page; ``GET /``: a page to try it in a browser.

Uploads are read into memory (never a file named by the client) by
:class:`RMBG.apps.server.limits.BodyGate` before a request takes a place in the
pool: bounded by ``--max-upload-mb`` (413), ``--body-timeout`` (408),
``--max-connections`` and ``--per-client`` (503 with ``Retry-After``);
pictures over the CLI's pixel limit get 413 too. The work runs in
``--workers`` threads with ``--max-queue`` requests waiting at most (then 503
with ``Retry-After`` at once), each within ``--timeout`` (504).
With ``--api-key`` every ``/api/`` request needs the header ``X-API-Key``
(401 without; compared in constant time); ``/``, ``/health`` and ``/docs``
stay open. Every error is JSON ``{"error": ..., "detail": ...}``, and every
request is logged in one line (method, path, status, bytes, ms).
"""

from __future__ import annotations

import hmac
import logging
import time
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from RMBG.apps.server.limits import BodyGate, ClientLimits, Traffic, json_error
from RMBG.apps.server.page import PAGE
from RMBG.apps.server.work import ApiError, Models, Options, WorkPool, choices
from RMBG.removal.compose import MODES
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.formats import OUTPUT_FORMATS

DEFAULT_HOST = "127.0.0.1"

DEFAULT_PORT = 7000

#: Requests that may wait for a worker before new ones are refused with 503.
DEFAULT_MAX_QUEUE = 16

DEFAULT_MAX_UPLOAD_MB = 20

#: Seconds the work of a request may take before it gets 504 (and its upload before it gets 408).
DEFAULT_TIMEOUT_S = 60.0

#: The header that carries the key of ``--api-key``.
API_KEY_HEADER = "X-API-Key"

#: Form fields that are not files, and the largest such field.
MAX_FORM_FIELDS = 16

MAX_FIELD_BYTES = 64 * 1024

#: Option names, read from the form first, then from the query string.
OPTION_NAMES = ("mode", "bg_color", "refine", "format", "foreground_estimation", "model", "box", "post_process",
                "largest", "invert", "crop_margin")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

log = logging.getLogger("RMBG.apps.server.routes")


# ---------------------------------------------------------------------------
# Pieces of a request
# ---------------------------------------------------------------------------
def check_key(request, api_key: str | None) -> None:
    """401 :class:`ApiError` unless the request carries ``api_key`` (constant-time compare)."""
    if api_key is None:
        return
    given = request.headers.get(API_KEY_HEADER)
    if given is None:
        raise ApiError(401, "unauthorized", f"this server needs an API key in the {API_KEY_HEADER} header")
    if not hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8")):
        raise ApiError(401, "unauthorized", f"the {API_KEY_HEADER} header does not hold this server's key")


async def parse_form(headers, body: bytes) -> dict:
    """The fields of a multipart body held in memory: ``name -> str`` or ``name -> bytes`` (files)."""
    if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ApiError(400, "not a form", "send multipart/form-data with the photo in the field 'file' "
                       "(curl -F file=@photo.jpg)")

    async def stream():
        yield body
        yield b""

    parser = MultiPartParser(headers, stream(), max_files=2, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES)
    parser.spool_max_size = len(body) + 1  # files stay in memory: the body is already bounded
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "bad form", f"the multipart body cannot be read ({exc.message})") from None
    fields: dict = {}
    try:
        for name, value in form.multi_items():
            fields[name] = await value.read() if isinstance(value, UploadFile) else value
    finally:
        await form.close()
    return fields


def upload_of(fields: dict, name: str) -> bytes | None:
    """The bytes of the file field ``name`` (None when absent); 400 when it is a plain text field."""
    value = fields.get(name)
    if isinstance(value, str):
        raise ApiError(400, "bad form", f"the field {name!r} must be a file upload (curl -F {name}=@photo.jpg)")
    return value


# ---------------------------------------------------------------------------
# One log line per request
# ---------------------------------------------------------------------------
class RequestLog:
    """ASGI middleware: logs ``METHOD PATH STATUS BYTES MS`` once per HTTP request (499: the client went away
    before an answer)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        seen = {"status": 499, "bytes": 0}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except BaseException:
            seen["status"] = 500 if seen["status"] == 499 else seen["status"]
            raise
        finally:
            log.info("%s %s %d %dB %.0fms", scope["method"], scope["path"], seen["status"], seen["bytes"],
                     (time.perf_counter() - start) * 1000)


# ---------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------
def _remove_openapi() -> dict:
    """The multipart body of ``POST /api/remove`` for the OpenAPI page (the route reads it itself)."""
    text = {"type": "string"}
    fields = {
        "file": {"type": "string", "format": "binary", "description": "the photo"},
        "background": {"type": "string", "format": "binary", "description": "background picture of mode 'image'"},
        "mode": {"type": "string", "enum": list(MODES), "default": "rgba"},
        "bg_color": {**text, "default": "#FFFFFF", "description": "background of mode 'color'"},
        "refine": {"type": "string", "enum": list(REFINE_METHODS), "default": "none"},
        "format": {"type": "string", "enum": list(OUTPUT_FORMATS), "default": "png"},
        "foreground_estimation": {"type": "boolean", "default": True,
                                  "description": "the subject's estimated colours at soft edges (no halo)"},
        "model": {**text, "description": "one of GET /api/models; default: the first"},
        "box": {**text, "description": "X0,Y0,X1,Y1: the subject's box in pixels, or in fractions of the width "
                "and height when all four are 0-1; the model runs on that part and nothing outside it is kept"},
        "post_process": {"type": "boolean", "default": False, "description": "clean small islands and holes"},
        "largest": {"type": "boolean", "default": False, "description": "keep only the mask's largest region"},
        "invert": {"type": "boolean", "default": False,
                   "description": "keep the background, the subject transparent (mode mask: the inverted mask)"},
        "crop_margin": {"type": "integer", "minimum": 0,
                        "description": "crop to the subject's box grown by this many pixels; absent: no crop"},
    }
    pictures = {content: {"schema": {"type": "string", "format": "binary"}} for content in (spec.content_type for spec in OUTPUT_FORMATS.values())}
    error = {"application/json": {"schema": {"type": "object", "properties": {"error": text, "detail": text}}}}
    answers = {"200": {"description": "the output picture", "content": pictures}}
    for code in (400, 401, 408, 413, 422, 503, 504):
        answers[str(code)] = {"description": HTTPStatus(code).phrase, "content": error}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": fields}}}},
        "parameters": [{"name": name, "in": "query", "required": False, "schema": text} for name in OPTION_NAMES],
        "responses": answers,
    }


def create_app(models: Models, pool: WorkPool, limits: ClientLimits, api_key: str | None = None):
    """The FastAPI app serving ``models`` through ``pool``, its uploads within ``limits``.

    ``app.state.traffic`` counts its connections (for :func:`RMBG.apps.server.limits.guarded_h11`).
    """
    app = FastAPI(title="RMBG", summary="Background removal", version="1")
    traffic = Traffic(limits)

    def check_upload(scope) -> None:  # before a body is read: no key, no upload
        if scope["path"].startswith("/api/"):
            check_key(Request(scope), api_key)

    app.add_middleware(BodyGate, traffic=traffic, check=check_upload)
    app.add_middleware(RequestLog)
    app.state.models, app.state.pool, app.state.traffic = models, pool, traffic

    @app.exception_handler(ApiError)
    async def on_api_error(request, exc: ApiError):
        return json_error(exc)

    @app.exception_handler(HTTPException)
    async def on_http_error(request, exc: HTTPException):
        return json_error(ApiError(exc.status_code, HTTPStatus(exc.status_code).phrase.lower(), str(exc.detail),
                               dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        return json_error(ApiError(422, "invalid request", problems))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE)

    @app.get("/health")
    async def health():
        """200 while the server serves, with its models and how busy its pool is."""
        return {"status": "ok", "models": models.names, "workers": pool.workers, "max_queue": pool.max_queue,
                "busy": pool.admitted, "connections": traffic.open, "reading": traffic.reading,
                "reading_clients": traffic.clients, "queued": pool.queued, "running": pool.running}

    @app.get("/api/models")
    async def list_models(request: Request):
        """The models this server was started with (the first is the default), every model name
        ``serve --model`` takes (``names``: size, input, licence, source, present), and the options."""
        check_key(request, api_key)
        return {"models": models.describe(), "names": models.catalogue(), **choices()}

    @app.post("/api/remove", openapi_extra=_remove_openapi(), response_class=Response)
    async def remove(request: Request):
        """Remove the background of the photo in the field ``file``."""
        check_key(request, api_key)
        slot = None
        try:
            body = await request.body()  # already in memory: BodyGate read it, in time and within the limit
            fields = await parse_form(request.headers, body)
            del body
            data = upload_of(fields, "file")
            if data is None:
                raise ApiError(400, "no file", "the form has no field 'file' (curl -F file=@photo.jpg)")
            background = upload_of(fields, "background")
            values = {name: fields.get(name) or request.query_params.get(name) for name in OPTION_NAMES}
            options = Options.parse(values, models.removers, background is not None)
            slot = pool.admit()  # a place in the pool only for a whole, well-formed request
            picture = await pool.run(slot, models.render, data, background, options)
        except ApiError:
            raise
        except MemoryError:
            raise ApiError(507, "out of memory", "the server ran out of memory for this picture") from None
        except Exception as exc:  # never a stack trace to the client; the log has it
            log.exception("POST /api/remove failed")
            raise ApiError(500, "internal error", f"the picture could not be processed ({type(exc).__name__})") from None
        finally:
            if slot is not None and not slot.started:
                slot.release()
        return Response(picture, media_type=options.content_type)

    return app
