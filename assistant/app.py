"""The one place that assembles medkg from settings: ``open_app(settings, needs) -> App``.

Every entry point (``medkg serve``, ``medkg chat``, both evaluations, the benchmarks, the
tests over the real stack) asks for what it needs and gets it started in one order:

    embedded servers the settings leave unconfigured -> graph loaded or refreshed ->
    LLM client -> retrieval index (now, in the background, or not at all) ->
    image analyzer -> agent context (warm caches) -> consultation

and stopped in the reverse order when the ``with`` block ends. Nothing here knows about HTTP
or Gradio; the interfaces build on the ``App`` it yields.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.agent.context import AgentContext
    from assistant.consultation import Consultation
    from assistant.imaging import ImageAnalyzer
    from assistant.llm.base import ChatModel
    from assistant.processes.supervisor import ServiceGroup
    from kg import LoadReport, Neo4jGraphStore
    from kg.store import GraphStore
    from retrieval.base import Retriever
    from retrieval.progress import IndexProgress

log = logging.getLogger(__name__)

Echo = Callable[[str], None]
IndexNeed = Literal["none", "load", "background"]


def quiet(_: str) -> None:
    """The default echo: no start-up lines (the CLI passes its own printer)."""


class Needs(BaseModel):
    """What an entry point needs; everything else is neither started nor loaded."""

    model_config = ConfigDict(frozen=True)

    graph: bool = True
    llm: bool = True
    # "background": a missing index is built in a thread while the app already serves
    # (answers carry no passages until it is ready); "load": built or loaded before yielding.
    retriever: IndexNeed = "load"
    images: bool = True
    consultation: bool = True
    # Where consultations are checkpointed; None = settings.sessions_path (evaluations pass
    # ":memory:" so that their simulated patients stay out of the user's history).
    sessions_path: str | None = None
    # Command-line use: SIGTERM / Ctrl-C stop the started child servers too.
    handle_signals: bool = False


SERVE = Needs(retriever="background")
GRAPH_ONLY = Needs(llm=False, retriever="none", images=False, consultation=False)


@dataclass
class App:
    """The assembled parts; absent ones are None with the reason in ``disabled``."""

    settings: Settings  # pointing at the running servers
    graph: GraphStore | None = None
    chat_model: ChatModel | None = None
    retriever: Retriever | None = None
    image_analyzer: ImageAnalyzer | None = None
    context: AgentContext | None = None
    consultation: Consultation | None = None
    disabled: dict[str, str] = field(default_factory=dict)
    # The embedded servers' supervisor (restarts, status() for /healthz); None: none started here.
    services: ServiceGroup | None = None
    _index_thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def require_graph(self) -> GraphStore:
        if self.graph is None:
            raise RuntimeError("this app was opened without the graph (Needs.graph=False)")
        return self.graph

    def require_chat_model(self) -> ChatModel:
        if self.chat_model is None:
            raise RuntimeError("this app was opened without the LLM (Needs.llm=False)")
        return self.chat_model

    def require_context(self) -> AgentContext:
        if self.context is None:
            raise RuntimeError("this app was opened without the agent (needs the LLM and the graph)")
        return self.context

    def require_consultation(self) -> Consultation:
        if self.consultation is None:
            raise RuntimeError("this app was opened without consultations (Needs.consultation=False)")
        return self.consultation

    def set_retriever(self, retriever: Retriever | None, reason: str | None) -> None:
        """Attach (or detach) the retriever everywhere it is read, with the reason when absent
        (a background index build calls this from its thread)."""
        with self._lock:
            self.retriever = retriever
            if retriever is None and reason:
                self.disabled["retriever"] = reason
            else:
                self.disabled.pop("retriever", None)
            self._sync_retriever()

    def attach_context(self, context: AgentContext) -> None:
        """The agent context, given the retriever as it is now (a build may have finished
        while the context warmed up)."""
        with self._lock:
            self.context = context
            self._sync_retriever()

    def _sync_retriever(self) -> None:
        if self.context is not None:
            self.context.retriever = self.retriever

    def wait_for_index(self, timeout_s: float | None = None) -> bool:
        """True once no background index build is running."""
        thread = self._index_thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True


@contextlib.contextmanager
def open_app(
    settings: Settings,
    needs: Needs = Needs(),
    *,
    echo: Echo = quiet,
    group: ServiceGroup | None = None,
) -> Iterator[App]:
    """Start and connect what ``needs`` asks for; stop it all when the block ends.

    ``group``: a caller that must stop children on its own signals (``medkg serve``) passes
    its ServiceGroup and stops it; otherwise the app owns one."""
    from assistant.processes.supervisor import ServiceGroup

    own_group = group is None
    group = group or ServiceGroup()
    with contextlib.ExitStack() as stack:
        if own_group:
            stack.callback(group.stop_all)
        if needs.handle_signals:
            group.install_signal_handlers()
        app = App(settings=_start_servers(settings, needs, group, echo), services=group)
        if needs.graph:
            app.graph = _open_graph(app.settings, echo)
            stack.callback(app.graph.close)
            # After a restart the pool's connections point at the dead server: one ping drops them.
            group.on_restart("graph", lambda _service: _ping_quietly(app.graph))
        if needs.llm:
            from assistant.llm import create_chat_model

            app.chat_model = create_chat_model(app.settings.llm)
            close = getattr(app.chat_model, "close", None)
            if close is not None:
                stack.callback(close)
        if needs.retriever == "load":
            app.set_retriever(*_load_retriever(app.settings, echo))
        elif needs.retriever == "none":
            app.disabled["retriever"] = "not needed by this command"
        else:  # the build (its graph descriptions read) overlaps the rest of the start-up
            _retriever_in_background(app, echo)
        if needs.images:
            from assistant.imaging import load_image_analyzer

            app.image_analyzer, reason = load_image_analyzer(app.settings)
            if reason:
                app.disabled["vision"] = reason
                echo(f"  image analysis disabled: {reason}")
        if app.graph is not None and app.chat_model is not None:
            app.attach_context(_agent_context(app))
        if needs.consultation:
            from assistant.consultation import Consultation
            from assistant.sessions import open_sessions

            # SQLite file or the Postgres database every replica shares (settings.sessions.url).
            sessions = open_sessions(app.settings, path=needs.sessions_path)
            stack.callback(sessions.close)
            consultation = Consultation(
                app.require_context(), app.settings, sessions_path=needs.sessions_path, sessions=sessions
            )
            app.consultation = consultation
            stack.callback(consultation.close)
        yield app


@contextlib.contextmanager
def _step(echo: Echo, what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    echo(f"✓ {what} ({time.monotonic() - started:.1f} s)")


def _start_servers(settings: Settings, needs: Needs, group: ServiceGroup, echo: Echo) -> Settings:
    """Start the embedded servers the settings leave unconfigured; settings pointing at them."""
    from assistant.processes.embedded import (
        embedded_graph_service,
        embedded_llm_service,
        graph_uri,
        llm_base_url,
    )

    start_graph = needs.graph and settings.graph.uri is None
    start_llm = needs.llm and settings.llm.base_url is None
    if not (start_graph or start_llm):
        return settings
    names = " and ".join(n for n, s in (("LLM", start_llm), ("graph", start_graph)) if s)
    with _step(echo, f"embedded {names} started"):
        if start_graph:
            service = group.start(embedded_graph_service(settings))
            graph = settings.graph.model_copy(update={"uri": graph_uri(service)})
            settings = settings.model_copy(update={"graph": graph})
        if start_llm:
            service = group.start(embedded_llm_service(settings))
            llm = settings.llm.model_copy(update={"base_url": llm_base_url(service)})
            settings = settings.model_copy(update={"llm": llm})
    return settings


def _open_graph(settings: Settings, echo: Echo) -> GraphStore:
    """A store on the configured graph, loaded if empty and refreshed if an older medkg loaded it."""
    from kg.loader import graph_checksum

    store = connect_graph(settings)
    try:
        stats = store.stats()
        diseases = stats.labels.get("Disease", 0)
        if not diseases or stats.checksum != graph_checksum()[0]:
            what = (
                "knowledge graph refreshed (new version)"
                if diseases
                else "knowledge graph loaded (first run)"
            )
            with _step(echo, what):
                ensure_graph_current(store)
    except BaseException:
        store.close()
        raise
    return store


def _load_retriever(settings: Settings, echo: Echo) -> tuple[Retriever | None, str | None]:
    """The retriever over settings.index_dir, built first if missing or stale; never raises."""
    from assistant.indexing import app_index_exists, open_app_index

    what = "retrieval index built" if not app_index_exists(settings) else "retrieval index loaded"
    try:
        with _step(echo, what):
            return open_app_index(settings, on_progress=_ProgressEcho(echo)), None
    except Exception as exc:  # evidence passages are optional; consultations still work
        log.warning("retrieval index unavailable: %s", exc)
        return None, f"retrieval index could not be built or loaded: {exc}"


class _ProgressEcho:
    """Index build progress for the terminal: a line per stage and per tenth of the chunks."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self._last: tuple[str, int] | None = None

    def __call__(self, progress: IndexProgress) -> None:
        if progress.stage in ("prepare", "ready"):
            return
        tenth = int(10 * progress.fraction) if progress.stage in ("vectors", "embed") else 0
        if (progress.stage, tenth) == self._last:
            return
        self._last = (progress.stage, tenth)
        self.echo(f"  retrieval index: {progress.line()}")


