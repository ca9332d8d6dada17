"""Every Cypher statement medkg sends to the graph, in one place.

Rules: only the subset both Neo4j 5.26+/2025.x and ArcadeDB's Bolt/Cypher accept (no APOC,
no CALL subqueries, no fulltext/vector DDL, no map properties); every value is a parameter,
no text from a user or an LLM is ever concatenated into a statement.
``tests/kg/test_queries_conformance.py`` runs each statement below against the embedded server.
"""

from __future__ import annotations

PING = "RETURN 1 AS ok"

# ---------------------------------------------------------------- schema (idempotent)
SCHEMA = (
    "CREATE CONSTRAINT IF NOT EXISTS FOR (n:Disease) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT IF NOT EXISTS FOR (n:Finding) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT IF NOT EXISTS FOR (n:Drug) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT IF NOT EXISTS FOR (n:Source) REQUIRE n.id IS UNIQUE",
)

# ---------------------------------------------------------------- loading (batched UNWIND + MERGE)
MERGE_FINDINGS = "UNWIND $rows AS row MERGE (n:Finding {id: row.id}) SET n += row.props"
MERGE_DISEASES = "UNWIND $rows AS row MERGE (n:Disease {id: row.id}) SET n += row.props"
MERGE_DRUGS = "UNWIND $rows AS row MERGE (n:Drug {id: row.id}) SET n.name = row.name"
MERGE_SOURCES = (
    "UNWIND $rows AS row MERGE (n:Source {id: row.id}) "
    "SET n.name = row.name, n.version = row.version, n.license = row.license, "
    "n.url = row.url, n.checksum = row.checksum"
)
MERGE_HAS_FINDING = (
    "UNWIND $rows AS row MATCH (d:Disease {id: row.d}) MATCH (f:Finding {id: row.f}) "
    "MERGE (d)-[r:HAS_FINDING]->(f) SET r.p = row.p, r.source = row.source, r.p_source = row.p_source "
    "REMOVE r.p_prior, r.n"  # a reload drops any calibration (kg/calibration.py)
)
MERGE_DISEASE_IS_A = (
    "UNWIND $rows AS row MATCH (c:Disease {id: row.child}) MATCH (p:Disease {id: row.parent}) "
    "MERGE (c)-[:IS_A]->(p)"
)
MERGE_FINDING_IS_A = (
    "UNWIND $rows AS row MATCH (c:Finding {id: row.child}) MATCH (p:Finding {id: row.parent}) "
    "MERGE (c)-[:IS_A]->(p)"
)
MERGE_DETAIL_OF = (
    "UNWIND $rows AS row MATCH (c:Finding {id: row.child}) MATCH (p:Finding {id: row.parent}) "
    "MERGE (c)-[:DETAIL_OF]->(p)"
)
MERGE_TREATS = (
    "UNWIND $rows AS row MATCH (g:Drug {id: row.drug}) MATCH (d:Disease {id: row.disease}) "
    "MERGE (g)-[r:TREATS]->(d) SET r.kind = row.kind"
)
# Fresh (empty) graph only: CREATE is ~2.5x faster than MERGE on ArcadeDB and equivalent there.
CREATE_FINDINGS = "UNWIND $rows AS row CREATE (n:Finding {id: row.id}) SET n += row.props"
CREATE_DISEASES = "UNWIND $rows AS row CREATE (n:Disease {id: row.id}) SET n += row.props"
CREATE_DRUGS = "UNWIND $rows AS row CREATE (n:Drug {id: row.id, name: row.name})"
CREATE_HAS_FINDING = (
    "UNWIND $rows AS row MATCH (d:Disease {id: row.d}) MATCH (f:Finding {id: row.f}) "
    "CREATE (d)-[:HAS_FINDING {p: row.p, source: row.source, p_source: row.p_source}]->(f)"
)
CREATE_TREATS = (
    "UNWIND $rows AS row MATCH (g:Drug {id: row.drug}) MATCH (d:Disease {id: row.disease}) "
    "CREATE (g)-[:TREATS {kind: row.kind}]->(d)"
)
SET_VERSION = (
    "MERGE (v:GraphVersion {key: 'current'}) "
    "SET v.version = $version, v.checksum = $checksum, v.sources = $sources, v.loaded_at = $loaded_at "
    "REMOVE v.calibration"
)
# Calibration from patient records (kg/calibration.py): p learned, the shipped p kept as p_prior.
CALIBRATE_HAS_FINDING = (
    "UNWIND $rows AS row MATCH (d:Disease {id: row.d})-[r:HAS_FINDING]->(f:Finding {id: row.f}) "
    "SET r.p = row.p, r.p_prior = row.p_prior, r.n = row.n, r.p_source = 'calibrated'"
)
CREATE_CALIBRATED_HAS_FINDING = (
    "UNWIND $rows AS row MATCH (d:Disease {id: row.d}) MATCH (f:Finding {id: row.f}) "
    "CREATE (d)-[:HAS_FINDING {p: row.p, p_prior: row.p_prior, n: row.n, source: 'calibration', "
    "p_source: 'calibrated'}]->(f)"
)
SET_CALIBRATION = "MATCH (v:GraphVersion {key: 'current'}) SET v.version = $version, v.calibration = $label"
# Removal of what a newer source release no longer holds (ids computed by the loader).
DELETE_STALE_DISEASES = "MATCH (n:Disease) WHERE NOT n.id IN $ids DETACH DELETE n"
DELETE_STALE_FINDINGS = "MATCH (n:Finding) WHERE NOT n.id IN $ids DETACH DELETE n"
DELETE_STALE_DRUGS = "MATCH (n:Drug) WHERE NOT n.id IN $ids DETACH DELETE n"
STALE_HAS_FINDING = "MATCH (d:Disease)-[r:HAS_FINDING]->(f:Finding) RETURN d.id AS d, f.id AS f"
DELETE_HAS_FINDING = (
    "UNWIND $rows AS row MATCH (d:Disease {id: row.d})-[r:HAS_FINDING]->(f:Finding {id: row.f}) DELETE r"
)

