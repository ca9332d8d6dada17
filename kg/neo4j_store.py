"""``GraphStore`` over the official neo4j driver (Bolt): Neo4j 5.26+/2025.x or embedded ArcadeDB."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from neo4j import Driver, GraphDatabase, Query
from neo4j import exceptions as neo4j_errors

from kg import queries as q
from kg.models import (
    Differential,
    DiseaseConcept,
    DiseaseFacts,
    Evidence,
    FindingConcept,
    FindingLink,
    GraphStats,
    NextStep,
    StopRule,
    Treatment,
)
from kg.scoring import DiagnosisModel, DiseaseMeta, FindingMeta
from kg.store import GraphError

log = logging.getLogger(__name__)


class TransientGraphError(GraphError):
    """A write conflicted with itself or another writer and kept failing after retries.

    ArcadeDB reports some large single transactions (many edges on one vertex) this way; a
    smaller batch of the same idempotent statement goes through.
    """


def _finding_concept(row: dict[str, Any]) -> FindingConcept:
    codes = row.get("value_codes") or []
    names = row.get("value_names") or []
    return FindingConcept(
        id=row["id"],
        name=row["name"],
        synonyms=list(row.get("synonyms") or []),
        kind=row.get("kind") or "symptom",
        question=row.get("question"),
        value_type=row.get("value_type") or "binary",
        allowed_values=dict(zip(codes, names, strict=False)),
        red_flag=bool(row.get("red_flag")),
        sources=list(row.get("sources") or []),
        value_of=row.get("value_of"),
    )


def _disease_concept(row: dict[str, Any]) -> DiseaseConcept:
    return DiseaseConcept(
        id=row["id"],
        name=row["name"],
        synonyms=list(row.get("synonyms") or []),
        icd10=list(row.get("icd10") or []),
        severity=row.get("severity"),
        description=row.get("description"),
        prior=row.get("prior"),
        sources=list(row.get("sources") or []),
    )


def _edge_path(disease: str, p: float, source: str | None, finding_id: str, finding: str) -> str:
    return (
        f"(:Disease {{name: {disease!r}}})-[:HAS_FINDING {{p: {p:.2f}, source: {source!r}}}]->"
        f"(:Finding {{id: {finding_id!r}, name: {finding!r}}})"
    )


class Neo4jGraphStore:
    """The knowledge graph behind a Bolt server, with the scoring matrix cached per graph version."""

    TRANSIENT_RETRIES = 3

    def __init__(
        self, driver: Driver, database: str, *, timeout_s: float = 30.0, version_ttl_s: float = 1.0
    ) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s
        self._version_ttl_s = version_ttl_s
        self._model: DiagnosisModel | None = None
        self._model_version: str | None = None
        self._version_checked_at = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def run(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one parameterized statement (auto-commit) and return its rows as dicts."""
        for attempt in range(self.TRANSIENT_RETRIES + 1):
            try:
                return self._run_once(cypher, params)
            except neo4j_errors.TransientError as exc:
                # ArcadeDB reports MVCC conflicts between concurrent writers as transient.
                if attempt == self.TRANSIENT_RETRIES:
                    raise TransientGraphError(
                        f"graph query failed after retries: {exc.code}: {exc.message}"
                    ) from exc
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _run_once(self, cypher: str, params: dict[str, Any] | None) -> list[dict[str, Any]]:
        try:
            with self._driver.session(database=self._database) as session:
                result = session.run(Query(cypher, timeout=self._timeout_s), params or {})
                return [record.data() for record in result]
        except neo4j_errors.TransientError:
            raise
        except neo4j_errors.AuthError as exc:
            raise GraphError(f"graph server refused the credentials: {exc.message}") from exc
        except (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired, OSError) as exc:
            raise GraphError(f"graph server unreachable: {exc}. Is it running? Check NEO4J_URI.") from exc
        except neo4j_errors.Neo4jError as exc:
            raise GraphError(f"graph query failed: {exc.code}: {exc.message}") from exc
        except neo4j_errors.DriverError as exc:
            raise GraphError(f"graph driver error: {exc}") from exc

    def ping(self) -> None:
        self.run(q.PING)

    def close(self) -> None:
        self._driver.close()

    # ------------------------------------------------------------------ catalogue
    def version(self) -> tuple[str | None, str | None]:
        rows = self.run(q.VERSION)
        if not rows:
            return None, None
        return rows[0].get("version"), rows[0].get("checksum")

    def stats(self) -> GraphStats:
        labels: dict[str, int] = {}
        for row in self.run(q.LABEL_COUNTS):
            for label in row["labels"] or ["(none)"]:
                labels[label] = labels.get(label, 0) + int(row["n"])
        relations = {row["type"]: int(row["n"]) for row in self.run(q.RELATION_COUNTS)}
        rows = self.run(q.VERSION)
        current = rows[0] if rows else {}
        return GraphStats(
            labels=dict(sorted(labels.items())),
            relations=dict(sorted(relations.items())),
            version=current.get("version"),
            checksum=current.get("checksum"),
            calibration=current.get("calibration"),
        )

    def findings(self, ids: Sequence[str] | None = None) -> list[FindingConcept]:
        rows = self.run(q.FINDINGS_ALL) if ids is None else self.run(q.FINDINGS_BY_ID, {"ids": list(ids)})
        return [_finding_concept(row) for row in rows]

    def diseases(self, ids: Sequence[str] | None = None) -> list[DiseaseConcept]:
        """The rankable diseases (those with findings), or any disease by id (DOID classes too)."""
        rows = (
            self.run(q.DISEASES_RANKABLE) if ids is None else self.run(q.DISEASES_BY_ID, {"ids": list(ids)})
        )
        return [_disease_concept(row) for row in rows]

    # ------------------------------------------------------------------ reasoning
    def model(self) -> DiagnosisModel:
        """The scoring matrix, rebuilt when the graph version changes (checked at most every ttl)."""
        with self._lock:
            now = time.monotonic()
            if self._model is not None and now - self._version_checked_at < self._version_ttl_s:
                return self._model
            version, _ = self.version()
            self._version_checked_at = now
            if self._model is None or version != self._model_version:
                self._model = self.build_model()
                self._model_version = version
                log.info(
                    "scoring matrix built: %d diseases x %d findings",
                    len(self._model.diseases),
                    len(self._model.findings),
                )
            return self._model

    def build_model(self, edges: list[dict[str, Any]] | None = None) -> DiagnosisModel:
        finding_rows = self.run(q.FINDINGS_ALL)
        disease_rows = self.run(q.DISEASES_RANKABLE)
        edges = self.run(q.MODEL_EDGES) if edges is None else edges
        findings = [
            FindingMeta(
                id=row["id"],
                name=row["name"],
                kind=row.get("kind") or "symptom",
                question=row.get("question"),
                value_type=row.get("value_type") or "binary",
                default_value=row.get("default_value"),
                parent=row.get("parent"),
                red_flag=bool(row.get("red_flag")),
                sources=tuple(row.get("sources") or ()),
                same_as=tuple(row.get("same_as") or ()),
                concept=_finding_concept(row),
            )
            for row in finding_rows
        ]
        diseases = [
            DiseaseMeta(
                id=row["id"],
                name=row["name"],
                severity=row.get("severity"),
                icd10=list(row.get("icd10") or []),
                sources=tuple(row.get("sources") or ()),
                prior=row.get("prior"),
            )
            for row in disease_rows
        ]
        return DiagnosisModel(
            diseases,
            findings,
            ((e["d"], e["f"], float(e["p"]), str(e.get("source") or "")) for e in edges),
            age_odds={row["id"]: list(row.get("age_odds") or []) for row in disease_rows},
            sex_odds={row["id"]: list(row.get("sex_odds") or []) for row in disease_rows},
        )

    def differential(self, evidence: Evidence, top_k: int = 10) -> Differential:
        return self.model().differential(evidence, top_k=top_k)

    def next_step(
        self, evidence: Evidence, differential: Differential, rule: StopRule = StopRule()
    ) -> NextStep:
        return self.model().next_step(evidence, differential, rule)

    def disease_facts(self, disease_ids: Sequence[str], max_findings: int = 8) -> list[DiseaseFacts]:
        ids = list(dict.fromkeys(disease_ids))
        concepts = {d.id: d for d in self.diseases(ids)}
        findings: dict[str, list[FindingLink]] = {}
        for row in self.run(q.FACTS_FINDINGS, {"ids": ids}):
            links = findings.setdefault(row["disease"], [])
            if len(links) < max_findings:
                name = concepts[row["disease"]].name if row["disease"] in concepts else row["disease"]
                links.append(
                    FindingLink(
                        finding_id=row["id"],
                        finding_name=row["name"],
                        p=float(row["p"]),
                        present=True,
                        source=row.get("source"),
                        path=_edge_path(name, float(row["p"]), row.get("source"), row["id"], row["name"]),
                    )
                )
        treatments: dict[str, list[Treatment]] = {}
        for row in self.run(q.FACTS_TREATMENTS, {"ids": ids}):
            treatments.setdefault(row["disease"], []).append(
                Treatment(drug_id=row["id"], drug_name=row["name"], kind=row.get("kind") or "")
            )
        parents: dict[str, list[str]] = {}
        for row in self.run(q.FACTS_PARENTS, {"ids": ids}):
            parents.setdefault(row["disease"], []).append(row["name"])
        return [
            DiseaseFacts(
                disease=concepts[did],
                findings=findings.get(did, []),
                treatments=treatments.get(did, []),
                parents=parents.get(did, []),
            )
            for did in ids
            if did in concepts
        ]


def connect(uri: str, user: str, password: str, database: str, *, timeout_s: float = 30.0) -> Neo4jGraphStore:
    """Open a Bolt connection and check it answers; ``GraphError`` (fast) when it does not."""
    try:
        driver = GraphDatabase.driver(
            uri,
            auth=(user, password),
            connection_timeout=min(timeout_s, 5.0),
            connection_acquisition_timeout=timeout_s,
            max_transaction_retry_time=min(timeout_s, 5.0),
        )
    except (ValueError, neo4j_errors.ConfigurationError) as exc:
        raise GraphError(f"invalid graph URI {uri!r}: {exc}") from exc
    store = Neo4jGraphStore(driver, database, timeout_s=timeout_s)
    try:
        store.ping()
    except GraphError:
        driver.close()
        raise
    return store
