"""The rating web app of a MOS study: Flask + the study's SQLite database (:mod:`esrgan.mos.db`).

Pages and API (every id is opaque; no method or file name is ever sent to a rater)::

    GET  /                               the single-page app (static; app.js and app.css beside it)
    GET  /images/<item_id>               an image, looked up by id in the manifest (no paths from URLs)
    POST /api/raters         {name}          → 201 {rater, name, token}; 409 if the name has started
    POST /api/resume         {name, token}   → 200 {rater, name}; 403 if the resume code does not match
    GET  /api/raters/<rid>                   → the rater's state: calibration examples, progress, next image
    POST /api/raters/<rid>/calibration       → the rater has seen the calibration examples
    GET  /api/raters/<rid>/votes             → the rater's own votes
    POST /api/raters/<rid>/votes {item, score} → store a score (1–5), return the new state

Who is who: registering returns a random *resume code* (the token); the page keeps it in the browser's
``localStorage`` and sends it as the ``X-Rater-Token`` header on every ``/api/raters/<rid>`` request. A
missing token is 401, another rater's token 403. Re-entering a name that has started asks for its resume
code, so typing someone else's name gives no access to their votes.

Requests: bodies must be JSON (``Content-Type: application/json``, else 415) of at most 4 KiB (413); bad
values are 400 with a message, unknown ids 404, out-of-turn votes 409 (:func:`esrgan.mos.db.cast_vote`).
Cross-site requests: a page on another site can send neither a JSON body nor a custom header without a CORS
preflight, which this server never grants; a foreign ``Origin`` on a POST is refused (403), and when listening
on a loopback address a foreign ``Host`` header (DNS rebinding) is refused too (400).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from esrgan.errors import EsrganError
from esrgan.mos import db
from esrgan.mos.study import Study, StudyItem, load_study, rater_order

logger = logging.getLogger(__name__)

__all__ = ["LOOPBACK_HOSTS", "create_app", "make_study_server"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_NAME = 60
TOKEN_HEADER = "X-Rater-Token"
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class _ApiError(Exception):
    """An expected failure of a request: answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _import_flask() -> Any:
    try:
        import flask
    except ImportError:
        raise EsrganError(
            "the MOS web app needs Flask: pip install 'esrgan[mos]' (or pip install 'flask>=3')"
        ) from None
    return flask


def create_app(study: Study | str | Path, *, trusted_hosts: Iterable[str] | None = LOOPBACK_HOSTS) -> Any:
    """The Flask app for ``study``.

    Args:
        study: a study (or its folder).
        trusted_hosts: host names accepted in the ``Host`` header; ``None`` accepts any (for ``--host``
            other than loopback, where the server is reached by a name we cannot know).
    """
    flask = _import_flask()
    if not isinstance(study, Study):
        study = load_study(study)
    app = flask.Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 4096
    app.config["ESRGAN_STUDY"] = study
    hosts = None if trusted_hosts is None else frozenset(h.lower() for h in trusted_hosts)
    _install_plumbing(app, flask, study, hosts)
    api = _Api(flask, study)
    _add_page_routes(app, flask, study)
    _add_rater_routes(app, flask, study, api)
    return app


def _fail(status: int, message: str) -> NoReturn:
    raise _ApiError(status, message)


def _install_plumbing(app: Any, flask: Any, study: Study, hosts: frozenset[str] | None) -> None:
    """Errors as JSON, one database connection per request, the Host/Origin checks and security headers."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(_ApiError)
    def _api_error(e: _ApiError) -> Any:
        return flask.jsonify(error=e.message), e.status

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        c = flask.g.pop("db", None)
        if c is not None:
            c.close()

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        return flask.jsonify(error=e.description or e.name), e.code

    @app.before_request
    def _check_request() -> None:
        req = flask.request
        if hosts is not None:
            hostname = urlsplit(f"//{req.host}").hostname or ""
            if hostname.lower() not in hosts:
                _fail(400, f"unexpected Host header {req.host!r}; open the study at http://127.0.0.1:PORT/")
        if req.method not in ("GET", "HEAD"):
            origin = req.headers.get("Origin")
            if origin is not None and origin.rstrip("/") != req.host_url.rstrip("/"):
                _fail(403, "cross-origin requests are not accepted")

    @app.after_request
    def _headers(resp: Any) -> Any:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Content-Security-Policy"] = _CSP
        if not flask.request.path.startswith("/images/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp


class _Api:
    """What the request handlers share: the database connection, request parsing, rater authorisation and
    the rater's state as the page sees it."""

    def __init__(self, flask: Any, study: Study) -> None:
        self.flask, self.study = flask, study

    def conn(self) -> sqlite3.Connection:
        g = self.flask.g
        if "db" not in g:
            g.db = db.connect(self.study.db_path)
        return g.db

    def json_body(self) -> dict[str, Any]:
        request = self.flask.request
        if not request.is_json:
            _fail(415, "send the request body as JSON (Content-Type: application/json)")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            _fail(400, "the request body must be a JSON object")
        return body

    @staticmethod
    def text_field(body: dict[str, Any], key: str, max_len: int) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            _fail(400, f"{key!r} must be a non-empty string")
        value = " ".join(value.split())
        if len(value) > max_len or not value.isprintable():
            _fail(400, f"{key!r} must be at most {max_len} printable characters")
        return value

    def authorised(self, rater_id: str) -> db.Rater:
        rater = db.get_rater(self.conn(), rater_id)
        if rater is None:
            _fail(404, "unknown rater")
        token = self.flask.request.headers.get(TOKEN_HEADER)
        if not token:
            _fail(401, f"missing {TOKEN_HEADER} header")
        if not db.token_matches(rater, token):
            _fail(403, "this token belongs to another rater")
        return rater

    def state(self, rater: db.Rater) -> dict[str, Any]:
        p = db.progress(self.conn(), rater)
        examples: dict[str, list[dict[str, Any]]] = {}
        for it in self.study.calibration:  # grouped per image, the bad end (1) first
            examples.setdefault(it.image, []).append({"item": it.id, "score": it.fixed_score})
        return {
            "rater": rater.id,
            "name": rater.name,
            "calibrated": rater.calibrated_at is not None,
            "calibration": [sorted(pair, key=lambda e: e["score"]) for pair in examples.values()],
            "done": p.done,
            "total": p.total,
            "next": p.next,
            "latest": None if p.latest is None else {"item": p.latest[0], "score": p.latest[1]},
        }