# ---------------------------------------------------------------- reads
VERSION = (
    "MATCH (v:GraphVersion) RETURN v.version AS version, v.checksum AS checksum, v.sources AS sources, "
    "v.calibration AS calibration"
)
CALIBRATION_PRIORS = (
    "MATCH (d:Disease)-[r:HAS_FINDING]->(f:Finding) WHERE d.id IN $ids "
    "RETURN d.id AS d, f.id AS f, r.p AS p, r.p_prior AS p_prior"
)
FINDING_KINDS = "MATCH (f:Finding) RETURN f.id AS id, f.kind AS kind"
LABEL_COUNTS = "MATCH (n) RETURN labels(n) AS labels, count(*) AS n"
RELATION_COUNTS = "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n"

_FINDING_FIELDS = (
    "f.id AS id, f.name AS name, f.synonyms AS synonyms, f.kind AS kind, f.question AS question, "
    "f.value_type AS value_type, f.value_codes AS value_codes, f.value_names AS value_names, "
    "f.default_value AS default_value, f.parent AS parent, f.red_flag AS red_flag, f.sources AS sources, "
    "f.value_of AS value_of, f.same_as AS same_as"
)
FINDINGS_ALL = f"MATCH (f:Finding) RETURN {_FINDING_FIELDS} ORDER BY id"
FINDINGS_BY_ID = f"MATCH (f:Finding) WHERE f.id IN $ids RETURN {_FINDING_FIELDS} ORDER BY id"

_DISEASE_FIELDS = (
    "d.id AS id, d.name AS name, d.synonyms AS synonyms, d.icd10 AS icd10, d.severity AS severity, "
    "d.description AS description, d.sources AS sources, d.age_odds AS age_odds, d.sex_odds AS sex_odds, "
    "d.prior AS prior"
)
DISEASES_RANKABLE = f"MATCH (d:Disease) WHERE d.rankable = true RETURN {_DISEASE_FIELDS} ORDER BY id"
DISEASES_BY_ID = f"MATCH (d:Disease) WHERE d.id IN $ids RETURN {_DISEASE_FIELDS} ORDER BY id"

# The whole likelihood matrix (cached by the store per graph version).
MODEL_EDGES = (
    "MATCH (d:Disease)-[r:HAS_FINDING]->(f:Finding) RETURN d.id AS d, f.id AS f, r.p AS p, r.source AS source"
)

# Alternative 1 (benchmark): only the candidate subgraph for the evidence.
CANDIDATE_EDGES = (
    "MATCH (c:Disease)-[:HAS_FINDING]->(e:Finding) WHERE e.id IN $present "
    "WITH DISTINCT c "
    "MATCH (c)-[r:HAS_FINDING]->(f:Finding) "
    "RETURN c.id AS d, f.id AS f, r.p AS p, r.source AS source"
)

# Alternative 2 (benchmark): the ranking computed inside the database. The score is a
# log-likelihood ratio against the leak (the leak terms are the same for every disease and
# cancel in the normalization), plus the age/sex log odds.
RANK_IN_CYPHER = (
    "MATCH (c:Disease)-[:HAS_FINDING]->(e:Finding) WHERE e.id IN $present "
    "WITH DISTINCT c "
    "MATCH (c)-[r:HAS_FINDING]->(f:Finding) WHERE f.id IN $present OR f.id IN $absent "
    "WITH c, r, f, CASE WHEN f.kind IN ['history', 'risk_factor'] "
    "THEN $leak_history ELSE $leak_symptom END AS leak "
    "WITH c, sum(CASE WHEN f.id IN $present THEN log(r.p) - log(leak) "
    "ELSE log(1.0 - r.p) - log(1.0 - leak) END) AS llr "
    "RETURN c.id AS id, llr, c.age_odds AS age_odds, c.sex_odds AS sex_odds"
)

FACTS_FINDINGS = (
    "MATCH (d:Disease)-[r:HAS_FINDING]->(f:Finding) WHERE d.id IN $ids "
    "RETURN d.id AS disease, f.id AS id, f.name AS name, r.p AS p, r.source AS source "
    "ORDER BY disease, p DESC, id"
)
FACTS_TREATMENTS = (
    "MATCH (g:Drug)-[t:TREATS]->(d:Disease) WHERE d.id IN $ids "
    "RETURN d.id AS disease, g.id AS id, g.name AS name, t.kind AS kind ORDER BY disease, name"
)
FACTS_PARENTS = (
    "MATCH (d:Disease)-[:IS_A]->(p:Disease) WHERE d.id IN $ids "
    "RETURN d.id AS disease, p.name AS name ORDER BY name"
)
