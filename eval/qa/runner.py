"""Run QA items through a ChatModel concurrently, resumably, and score them.

Every request: temperature 0, llama.cpp prompt caching off (``cache_prompt=False``) so an
answer does not depend on which prompt a server slot held before, retrieval and entity
linking from the question stem only. Finished items come from the cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from assistant.llm.base import ChatModel, LLMError, LLMUnavailableError
from eval.qa.cache import ItemResult, ResultCache, cache_key
from eval.qa.extraction import extract_answer
from eval.qa.items import QAItem
from eval.qa.kg_context import KGContext
from eval.qa.metrics import Score, score
from eval.qa.modes import DEFAULT_MAX_TOKENS, Mode
from eval.qa.prompting import QAPrompt, build_fields, load_qa_prompt, prompt_name
from retrieval.base import Passage, Retriever

log = logging.getLogger(__name__)


class MissingResourceError(RuntimeError):
    """A mode needs a retriever or a graph that was not provided."""


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 4
    max_tokens: dict[Mode, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TOKENS))
    passages_k: int = 3
    chars_per_passage: int = 600

    def config_digest(self, mode: Mode) -> str:
        """Short digest of the settings that change an answer, part of the cache key."""
        parts = [f"max_tokens={self.max_tokens[mode]}"]
        if mode.needs_retriever:
            parts.append(f"k={self.passages_k},chars={self.chars_per_passage}")
        return hashlib.sha256(";".join(parts).encode()).hexdigest()[:8]


@dataclass
class ModeRun:
    mode: Mode
    suite: str
    results: list[ItemResult]
    errors: int
    calls: int  # requests sent in this run (cached items send none)
    seconds: float
    score: Score


@dataclass
class QARunner:
    chat: ChatModel
    cache: ResultCache
    retriever: Retriever | None = None
    kg: KGContext | None = None
    options: RunOptions = field(default_factory=RunOptions)
    on_progress: Callable[[str, int, int], None] | None = None
    # Index and graph clients are not promised to be thread-safe; the LLM calls are the
    # slow, parallel part.
    _retriever_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _kg_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _check(self, mode: Mode) -> None:
        if mode.needs_retriever and self.retriever is None:
            raise MissingResourceError(f"mode {mode} needs a retriever (the passage index)")
        if mode.needs_graph and self.kg is None:
            raise MissingResourceError(f"mode {mode} needs the knowledge graph")

    def _passages(self, item: QAItem) -> list[Passage]:
        assert self.retriever is not None
        with self._retriever_lock:
            return self.retriever.search(item.question, k=self.options.passages_k)

    def _facts(self, item: QAItem) -> str:
        assert self.kg is not None
        with self._kg_lock:
            return self.kg.facts_for(item.question)

    def _answer(self, item: QAItem, mode: Mode, prompt: QAPrompt, key: str) -> ItemResult:
        passages = self._passages(item) if mode.needs_retriever else []
        facts = self._facts(item) if mode.needs_graph else ""
        fields = build_fields(
            item, passages=passages, facts=facts, chars_per_passage=self.options.chars_per_passage
        )
        response = self.chat.chat(
            prompt.messages(**fields),
            temperature=0.0,
            max_tokens=self.options.max_tokens[mode],
            cache_prompt=False,
        )
        extraction = extract_answer(response.text, item.options, answer_first=mode.answer_only)
        return ItemResult(
            key=key,
            model=self.chat.model,
            prompt=prompt.name,
            prompt_version=prompt.version,
            mode=mode.value,
            suite=item.suite.value,
            item_id=item.id,
            answer=item.answer,
            prediction=extraction.answer,
            method=extraction.method,
            correct=extraction.answer == item.answer,
            output=response.text,
            n_options=len(item.options),
            latency_s=response.latency_s,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
        )

    def run(self, items: Sequence[QAItem], mode: Mode) -> ModeRun:
        """Answer every item in one mode (items of one suite)."""
        if not items:
            raise ValueError("no items to evaluate")
        suites = {i.suite for i in items}
        if len(suites) != 1:
            raise ValueError(f"run() takes the items of one suite, got {sorted(suites)}")
        suite = next(iter(suites)).value
        self._check(mode)
        prompt = load_qa_prompt(prompt_name(mode.value, items[0].yes_no_maybe))
        config = self.options.config_digest(mode)
        keyed = [
            (
                item,
                cache_key(
                    model=self.chat.model,
                    prompt=prompt.name,
                    prompt_version=prompt.version,
                    mode=mode.value,
                    suite=suite,
                    item_id=item.id,
                    config=config,
                ),
            )
            for item in items
        ]
        todo = [(item, key) for item, key in keyed if key not in self.cache]
        if len(todo) < len(keyed):
            log.info(
                "%s/%s: %d of %d items already done (cache)", suite, mode, len(keyed) - len(todo), len(keyed)
            )
        errors = 0
        started = time.perf_counter()
        done = len(keyed) - len(todo)
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            futures = {pool.submit(self._answer, item, mode, prompt, key): item for item, key in todo}
            try:
                for future in as_completed(futures):
                    try:
                        self.cache.put(future.result())
                    except LLMUnavailableError:
                        raise
                    except LLMError as exc:
                        errors += 1
                        log.warning("%s/%s item %s: %s", suite, mode, futures[future].id, exc)
                    done += 1
                    if self.on_progress:
                        self.on_progress(f"{suite}/{mode}", done, len(keyed))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        seconds = time.perf_counter() - started
        results = [r for _, key in keyed if (r := self.cache.get(key)) is not None]
        return ModeRun(
            mode=mode,
            suite=suite,
            results=results,
            errors=errors,
            calls=len(todo),
            seconds=seconds,
            score=score(
                results,
                suite=suite,
                mode=mode.value,
                model=self.chat.model,
                prompt=prompt.name,
                prompt_version=prompt.version,
                errors=errors,
            ),
        )
