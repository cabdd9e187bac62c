"""The matching page as an ASGI app: :func:`create_app` builds it from :class:`ServeSettings`.

Routes (every error is JSON ``{"error": "one line"}`` with a 4xx status, never a traceback):

==========================  =============================================================
``GET /``                   the page
``GET /api/models``         the models to choose from (shipped and runs), and why some cannot be used
``POST /api/jobs``          a sound (multipart ``sound``) with ``model``, ``method``,
                            ``budget_renders`` (default the library's) and an optional time
                            cap ``budget_s``: checked, stored, queued (202)
``GET /api/jobs``           this session's matches, newest first
``GET /api/jobs/{id}``      one match: status, queue position, stage, elapsed seconds, and its
                            progress (renders done, best distance so far in dB)
``POST /api/jobs/{id}/cancel``  leave the queue, or stop at the next batch of renders (the
                            answer waits up to ``CANCEL_WAIT_S`` for it)
``GET /jobs/{id}/result``   the result as an HTML fragment the page inserts
``GET /files/{id}/{kind}``  a file the match wrote, by kind (``?download=1`` to save it)
==========================  =============================================================

Everything uploaded and written stays in the serve folder: ``uploads/{id}/`` (removed when the
job ends) and ``results/{id}/``; files are served only from there, by job id and kind.
POSTs need the header ``X-InverSynth: 1``: a browser sends it only from the page itself
(another site's request would need a CORS preflight this app never grants).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from core.errors import InverSynthError
from models.common.pretrained import PRETRAINED_DIR
from models.matching.audio_io import AUDIO_EXTENSIONS
from models.matching.match_settings import MatchSettings
from models.matching.matchers import DEFAULT_METHOD
from models.matching.objective import (
    BUDGET_REFERENCE_S,
    DEFAULT_BUDGET_RENDERS,
    DEFAULT_BUDGET_S,
    MAX_BUDGET_RENDERS,
    MIN_BUDGET_S,
    Budget,
)
from models.web.catalog import ModelChoice, find_model, list_models
from models.web.jobs import FINISHED, QUEUED, Job, JobQueue
from models.web.library import (
    METHODS,
    LoadedRuns,
    MatchedSound,
    check_sound,
    match_sound,
)
from models.web.results import FILE_KINDS, MEDIA_TYPES, result_view
from models.web.serve_folder import MARKER, open_serve_folder
from models.web.uploads import (
    UploadTooLargeError,
    check_name,
    size_text,
    store_upload,
)

__all__ = [
    "CANCEL_WAIT_S",
    "MARKER",
    "MAX_BUDGET_RENDERS",
    "MAX_BUDGET_S",
    "MIN_BUDGET_S",
    "ServeSettings",
    "create_app",
    "open_serve_folder",
]

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "inversynth_session"
POST_HEADER = "x-inversynth"
MAX_BUDGET_S = 60.0  # the page's optional time cap, seconds (a command line takes more)
# A cancel's answer waits this long for a running match to stop (it stops at its next
# progress report, a batch of renders: a fraction of a second), so the page can say so at once.
CANCEL_WAIT_S = 2.0
_FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the small fields beside the file
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """What a server is set up with.

    Attributes
    ----------
    serve_dir : Path
        Uploads and results (``INVERSYNTH_SERVE_DIRECTORY``).
    runs_dir : Path
        Run folders offered beside the shipped models (``INVERSYNTH_OUTPUT_DIR``).
    pretrained_dir : Path
        Shipped model folders.
    max_upload_bytes : int
        The largest sound file taken.
    max_duration_s : float
        The longest sound taken, seconds.
    max_waiting : int
        Jobs that may wait in the queue at once.
    allowed_hosts : tuple of str
        Host names the app answers to (``*``: any).
    preload : bool
        Load the first model in the worker as the server starts.
    """

    serve_dir: Path
    runs_dir: Path
    pretrained_dir: Path = PRETRAINED_DIR
    max_upload_bytes: int = 20_000_000
    max_duration_s: float = 60.0
    max_waiting: int = 32
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    preload: bool = False

    @property
    def uploads_dir(self) -> Path:
        return self.serve_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.serve_dir / "results"


class _RequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Server:
    """The app's state: settings, the loaded runs, the queue and its jobs."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.runs = LoadedRuns()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        warm_up = self._warm_up if settings.preload else None
        self.queue = JobQueue(
            self._work, max_waiting=settings.max_waiting, on_finish=self._finished, warm_up=warm_up
        )

    def models(self) -> list[ModelChoice]:
        return list_models(
            pretrained_dir=self.settings.pretrained_dir, runs_dir=self.settings.runs_dir
        )

    def _warm_up(self) -> None:
        usable = [c for c in self.models() if c.available]
        if usable:
            self.runs.warm_up(usable[0].run_dir)

    def _work(self, job: Job) -> MatchedSound:
        """Match one job's sound into ``results/{id}/`` (removed again if it does not finish)."""
        p = job.params
        output_dir = self.settings.results_dir / job.id
        try:
            budget = Budget(renders=p["budget_renders"], seconds=p["budget_s"])
            return match_sound(
                self.runs, p["run_dir"], p["upload"], output_dir=output_dir, stem=p["stem"],
                settings=MatchSettings(method=p["method"], budget=budget),
                on_stage=job.set_stage, on_progress=job.set_progress,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(output_dir, ignore_errors=True)
            raise

    def _finished(self, job: Job) -> None:
        shutil.rmtree(self.settings.uploads_dir / job.id, ignore_errors=True)
        if job.status != "done":
            shutil.rmtree(self.settings.results_dir / job.id, ignore_errors=True)

    def snapshot(self, job: Job) -> dict[str, Any]:
        """A job as the page polls it."""
        p = job.params
        ahead = self.queue.position(job)
        return {
            "id": job.id,
            "name": p["name"],
            "model": p["model"],
            "model_label": p["model_label"],
            "method": p["method"],
            "budget_s": p["budget_s"],
            "budget_renders": p["budget_renders"],
            "status": job.status,
            "stage": job.stage if job.status not in FINISHED else job.status,
            "ahead": ahead,
            "position": ahead + 1 if job.status == QUEUED else 0,
            "warming_up": self.queue.warming_up,
            "elapsed_s": round(job.elapsed_s(), 2),
            "cancel_requested": job.cancel_requested and job.status not in FINISHED,
            "progress": _progress(job.progress),
            "error": job.error,
            "result": f"/jobs/{job.id}/result" if job.status == "done" else None,
        }


def _progress(progress: Any) -> dict[str, Any] | None:
    """A progress report (``MatchProgress``) as JSON: renders, best distance (dB), seconds."""
    if progress is None:
        return None
    if dataclasses.is_dataclass(progress) and not isinstance(progress, type):
        return dataclasses.asdict(progress)
    return dict(progress)


def _session(request: Request) -> tuple[str, bool]:
    """The browser's session id, and whether it is new (to be set as a cookie)."""
    value = request.cookies.get(SESSION_COOKIE, "")
    if _ID.match(value):
        return value, False
    return secrets.token_hex(16), True


def _with_session(response: Response, session: str, new: bool) -> Response:
    if new:
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
    return response


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _job(server: _Server, job_id: str) -> Job:
    job = server.queue.get(job_id) if _ID.match(job_id) else None
    if job is None:
        raise _RequestError("no such match (the server keeps matches until it stops)", 404)
    return job


def _number(form: Any, name: str, kind: type, low: float, high: float, default: Any) -> Any:
    text = form.get(name)
    if text is None or text == "":
        return default
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(str(text))
    except ValueError:
        raise _RequestError(f"{name} must be {what}, got {str(text)[:40]!r}") from None
    if not low <= value <= high:
        shown = (lambda v: f"{v:,}") if kind is int else (lambda v: f"{v:g}")
        raise _RequestError(
            f"{name} must be between {shown(low)} and {shown(high)}, got {shown(value)}"
        )
    return value


def _server(request: Request) -> _Server:
    server: _Server = request.app.state.server
    return server


def _check_post(request: Request) -> None:
    if request.headers.get(POST_HEADER) != "1":
        raise _RequestError("this request must come from the page (header X-InverSynth: 1)", 403)


def _check_length(request: Request, max_bytes: int) -> None:
    """Refuse a body larger than the upload limit before reading any of it."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise _RequestError("the upload must state its length (Content-Length)", 411)
    if int(length) > max_bytes + _FORM_OVERHEAD_BYTES:
        raise UploadTooLargeError(
            f"the file is larger than the upload limit of {size_text(max_bytes)}"
        )


def _choices(server: _Server, form: Any) -> dict[str, Any]:
    """The model, method and budget a form asks for, checked."""
    models = server.models()
    default_id = models[0].id if models else ""
    choice = find_model(models, str(form.get("model") or default_id))
    method = str(form.get("method") or DEFAULT_METHOD)
    if method not in METHODS:
        raise _RequestError(f"unknown method {method[:40]!r}; choose one of {', '.join(METHODS)}")
    assert choice.summary is not None  # an available model has one
    if method == "lookup" and not choice.summary.has_dataset:
        raise _RequestError(
            f"the lookup method needs the dataset {choice.id} was trained on, which is not on "
            "this machine; choose hybrid, network or search"
        )
    return {
        "model": choice.id,
        "model_label": choice.label,
        "run_dir": choice.run_dir,
        "method": method,
        "budget_s": _number(form, "budget_s", float, MIN_BUDGET_S, MAX_BUDGET_S, DEFAULT_BUDGET_S),
        "budget_renders": _number(
            form, "budget_renders", int, 1, MAX_BUDGET_RENDERS, DEFAULT_BUDGET_RENDERS
        ),
    }


async def submit(request: Request) -> Response:
    server, settings = _server(request), _server(request).settings
    session, new = _session(request)
    _check_post(request)
    _check_length(request, settings.max_upload_bytes)
    job_id = secrets.token_hex(16)
    folder = settings.uploads_dir / job_id
    try:
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("sound")
            if upload is None or isinstance(upload, str):
                raise _RequestError("no sound file was sent")
            name = check_name(upload.filename or "")
            params = _choices(server, form)
            path = folder / name
            await store_upload(upload, path, max_bytes=settings.max_upload_bytes)
        await run_in_threadpool(
            check_sound, path, name=name, max_duration_s=settings.max_duration_s
        )
        params.update(name=name, stem=Path(name).stem, upload=path)
        job = server.queue.submit(Job(job_id, session, params))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _with_session(JSONResponse(server.snapshot(job), status_code=202), session, new)


async def job_status(request: Request) -> Response:
    server = _server(request)
    return JSONResponse(server.snapshot(_job(server, request.path_params["id"])))


async def cancel(request: Request) -> Response:
    _check_post(request)
    server = _server(request)
    job = _job(server, request.path_params["id"])
    session, _ = _session(request)
    if job.session != session:
        raise _RequestError("only the session that sent a sound may cancel its match", 403)
    if job.status not in FINISHED:
        server.queue.cancel(job)
        end = time.monotonic() + CANCEL_WAIT_S
        while job.status not in FINISHED and time.monotonic() < end:
            await asyncio.sleep(0.02)
    return JSONResponse(server.snapshot(job))


async def session_jobs(request: Request) -> Response:
    server = _server(request)
    session, new = _session(request)
    jobs = [] if new else server.queue.session_jobs(session)
    return _with_session(JSONResponse([server.snapshot(j) for j in jobs]), session, new)


async def models(request: Request) -> Response:
    return JSONResponse(
        [
            {
                "id": c.id,
                "label": c.label,
                "available": c.available,
                "missing": c.missing,
                "lookup": bool(c.summary and c.summary.has_dataset),
                "preset": c.summary.preset if c.summary else "",
            }
            for c in _server(request).models()
        ]
    )


async def page(request: Request) -> Response:
    server = _server(request)
    session, new = _session(request)
    settings = server.settings
    context = {
        "models": server.models(),
        "methods": METHODS,
        "default_method": DEFAULT_METHOD,
        "default_budget_renders": DEFAULT_BUDGET_RENDERS,
        "max_budget_renders": MAX_BUDGET_RENDERS,
        "min_budget_s": MIN_BUDGET_S,
        "max_budget_s": MAX_BUDGET_S,
        "budget_reference_s": BUDGET_REFERENCE_S,
        "max_upload": size_text(settings.max_upload_bytes),
        "max_duration_s": settings.max_duration_s,
        "extensions": ", ".join(e.lstrip(".").upper() for e in AUDIO_EXTENSIONS),
        "accept": ",".join(AUDIO_EXTENSIONS),
    }
    response = server.templates.TemplateResponse(request, "index.html", context)
    return _with_session(response, session, new)


async def result(request: Request) -> Response:
    server = _server(request)
    job = _job(server, request.path_params["id"])
    if job.status != "done":
        raise _RequestError(f"this match is {job.status}, it has no result", 404)
    context = {"job": server.snapshot(job), "view": result_view(job.result)}
    return server.templates.TemplateResponse(request, "result.html", context)


async def file(request: Request) -> Response:
    """A file a finished match wrote, by kind; only from its own results folder."""
    server = _server(request)
    job = _job(server, request.path_params["id"])
    kind = request.path_params["kind"]
    if job.status != "done" or kind not in FILE_KINDS:
        raise _RequestError("no such file", 404)
    path = job.result.files.get(FILE_KINDS[kind])
    root = (server.settings.results_dir / job.id).resolve()
    resolved = Path(path).resolve() if path is not None else None
    if resolved is None or not resolved.is_relative_to(root) or not resolved.is_file():
        raise _RequestError(f"this match has no {kind} file", 404)
    download = request.query_params.get("download") == "1"
    return FileResponse(
        resolved,
        media_type=MEDIA_TYPES.get(resolved.suffix, "application/octet-stream"),
        filename=resolved.name if download else None,
    )


async def _bad_request(request: Request, exc: Exception) -> Response:
    status: int = getattr(exc, "status", None) or getattr(exc, "status_code", None) or 400
    message = str(getattr(exc, "detail", None) or exc)
    return _error(message, status)


def create_app(settings: ServeSettings) -> Starlette:
    """The matching page's app.

    Its lifespan creates the serve folder and holds it locked while it serves,
    removes what an earlier server left unfinished, starts the worker and, at
    shutdown, cancels the jobs and ends the synths' processes.
    """
    server = _Server(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        folder_lock = open_serve_folder(settings)
        try:
            server.queue.start()
            yield
        finally:
            await run_in_threadpool(server.queue.close)
            await run_in_threadpool(server.runs.close)
            folder_lock.release()

    routes = [
        Route("/", page),
        Route("/api/models", models),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs", session_jobs),
        Route("/api/jobs/{id}", job_status),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/jobs/{id}/result", result),
        Route("/files/{id}/{kind}", file),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))],
        lifespan=lifespan,
        exception_handlers={
            InverSynthError: _bad_request,
            _RequestError: _bad_request,
            HTTPException: _bad_request,
        },
    )
    app.state.server = server
    return app