def _retriever_in_background(app: App, echo: Echo) -> None:
    from assistant.indexing import app_index_exists

    if app_index_exists(app.settings):
        app.set_retriever(*_load_retriever(app.settings, echo))
        return
    app.set_retriever(
        None, "the evidence index is being built (first run only); passages appear once it is ready"
    )

    def build() -> None:
        app.set_retriever(*_load_retriever(app.settings, echo))

    # A daemon thread: Ctrl-C must not wait for an embedding batch to finish.
    app._index_thread = threading.Thread(target=build, name="medkg-index-build", daemon=True)
    app._index_thread.start()
    echo("  retrieval index: building in the background (first run only); the app serves meanwhile")


def _agent_context(app: App) -> AgentContext:
    from assistant.agent.context import AgentContext, minilm_embedder

    model_name = app.settings.retrieval.embedding_model
    from assistant.outages import TrackedChatModel

    context = AgentContext(
        # Tracked: a turn answered without the LLM says so (TurnResult.degraded).
        chat_model=TrackedChatModel(app.require_chat_model()),
        graph=app.require_graph(),
        retriever=app.retriever,
        image_analyzer=app.image_analyzer,
        image_disabled_reason=app.disabled.get("vision"),
        embedder_factory=lambda: minilm_embedder(model_name),
        cache_dir=app.settings.data_dir / "cache",
    )
    context.warm_up()
    return context


def _ping_quietly(store: GraphStore | None) -> None:
    for _ in range(3):  # the first ping can meet a dead pooled connection; the driver drops them
        try:
            if store is not None:
                store.ping()
            return
        except Exception:
            continue


def connect_graph(settings: Settings) -> Neo4jGraphStore:
    """A store on the graph server the settings point at (``graph.uri`` must be set)."""
    from kg import connect

    graph = settings.graph
    if graph.uri is None:
        raise ValueError(
            "no graph URI: set NEO4J_URI, or let assistant.app.open_app start the embedded graph"
        )
    return connect(
        graph.uri,
        graph.user,
        graph.password.get_secret_value(),
        graph.database,
        timeout_s=graph.query_timeout_s,
    )


def ensure_graph_current(store: Neo4jGraphStore) -> LoadReport | None:
    """Load the shipped graph into an empty database, or refresh one an older medkg loaded
    (other sources or merge rules); None when the graph is already at the shipped version."""
    from kg import load_graph
    from kg.loader import graph_checksum

    stats = store.stats()
    if stats.labels.get("Disease", 0) and stats.checksum == graph_checksum()[0]:
        return None
    return load_graph(store)
