"""Load the merged graph into a Bolt server: idempotent (MERGE, batched UNWIND) and versioned."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from kg import merge, scoring
from kg import queries as q
from kg.merge import GraphContent
from kg.neo4j_store import TransientGraphError
from kg.sources import source_checksums
from kg.store import GraphError

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
BATCH = 500
PACKS = merge.PACKS  # "hpo" (rare diseases via hpo3) is not available in this build


class CypherRunner(Protocol):
    def run(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def stats(self) -> Any: ...


class LoadReport(BaseModel):
    version: str
    checksum: str
    sources: dict[str, str]
    packs: list[str]
    skipped: bool = False
    seconds: float = 0.0
    labels: dict[str, int] = Field(default_factory=dict)
    relations: dict[str, int] = Field(default_factory=dict)
    merge: dict[str, Any] = Field(default_factory=dict)


def graph_checksum(packs: Sequence[str] = PACKS) -> tuple[str, dict[str, str]]:
    """Checksum of the sources and of the model defaults baked into the edges."""
    sums = source_checksums()
    defaults = {
        "p_symptom": merge.DEFAULT_P_SYMPTOM,
        "p_antecedent": merge.DEFAULT_P_ANTECEDENT,
        "p_bounds": [merge.P_MIN, merge.P_MAX],
        "p_unlisted_ddxplus": merge.P_UNLISTED_DDXPLUS_EVIDENCE,
        "merge_rules": merge.RULES_VERSION,
        "leak": [scoring.LEAK_SYMPTOM, scoring.LEAK_HISTORY],
        "schema": SCHEMA_VERSION,
        "packs": sorted(packs),
    }
    payload = json.dumps({"sources": sums, "defaults": defaults}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16], sums


def run_batched(run: CypherRunner, cypher: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        _run_split(run, cypher, rows[start : start + BATCH])


def _run_split(run: CypherRunner, cypher: str, rows: list[dict[str, Any]]) -> None:
    """Run one batch; on a persistent write conflict run its halves (statements are MERGEs)."""
    try:
        run.run(cypher, {"rows": rows})
    except TransientGraphError:
        if len(rows) <= 1:
            raise
        log.info("write conflict on a batch of %d rows: splitting it", len(rows))
        middle = len(rows) // 2
        _run_split(run, cypher, rows[:middle])
        _run_split(run, cypher, rows[middle:])


def _hierarchy_batches(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Split child->parent rows so that no node occurs twice within one batch.

    ArcadeDB (Bolt) rejects, as a concurrent modification, a transaction that adds a second
    edge to a vertex it already changed while the statement also reads it as a match target
    (seen with IS_A); Neo4j does not care. Greedy and order-preserving.
    """
    batches: list[list[dict[str, str]]] = []
    pending = list(rows)
    while pending:
        batch: list[dict[str, str]] = []
        used: set[str] = set()
        rest: list[dict[str, str]] = []
        for row in pending:
            if len(batch) < BATCH and row["child"] not in used and row["parent"] not in used:
                batch.append(row)
                used.update((row["child"], row["parent"]))
            else:
                rest.append(row)
        batches.append(batch)
        pending = rest
    return batches


def _hierarchy(run: CypherRunner, cypher: str, rows: list[dict[str, str]]) -> None:
    for batch in _hierarchy_batches(rows):
        _run_split(run, cypher, batch)


def _clean(props: dict[str, Any]) -> dict[str, Any]:
    # Neo4j stores no null properties and no null inside lists: drop them.
    return {k: v for k, v in props.items() if v is not None}


def load_graph(store: CypherRunner, *, packs: Sequence[str] = PACKS, force: bool = False) -> LoadReport:
    """Load (or refresh) the full merged graph; a graph already at this version is left as is."""
    unknown = sorted(set(packs) - set(PACKS))
    if unknown:
        raise GraphError(f"unknown or unavailable graph packs: {unknown} (available: {list(PACKS)})")
    checksum, sums = graph_checksum(packs)
    version = f"{SCHEMA_VERSION}.{checksum[:8]}"
    started = time.perf_counter()
    content: GraphContent = merge.build_content(packs)
    report = LoadReport(
        version=version, checksum=checksum, sources=sums, packs=list(packs), merge=_merge_dict(content)
    )
    current = store.run(q.VERSION)
    if not force and current and current[0].get("checksum") == checksum:
        report.skipped = True
    else:
        for statement in q.SCHEMA:
            try:
                store.run(statement)
            except GraphError as exc:  # an index is an optimization; loading works without it
                log.warning("schema statement skipped: %s", exc)
        # An empty graph takes CREATE (same result as MERGE there, much faster on ArcadeDB);
        # any other graph, including one a crashed load left half-filled, takes MERGE.
        fresh = not any(store.run(q.LABEL_COUNTS))
        run_batched(store, q.MERGE_SOURCES, content.sources)
        run_batched(
            store,
            q.CREATE_FINDINGS if fresh else q.MERGE_FINDINGS,
            [{"id": f.id, "props": _clean(f.props())} for f in content.findings.values()],
        )
        run_batched(
            store,
            q.CREATE_DISEASES if fresh else q.MERGE_DISEASES,
            [{"id": d.id, "props": _clean(d.props())} for d in content.diseases.values()],
        )
        run_batched(store, q.CREATE_DRUGS if fresh else q.MERGE_DRUGS, content.drugs)
        run_batched(store, q.CREATE_HAS_FINDING if fresh else q.MERGE_HAS_FINDING, content.has_finding)
        _hierarchy(store, q.MERGE_DISEASE_IS_A, content.disease_is_a)
        _hierarchy(store, q.MERGE_FINDING_IS_A, content.finding_is_a)
        _hierarchy(store, q.MERGE_DETAIL_OF, content.detail_of)
        run_batched(store, q.CREATE_TREATS if fresh else q.MERGE_TREATS, content.treats)
        _remove_stale(store, content)
        store.run(
            q.SET_VERSION,
            {
                "version": version,
                "checksum": checksum,
                "sources": [f"{k}:{v}" for k, v in sorted(sums.items())],
                "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    report.seconds = round(time.perf_counter() - started, 3)
    stats = store.stats()
    report.labels, report.relations = stats.labels, stats.relations
    return report


def _remove_stale(store: CypherRunner, content: GraphContent) -> None:
    """Drop what an earlier source release loaded and this one no longer holds."""
    store.run(q.DELETE_STALE_DISEASES, {"ids": list(content.diseases)})
    store.run(q.DELETE_STALE_FINDINGS, {"ids": list(content.findings)})
    store.run(q.DELETE_STALE_DRUGS, {"ids": [d["id"] for d in content.drugs]})
    wanted = {(e["d"], e["f"]) for e in content.has_finding}
    stale = [row for row in store.run(q.STALE_HAS_FINDING) if (row["d"], row["f"]) not in wanted]
    if stale:
        run_batched(store, q.DELETE_HAS_FINDING, stale)


def _merge_dict(content: GraphContent) -> dict[str, Any]:
    data = dict(content.report.__dict__)
    data["merged_pairs"] = len(content.report.merged_pairs)
    return data
