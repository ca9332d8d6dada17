"""Knowledge graph: merged sources on a Bolt server, noisy naive-Bayes differential, next question.

Public face: ``connect`` (a ``GraphStore`` over the neo4j driver), ``load_graph`` (idempotent,
versioned load of the shipped sources) and ``description_documents`` (texts for retrieval).
"""

from kg.documents import description_documents
from kg.loader import LoadReport, load_graph
from kg.neo4j_store import Neo4jGraphStore, TransientGraphError, connect
from kg.store import GraphError, GraphStore, UnknownFindingError

__all__ = [
    "GraphError",
    "GraphStore",
    "LoadReport",
    "Neo4jGraphStore",
    "TransientGraphError",
    "UnknownFindingError",
    "connect",
    "description_documents",
    "load_graph",
]
