"""Every Cypher statement in kg/queries.py runs on the embedded ArcadeDB Bolt server.

Writes use data the full graph already holds, so the graph is unchanged afterwards.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kg import Neo4jGraphStore
from kg import queries as q
from kg.merge import build_content
from kg.scoring import LEAK_HISTORY, LEAK_SYMPTOM

pytestmark = pytest.mark.integration


def _statements() -> dict[str, str]:
    found = {
        name: value
        for name, value in vars(q).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }
    for index, statement in enumerate(q.SCHEMA):
        found[f"SCHEMA[{index}]"] = statement
    return found


def _params(store: Neo4jGraphStore) -> dict[str, dict[str, Any]]:
    content = build_content()
    finding = next(iter(content.findings.values()))
    disease = content.diseases["DDX:pneumonia"]
    edge = next(e for e in content.has_finding if e["d"] == "DDX:pneumonia")
    version = store.run(q.VERSION)[0]
    ids = {"ids": ["DDX:pneumonia", "DDX:bronchospasm-acute-asthma-exacerbation"]}
    return {
        "MERGE_FINDINGS": {"rows": [{"id": finding.id, "props": {"name": finding.name}}]},
        "MERGE_DISEASES": {"rows": [{"id": disease.id, "props": {"name": disease.name}}]},
        "MERGE_DRUGS": {"rows": content.drugs[:1]},
        "MERGE_SOURCES": {"rows": content.sources[:1]},
        "MERGE_HAS_FINDING": {"rows": [edge]},
        "MERGE_DISEASE_IS_A": {"rows": content.disease_is_a[:1]},
        "MERGE_FINDING_IS_A": {"rows": content.finding_is_a[:1]},
        "MERGE_DETAIL_OF": {"rows": content.detail_of[:1]},
        "MERGE_TREATS": {"rows": content.treats[:1]},
        "SET_VERSION": {
            "version": version["version"],
            "checksum": version["checksum"],
            "sources": version["sources"],
            "loaded_at": "conformance",
        },
        "DELETE_STALE_DISEASES": {"ids": list(content.diseases)},
        "DELETE_STALE_FINDINGS": {"ids": list(content.findings)},
        "DELETE_STALE_DRUGS": {"ids": [d["id"] for d in content.drugs]},
        "DELETE_HAS_FINDING": {"rows": []},
        # CREATE statements are for an empty graph: here they must parse and plan (no rows);
        # the session's fresh full load runs them for real (test_full_load_then_stats_counts).
        "CREATE_FINDINGS": {"rows": []},
        "CREATE_DISEASES": {"rows": []},
        "CREATE_DRUGS": {"rows": []},
        "CREATE_HAS_FINDING": {"rows": []},
        "CREATE_TREATS": {"rows": []},
        "FINDINGS_BY_ID": {"ids": ["E_91", "E_55"]},
        "DISEASES_BY_ID": ids,
        "CANDIDATE_EDGES": {"present": ["E_91", "E_201"]},
        "RANK_IN_CYPHER": {
            "present": ["E_91", "E_201"],
            "absent": ["E_66"],
            "leak_symptom": LEAK_SYMPTOM,
            "leak_history": LEAK_HISTORY,
        },
        "FACTS_FINDINGS": ids,
        "FACTS_TREATMENTS": ids,
        "FACTS_PARENTS": ids,
        # Calibration writes: the edge's own p back (MERGE_HAS_FINDING, later in name order,
        # clears the p_prior / n they add), the current version (SET_VERSION clears the label).
        "CALIBRATE_HAS_FINDING": {"rows": [{**edge, "p_prior": edge["p"], "n": 0}]},
        "CREATE_CALIBRATED_HAS_FINDING": {"rows": []},
        "CALIBRATION_PRIORS": ids,
        "SET_CALIBRATION": {"version": version["version"], "label": "conformance"},
    }


# Statements expected to return rows on the full graph (reads).
RETURNS_ROWS = {
    "PING",
    "VERSION",
    "LABEL_COUNTS",
    "RELATION_COUNTS",
    "FINDINGS_ALL",
    "FINDINGS_BY_ID",
    "DISEASES_RANKABLE",
    "DISEASES_BY_ID",
    "MODEL_EDGES",
    "CANDIDATE_EDGES",
    "RANK_IN_CYPHER",
    "FACTS_FINDINGS",
    "FACTS_TREATMENTS",
    "FACTS_PARENTS",
    "STALE_HAS_FINDING",
    "CALIBRATION_PRIORS",
    "FINDING_KINDS",
}


@pytest.mark.parametrize("name", sorted(_statements()))
def test_every_query_runs_on_the_embedded_server(graph_store: Neo4jGraphStore, name: str) -> None:
    statement = _statements()[name]
    before = graph_store.stats()
    rows = graph_store.run(statement, _params(graph_store).get(name, {}))
    if name in RETURNS_ROWS:
        assert rows, f"{name} returned no rows"
    after = graph_store.stats()
    assert after.labels == before.labels and after.relations == before.relations


def test_every_parameter_is_supplied() -> None:
    """A statement with $parameters must have a parameter set above (so it really runs)."""
    for name, statement in _statements().items():
        needed = set(re.findall(r"\$([a-z_]+)", statement))
        if needed:
            assert name in _PARAM_NAMES, f"{name} needs parameters {needed}"


_PARAM_NAMES = {
    "MERGE_FINDINGS",
    "MERGE_DISEASES",
    "MERGE_DRUGS",
    "MERGE_SOURCES",
    "MERGE_HAS_FINDING",
    "MERGE_DISEASE_IS_A",
    "MERGE_FINDING_IS_A",
    "MERGE_DETAIL_OF",
    "MERGE_TREATS",
    "SET_VERSION",
    "DELETE_STALE_DISEASES",
    "DELETE_STALE_FINDINGS",
    "DELETE_STALE_DRUGS",
    "DELETE_HAS_FINDING",
    "CREATE_FINDINGS",
    "CREATE_DISEASES",
    "CREATE_DRUGS",
    "CREATE_HAS_FINDING",
    "CREATE_TREATS",
    "FINDINGS_BY_ID",
    "DISEASES_BY_ID",
    "CANDIDATE_EDGES",
    "RANK_IN_CYPHER",
    "FACTS_FINDINGS",
    "FACTS_TREATMENTS",
    "FACTS_PARENTS",
    "CALIBRATE_HAS_FINDING",
    "CREATE_CALIBRATED_HAS_FINDING",
    "CALIBRATION_PRIORS",
    "SET_CALIBRATION",
}
