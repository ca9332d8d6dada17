"""The manifest decides: a matching index is reused, any mismatch rebuilds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import build_or_load_index, load_index
from retrieval.corpus import medquad_documents
from retrieval.embedding import resolve_model

pytestmark = pytest.mark.integration


def _docs(extra: str = "") -> list[dict[str, str]]:
    docs = [
        {"id": d.id, "title": d.title, "text": d.text, "source": "notes", "license": "CC-BY-4.0"}
        for d in medquad_documents(limit=12)
    ]
    docs[0]["text"] += extra
    return docs


def _built_at(index_dir: Path) -> str:
    return str(json.loads((index_dir / "manifest.json").read_text())["created_at"]) + str(
        (index_dir / "manifest.json").stat().st_mtime_ns
    )


def test_mismatch_triggers_rebuild(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    first = build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False)
    stamp = _built_at(index_dir)

    same = build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False)
    assert _built_at(index_dir) == stamp  # reused
    assert [c.id for c in same.chunks] == [c.id for c in first.chunks]

    changed = build_or_load_index(index_dir, extra_documents=_docs(" Added sentence."), include_medquad=False)
    assert _built_at(index_dir) != stamp  # corpus change -> rebuilt
    assert changed.manifest.corpus_checksum != first.manifest.corpus_checksum
    stamp = _built_at(index_dir)

    # Same weights under another name: the manifest records the name, so it rebuilds.
    other_model = resolve_model("all-MiniLM-L6-v2")
    renamed = build_or_load_index(
        index_dir, model=other_model, extra_documents=_docs(" Added sentence."), include_medquad=False
    )
    assert _built_at(index_dir) != stamp
    assert renamed.manifest.model == other_model
    stamp = _built_at(index_dir)

    kind = build_or_load_index(
        index_dir,
        extra_documents=_docs(" Added sentence."),
        include_medquad=False,
        model=other_model,
        index_kind="hnsw",
    )
    assert kind.manifest.index_kind == "hnsw" and _built_at(index_dir) != stamp

    # A reader refuses an index built with another model instead of misusing it.
    with pytest.raises(FileNotFoundError, match="built with"):
        load_index(index_dir, model="all-MiniLM-L6-v2")


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False)
    (index_dir / "dense.faiss").write_bytes(b"garbage")
    again = build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False)
    assert again.search("symptoms", 3)
    assert (index_dir / "dense.faiss").stat().st_size > 100


def test_force_rebuilds(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False)
    stamp = _built_at(index_dir)
    build_or_load_index(index_dir, extra_documents=_docs(), include_medquad=False, force=True)
    assert _built_at(index_dir) != stamp
