"""Where consultations live, and who may write one at a time.

A ``SessionStore`` owns a LangGraph checkpointer and a per-consultation lock:

* ``SqliteSessions`` (the embedded default): the SQLite file ``settings.sessions_path`` next to
  one process. Its lock is a no-op: ``Consultation``'s in-process lock already serialises turns,
  and one SQLite file is never shared by two serving processes.
* ``PostgresSessions`` (``MEDKG_SESSIONS__URL=postgresql://...``): LangGraph's own
  ``PostgresSaver`` over a psycopg ``ConnectionPool``, shared by every replica, plus a Postgres
  advisory lock per consultation held on a dedicated pooled connection for the whole turn, so
  two replicas receiving messages for one consultation apply them one after the other. A
  replica that dies mid-turn drops its connection and Postgres releases its lock.

psycopg and langgraph-checkpoint-postgres are imported only when Postgres is configured.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver

from assistant.private_files import private_dir, private_file
from assistant.settings import SessionSettings, Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# First key of every medkg advisory lock (two-key form): keeps medkg's locks apart from other
# applications' in a shared database. "mkg" in ASCII.
LOCK_NAMESPACE = 0x6D6B67
# Second key of the lock that serialises schema set-up when several replicas start at once.
SETUP_LOCK_KEY = 0

OWNERS_DDL = (
    "CREATE TABLE IF NOT EXISTS medkg_session_owners"
    " (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


class SessionBusyError(RuntimeError):
    """Another replica held this consultation's turn for longer than ``lock_timeout_s``."""


