"""A deployment's graph URI may use the routing scheme (neo4j://): kg.connect hands it to the
driver unchanged. Checked against the embedded ArcadeDB Bolt server (a one-member routing
table); a Neo4j cluster is not available here."""

from __future__ import annotations

import pytest

from assistant.settings import Settings
from kg import connect

pytestmark = pytest.mark.integration


def test_neo4j_routing_uri_reaches_the_graph(graph_settings: Settings) -> None:
    graph = graph_settings.graph
    assert graph.uri is not None and graph.uri.startswith("bolt://")
    routing = "neo4j://" + graph.uri.removeprefix("bolt://")
    store = connect(routing, graph.user, graph.password.get_secret_value(), graph.database, timeout_s=10)
    try:
        store.ping()
        assert isinstance(store.stats().labels, dict)
    finally:
        store.close()
