"""The votes database of a MOS study: SQLite (stdlib ``sqlite3``), WAL journal, one transaction per vote.

Tables::

    meta    (key, value)                      format version and the study id
    raters  (id, name, token_sha256, item_order, created_at, calibrated_at)
    votes   (seq, rater_id, item_id, score, voted_at, changes)

* A rater is created with a random id (opaque, used in URLs), a per-rater secret token (the *resume code*,
  shown to the rater; only its SHA-256 is stored) and their item order (:func:`esrgan.mos.study.rater_order`),
  stored as JSON so that resuming continues the same order. Names are unique, ignoring case.
* Each vote is its own ``BEGIN IMMEDIATE … COMMIT`` with ``synchronous=FULL``: once the server has answered,
  the vote is on disk, and killing the server (or the machine) loses nothing.
* Votes follow the rater's order and come after calibration: a rater who has seen the calibration examples
  scores the next unscored item of their order, or changes the score of their *latest* vote (one step back,
  for a mis-typed key). Anything else is refused with :class:`VoteRefused`. ``changes`` counts how often a
  vote was changed.

The rules live here, not in the web server, so they hold for any client.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from esrgan.errors import EsrganError

__all__ = [
    "DB_FORMAT_VERSION",
    "NameTaken",
    "Rater",
    "RaterProgress",
    "Vote",
    "VoteRefused",
    "all_votes",
    "cast_vote",
    "connect",
    "create_rater",
    "get_rater",
    "init_db",
    "list_raters",
    "mark_calibrated",
    "new_token",
    "progress",
    "rater_by_name",
    "rater_votes",
    "token_matches",
]

DB_FORMAT_VERSION = 1
MIN_SCORE, MAX_SCORE = 1, 5
# Resume codes are typed by people: no 0/O, 1/I/L. 12 characters of 32 = 60 bits, grouped XXXX-XXXX-XXXX.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS raters (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    token_sha256  TEXT NOT NULL,
    item_order    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    calibrated_at TEXT
);
CREATE TABLE IF NOT EXISTS votes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    rater_id TEXT NOT NULL REFERENCES raters(id),
    item_id  TEXT NOT NULL,
    score    INTEGER NOT NULL CHECK (score BETWEEN {MIN_SCORE} AND {MAX_SCORE}),
    voted_at TEXT NOT NULL,
    changes  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (rater_id, item_id)
);
"""


class NameTaken(EsrganError):
    """A rater of this name exists already (they resume with their code instead)."""


class VoteRefused(EsrganError):
    """A vote that breaks the voting rules (module docstring); the message says why."""


@dataclass(frozen=True)
class Rater:
    id: str
    name: str
    token_sha256: str
    order: tuple[str, ...]
    created_at: str
    calibrated_at: str | None


@dataclass(frozen=True)
class Vote:
    rater_id: str
    rater_name: str
    item_id: str
    score: int
    voted_at: str
    changes: int


@dataclass(frozen=True)
class RaterProgress:
    """Where a rater stands: ``done`` of ``total`` scored, the ``next`` unscored item id (``None`` when
    finished) and their latest vote as ``(item_id, score)`` (the one they may still change)."""

    done: int
    total: int
    next: str | None
    latest: tuple[str, int] | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the database in autocommit mode (transactions are explicit), WAL, ``synchronous=FULL``."""
    path = Path(path)
    if not path.is_file():
        raise EsrganError(f"{path}: the votes database is missing")
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_db(path: str | Path, *, study_id: str) -> None:
    """Create a new, empty votes database at ``path``."""
    path = Path(path)
    if path.exists():
        raise EsrganError(f"{path}: exists already; a study folder gets a new database only once")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        with transaction(conn):
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format_version", str(DB_FORMAT_VERSION)), ("study_id", study_id)],
            )
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------
# raters


def new_token() -> str:
    """A fresh resume code, ``XXXX-XXXX-XXXX`` (60 random bits)."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def _token_hash(token: str) -> str:
    # Codes are compared case- and dash-insensitively, as people type them.
    canonical = "".join(c for c in token.upper() if c.isalnum())
    return hashlib.sha256(canonical.encode()).hexdigest()


def token_matches(rater: Rater, token: str) -> bool:
    """Whether ``token`` is this rater's resume code (constant-time comparison)."""
    return hmac.compare_digest(_token_hash(token), rater.token_sha256)


def _rater(row: sqlite3.Row) -> Rater:
    return Rater(
        id=row["id"],
        name=row["name"],
        token_sha256=row["token_sha256"],
        order=tuple(json.loads(row["item_order"])),
        created_at=row["created_at"],
        calibrated_at=row["calibrated_at"],
    )


