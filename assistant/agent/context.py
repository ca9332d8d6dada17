"""What the agent needs at run time: the LLM, the graph, the retriever, the image analyzer.

Built by ``assistant.app.open_app`` (or directly in tests). It also holds caches built from the
graph once per process: the finding lexicon with its name embeddings and the disease-name index.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.agent.state import AgentOptions
from assistant.imaging import ImageAnalyzer
from assistant.llm.base import ChatModel
from assistant.safety import DiseaseNameIndex
from assistant.text import FindingLexicon
from kg.models import Evidence
from kg.store import GraphStore
from retrieval.base import Retriever

log = logging.getLogger(__name__)

Embedder = Callable[[list[str]], np.ndarray]


def minilm_embedder(model_name: str = "all-MiniLM-L6-v2") -> Embedder:
    """The retrieval package's embedder for ``model_name`` (the default resolves to the bundled
    MiniLM): one loaded model per process, shared with the retrieval index."""
    from retrieval.embedding import get_embedder

    model = get_embedder(model_name)

    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(texts)

    return embed


@dataclass
class AgentContext:
    chat_model: ChatModel
    graph: GraphStore
    retriever: Retriever | None = None
    image_analyzer: ImageAnalyzer | None = None
    image_disabled_reason: str | None = "no image model is configured (settings.vision.model)"
    embedder_factory: Callable[[], Embedder | None] | None = None
    cache_dir: Path | None = None
    _lexicon: FindingLexicon | None = field(default=None, init=False, repr=False)
    _disease_names: DiseaseNameIndex | None = field(default=None, init=False, repr=False)
    _embedder: Embedder | None = field(default=None, init=False, repr=False)
    _embedder_loaded: bool = field(default=False, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    # LLM phrasings of graph questions, per process (temperature 0: the same question reads
    # the same); only successful ones are kept, so an LLM outage is not remembered.
    phrasings: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # ------------------------------------------------------------------ caches
    @property
    def embedder(self) -> Embedder | None:
        with self._lock:
            if not self._embedder_loaded:
                self._embedder_loaded = True
                if self.embedder_factory is not None:
                    try:
                        self._embedder = self.embedder_factory()
                    except Exception as exc:  # the lexicon still works without embeddings
                        log.warning("embedding model unavailable, exact matching only: %s", exc)
            return self._embedder

    @property
    def lexicon(self) -> FindingLexicon:
        with self._lock:
            if self._lexicon is None:
                lexicon = FindingLexicon.build(self.graph.findings())
                embed = self.embedder
                if embed is not None and lexicon.embed_texts:
                    lexicon.attach_embeddings(self._finding_embeddings(lexicon.embed_texts, embed))
                self._lexicon = lexicon
            return self._lexicon

    @property
    def disease_names(self) -> DiseaseNameIndex:
        with self._lock:
            if self._disease_names is None:
                self._disease_names = DiseaseNameIndex(self.graph.diseases())
            return self._disease_names

    def warm_up(self) -> None:
        """Build the caches now (first consultation turn would pay for it otherwise)."""
        _ = self.lexicon, self.disease_names
        try:  # the graph store may build its scoring model on the first query
            self.graph.differential(Evidence(), top_k=1)
        except Exception:
            log.debug("graph warm-up query failed", exc_info=True)

    def refresh(self) -> None:
        """Forget the caches (after the graph was reloaded)."""
        with self._lock:
            self._lexicon = None
            self._disease_names = None

    def _finding_embeddings(self, texts: list[str], embed: Embedder) -> np.ndarray:
        digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
        path = self.cache_dir / f"finding-embeddings-{digest}.npy" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                matrix = np.load(path)
                if matrix.shape[0] == len(texts):
                    return matrix
            except (OSError, ValueError):
                log.warning("ignoring unreadable embedding cache %s", path)
        matrix = embed(texts)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, matrix)
                tmp.replace(path)
            except OSError:
                log.warning("could not write embedding cache %s", path)
        return matrix


@dataclass(frozen=True)
class AgentRun:
    """The LangGraph run context (``context_schema``): what every node may use, passed with
    each invocation instead of being baked into the compiled graph."""

    agent: AgentContext
    options: AgentOptions