class SessionStore:
    """A checkpointer plus a cross-process lock per consultation (see the module docstring)."""

    kind: Literal["sqlite", "postgres"]
    checkpointer: BaseCheckpointSaver[Any]

    def lock(self, session_id: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the sessions are, safe to print (no password)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteSessions(SessionStore):
    kind: Literal["sqlite", "postgres"] = "sqlite"

    def __init__(self, path: str, data_dir: Path | None = None) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.path = path
        if path != ":memory:":
            # Patient data: the data dir owner-only (0700), the database and its WAL 0600.
            if data_dir is not None:
                private_dir(data_dir)
            private_file(Path(path))
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(self._conn)
        saver.setup()
        self.checkpointer = saver

    def lock(self, session_id: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def close(self) -> None:
        self._conn.close()


class PostgresSessions(SessionStore):
    kind: Literal["sqlite", "postgres"] = "postgres"

    def __init__(self, url: str, config: SessionSettings | None = None) -> None:
        config = config or SessionSettings()
        psycopg, pool_module, saver_module = _import_postgres()
        self.url = url
        self.lock_timeout_s = config.lock_timeout_s
        self._errors = psycopg.errors
        self._psycopg_error = psycopg.Error
        self._pool_timeout = pool_module.PoolTimeout
        # PostgresSaver needs autocommit, dict rows and no server-side prepared statements
        # (they break behind PgBouncer in transaction mode).
        checkpoint_kwargs = {
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": psycopg.rows.dict_row,
            "connect_timeout": max(1, round(config.connect_timeout_s)),
        }
        # check_connection on every checkout: a connection broken by a Postgres restart is
        # replaced instead of failing the next turn.
        self.pool: ConnectionPool[Any] = pool_module.ConnectionPool(
            url,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            kwargs=checkpoint_kwargs,
            check=pool_module.ConnectionPool.check_connection,
            name="medkg-sessions",
            open=False,
        )
        # Lock connections are held for a whole turn (LLM time); a pool of their own keeps them
        # from starving the checkpointer's short queries.
        self._lock_pool: ConnectionPool[Any] = pool_module.ConnectionPool(
            url,
            min_size=0,
            max_size=config.pool_max_size,
            kwargs={"autocommit": True, "connect_timeout": checkpoint_kwargs["connect_timeout"]},
            check=pool_module.ConnectionPool.check_connection,
            name="medkg-session-locks",
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=config.connect_timeout_s)
            self._lock_pool.open()
            saver = saver_module.PostgresSaver(self.pool)
            self.checkpointer = saver
            self._setup(saver)
        except Exception as exc:
            self.close()
            raise RuntimeError(
                f"cannot use the sessions database {masked_url(url)}: {type(exc).__name__}: {exc}"
            ) from exc

    def _setup(self, saver: Any, timeout_s: float = 120.0) -> None:
        """Create the checkpoint tables (LangGraph's migrations) and the owners table; replicas
        starting together take turns under an advisory lock, so set-up is idempotent.

        The lock is polled with pg_try_advisory_lock: a replica blocked inside pg_advisory_lock
        would hold a snapshot that the migrations' CREATE INDEX CONCURRENTLY waits for (deadlock)."""
        deadline = time.monotonic() + timeout_s
        with self.pool.connection() as conn:
            key = (LOCK_NAMESPACE, SETUP_LOCK_KEY)
            while not conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", key).fetchone()["ok"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another replica held the schema set-up for {timeout_s:g} s")
                time.sleep(0.1)
            try:
                saver.setup()
                conn.execute(OWNERS_DDL)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    @contextlib.contextmanager
    def lock(self, session_id: str) -> Iterator[None]:
        """Hold this consultation's advisory lock for the block, waiting up to lock_timeout_s."""
        try:
            conn = self._lock_pool.getconn(timeout=self.lock_timeout_s)
        except self._pool_timeout as exc:
            raise SessionBusyError(
                f"no free session-lock connection within {self.lock_timeout_s:g} s"
            ) from exc
        try:
            # lock_timeout bounds the wait inside Postgres (it queues, no polling); set at each
            # acquisition since the setting stays on the pooled connection.
            timeout_ms = max(1, int(self.lock_timeout_s * 1000))
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{timeout_ms}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, session_id))
            except self._errors.LockNotAvailable as exc:
                raise SessionBusyError(
                    f"consultation {session_id} is busy: another replica's turn held it for more "
                    f"than {self.lock_timeout_s:g} s"
                ) from exc
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_NAMESPACE, session_id))
                except self._psycopg_error as exc:
                    # The connection broke: Postgres released the lock with its session.
                    log.warning("session lock release failed (%s); the server dropped it", type(exc).__name__)
        finally:
            self._lock_pool.putconn(conn)  # a broken connection is discarded by the pool

    def describe(self) -> str:
        return masked_url(self.url)

    def close(self) -> None:
        for pool in (getattr(self, "_lock_pool", None), getattr(self, "pool", None)):
            if pool is not None:
                pool.close()


def open_sessions(settings: Settings, *, path: str | None = None) -> SessionStore:
    """The store the settings describe. ``path`` (a SQLite file or ":memory:") wins over the
    settings: evaluations keep their simulated patients out of the shared history."""
    if path is not None:
        return SqliteSessions(path, settings.data_dir if path != ":memory:" else None)
    secret = settings.sessions.url
    url = secret.get_secret_value().strip() if secret is not None else ""
    if not url:
        return SqliteSessions(str(settings.sessions_path), settings.data_dir)
    if urlsplit(url).scheme in ("postgresql", "postgres"):
        store = PostgresSessions(url, settings.sessions)
        log.info("consultations in %s", store.describe())
        return store
    raise ValueError(
        f"sessions URL {masked_url(url)} is not supported: use postgresql://user:password@host/db, "
        "or leave MEDKG_SESSIONS__URL unset for the embedded SQLite file"
    )


def masked_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<unparseable URL>"


def _import_postgres() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        import psycopg.rows
        import psycopg_pool
        from langgraph.checkpoint import postgres as saver_module
    except ImportError as exc:
        raise RuntimeError(
            "MEDKG_SESSIONS__URL points at PostgreSQL but its client packages are missing: "
            "pip install 'psycopg[binary,pool]>=3.3,<3.4' 'langgraph-checkpoint-postgres>=3.2,<4'"
        ) from exc
    return psycopg, psycopg_pool, saver_module