def create_rater(
    conn: sqlite3.Connection, name: str, *, rater_id: str, token: str, order: Sequence[str]
) -> Rater:
    """Register a rater; raises :class:`NameTaken` if the name (ignoring case) is in use."""
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO raters (id, name, token_sha256, item_order, created_at) VALUES (?, ?, ?, ?, ?)",
                (rater_id, name, _token_hash(token), json.dumps(list(order)), _now()),
            )
    except sqlite3.IntegrityError as e:
        if "raters.name" in str(e):
            raise NameTaken(f"a rater named {name!r} has started already") from None
        raise
    rater = get_rater(conn, rater_id)
    assert rater is not None
    return rater


def get_rater(conn: sqlite3.Connection, rater_id: str) -> Rater | None:
    row = conn.execute("SELECT * FROM raters WHERE id = ?", (rater_id,)).fetchone()
    return None if row is None else _rater(row)


def rater_by_name(conn: sqlite3.Connection, name: str) -> Rater | None:
    row = conn.execute("SELECT * FROM raters WHERE name = ?", (name,)).fetchone()
    return None if row is None else _rater(row)


def list_raters(conn: sqlite3.Connection) -> list[Rater]:
    return [_rater(r) for r in conn.execute("SELECT * FROM raters ORDER BY created_at, id")]


def mark_calibrated(conn: sqlite3.Connection, rater_id: str) -> None:
    """Record that the rater has seen the calibration examples (the first time only)."""
    with transaction(conn):
        conn.execute(
            "UPDATE raters SET calibrated_at = ? WHERE id = ? AND calibrated_at IS NULL", (_now(), rater_id)
        )


# --------------------------------------------------------------------------------------------------
# votes


def _scores(conn: sqlite3.Connection, rater_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT item_id, score FROM votes WHERE rater_id = ?", (rater_id,))
    return {r["item_id"]: r["score"] for r in rows}


def _latest(conn: sqlite3.Connection, rater_id: str) -> tuple[str, int] | None:
    row = conn.execute(
        "SELECT item_id, score FROM votes WHERE rater_id = ? ORDER BY seq DESC LIMIT 1", (rater_id,)
    ).fetchone()
    return None if row is None else (row["item_id"], row["score"])


def progress(conn: sqlite3.Connection, rater: Rater) -> RaterProgress:
    scored = _scores(conn, rater.id)
    nxt = next((i for i in rater.order if i not in scored), None)
    return RaterProgress(
        done=sum(1 for i in rater.order if i in scored),
        total=len(rater.order),
        next=nxt,
        latest=_latest(conn, rater.id),
    )


def cast_vote(conn: sqlite3.Connection, rater: Rater, item_id: str, score: int) -> RaterProgress:
    """Store one score in its own transaction and return the rater's progress after it.

    Raises:
        VoteRefused: ``score`` is not an integer 1–5, ``item_id`` is not in the rater's order, the rater has
            not seen the calibration examples, or the item is neither their next unscored one nor their
            latest vote.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise VoteRefused(f"score must be an integer from {MIN_SCORE} to {MAX_SCORE}, got {score!r}")
    if item_id not in rater.order:
        raise VoteRefused(f"image {item_id} is not one of this rater's images")
    with transaction(conn):
        row = conn.execute("SELECT calibrated_at FROM raters WHERE id = ?", (rater.id,)).fetchone()
        if row is None or row["calibrated_at"] is None:
            raise VoteRefused("look at the calibration examples first")
        scored = _scores(conn, rater.id)
        if item_id in scored:
            latest = _latest(conn, rater.id)
            if latest is None or latest[0] != item_id:
                raise VoteRefused("only the latest score can be changed")
            conn.execute(
                "UPDATE votes SET score = ?, voted_at = ?, changes = changes + 1 "
                "WHERE rater_id = ? AND item_id = ?",
                (score, _now(), rater.id, item_id),
            )
        else:
            nxt = next((i for i in rater.order if i not in scored), None)
            if item_id != nxt:
                raise VoteRefused("images are scored in order; this is not the current image")
            conn.execute(
                "INSERT INTO votes (rater_id, item_id, score, voted_at) VALUES (?, ?, ?, ?)",
                (rater.id, item_id, score, _now()),
            )
    return progress(conn, rater)


_VOTES = (
    "SELECT v.rater_id, r.name, v.item_id, v.score, v.voted_at, v.changes "
    "FROM votes v JOIN raters r ON r.id = v.rater_id"
)


def rater_votes(conn: sqlite3.Connection, rater_id: str) -> list[Vote]:
    """One rater's votes in the order they were first cast."""
    rows = conn.execute(f"{_VOTES} WHERE v.rater_id = ? ORDER BY v.seq", (rater_id,))
    return [Vote(r[0], r[1], r[2], int(r[3]), r[4], int(r[5])) for r in rows]


def all_votes(conn: sqlite3.Connection) -> list[Vote]:
    """Every vote of every rater, in the order they were first cast."""
    rows = conn.execute(f"{_VOTES} ORDER BY v.seq")
    return [Vote(r[0], r[1], r[2], int(r[3]), r[4], int(r[5])) for r in rows]