def _add_page_routes(app: Any, flask: Any, study: Study) -> None:
    """The page, its scripts and styles, and the study's images (by id only)."""
    static = {
        route: (resources.files("esrgan.mos").joinpath("static", name).read_bytes(), mimetype)
        for route, (name, mimetype) in _STATIC.items()
    }

    def static_page() -> Any:
        data, mimetype = static[flask.request.path]
        return flask.Response(data, mimetype=mimetype)

    for route in static:
        app.add_url_rule(route, f"static_{route}", static_page, methods=["GET"])

    @app.get("/images/<item_id>")
    def image(item_id: str) -> Any:
        item: StudyItem | None = study.item(item_id)
        if item is None:
            _fail(404, "unknown image id")
        # The path is built from the manifest's id (16 hex digits), never from the URL text. Bytes only: no
        # Last-Modified (files were written image by image, method by method, so their times could tell the
        # method) and no file name.
        resp = flask.Response(study.image_path(item.id).read_bytes(), mimetype="image/png")
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp


def _add_rater_routes(app: Any, flask: Any, study: Study, api: _Api) -> None:
    """Registering, resuming, calibration and votes."""

    @app.post("/api/raters")
    def register() -> Any:
        name = api.text_field(api.json_body(), "name", MAX_NAME)
        rater_id = secrets.token_hex(8)
        token = db.new_token()
        try:
            rater = db.create_rater(
                api.conn(), name, rater_id=rater_id, token=token, order=rater_order(study, rater_id)
            )
        except db.NameTaken:
            _fail(409, "this name has started already: enter the resume code you were given to continue")
        logger.info("new rater %s", rater.id)
        return flask.jsonify(rater=rater.id, name=rater.name, token=token), 201

    @app.post("/api/resume")
    def resume() -> Any:
        body = api.json_body()
        name = api.text_field(body, "name", MAX_NAME)
        token = api.text_field(body, "token", 64)
        rater = db.rater_by_name(api.conn(), name)
        if rater is None or not db.token_matches(rater, token):
            _fail(403, "this name and resume code do not match")
        return flask.jsonify(rater=rater.id, name=rater.name)

    @app.get("/api/raters/<rater_id>")
    def rater_state(rater_id: str) -> Any:
        return flask.jsonify(api.state(api.authorised(rater_id)))

    @app.post("/api/raters/<rater_id>/calibration")
    def calibrated(rater_id: str) -> Any:
        rater = api.authorised(rater_id)
        api.json_body()
        db.mark_calibrated(api.conn(), rater.id)
        updated = db.get_rater(api.conn(), rater.id)
        assert updated is not None
        return flask.jsonify(api.state(updated))

    @app.get("/api/raters/<rater_id>/votes")
    def votes(rater_id: str) -> Any:
        rater = api.authorised(rater_id)
        return flask.jsonify(
            votes=[{"item": v.item_id, "score": v.score} for v in db.rater_votes(api.conn(), rater.id)]
        )

    @app.post("/api/raters/<rater_id>/votes")
    def vote(rater_id: str) -> Any:
        rater = api.authorised(rater_id)
        body = api.json_body()
        item_id, score = body.get("item"), body.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not db.MIN_SCORE <= score <= db.MAX_SCORE:
            _fail(400, f"'score' must be an integer from {db.MIN_SCORE} to {db.MAX_SCORE}, got {score!r}")
        if not isinstance(item_id, str):
            _fail(400, "'item' must be an image id (a string)")
        item = study.item(item_id)
        if item is None:
            _fail(404, "unknown image id")
        if item.fixed_score is not None:
            _fail(400, "calibration examples have fixed scores and are not scored")
        try:
            db.cast_vote(api.conn(), rater, item.id, score)
        except db.VoteRefused as e:
            _fail(409, str(e))
        return flask.jsonify(api.state(rater))


def make_study_server(study_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> Any:
    """A threaded WSGI server for the study (call ``.serve_forever()``; ``.server_port`` is the port).

    Host names other than loopback ones switch off the ``Host`` header check (see the module docstring).
    ``port=0`` picks a free port.
    """
    _import_flask()
    from werkzeug.serving import make_server

    study = load_study(study_dir)
    trusted = LOOPBACK_HOSTS | {host} if host in LOOPBACK_HOSTS else None
    app = create_app(study, trusted_hosts=trusted)
    try:
        return make_server(host, port, app, threaded=True)
    except OSError as e:
        raise EsrganError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from e
