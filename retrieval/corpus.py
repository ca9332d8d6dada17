"""Documents of the retrieval corpus: the shipped MedQuAD answers plus documents passed in.

MedQuAD (Ben Abacha & Demner-Fushman 2019, CC BY 4.0) ships in ``retrieval/data/medquad.jsonl.gz``
(only the 16,407 pairs that carry an answer; see ``retrieval/data/NOTICE.md``). The shipped file
is produced from the original XML by :func:`pack_medquad` (``python -m retrieval.pack_medquad``).
"""

from __future__ import annotations

import gzip
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
MEDQUAD_FILE = DATA_DIR / "medquad.jsonl.gz"
MEDQUAD_LICENSE = "CC-BY-4.0"
MEDQUAD_SOURCE = "medquad"

_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True)
class Document:
    """One source document before chunking."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    url: str | None = None
    license: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Document:
        """Build from a plain dict (id, text, title, source, url, license, any other str keys)."""
        missing = [key for key in ("id", "text") if not raw.get(key)]
        if missing:
            raise ValueError(f"document lacks {', '.join(missing)}: {str(raw.get('id', '?'))[:80]}")
        known = {"id", "text", "title", "source", "url", "license", "metadata"}
        metadata = {k: str(v) for k, v in raw.items() if k not in known and v is not None}
        metadata.update({k: str(v) for k, v in dict(raw.get("metadata") or {}).items()})
        return cls(
            id=str(raw["id"]),
            text=str(raw["text"]),
            title=str(raw.get("title") or ""),
            source=str(raw.get("source") or ""),
            url=str(raw["url"]) if raw.get("url") else None,
            license=str(raw["license"]) if raw.get("license") else None,
            metadata=metadata,
        )


def clean_text(text: str) -> str:
    """Collapse the XML's indentation runs while keeping paragraph breaks."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_medquad_xml(path: Path) -> Iterator[dict[str, str]]:
    """Answered QA pairs of one MedQuAD XML file as flat records."""
    root = ET.parse(path).getroot()
    focus = (root.findtext("Focus") or "").strip()
    collection = path.parent.name
    for pair in root.iter("QAPair"):
        question = pair.find("Question")
        answer = clean_text(pair.findtext("Answer") or "")
        if question is None or not answer:
            continue
        yield {
            "qid": question.get("qid", ""),
            "qtype": question.get("qtype", ""),
            "question": clean_text(question.text or ""),
            "answer": answer,
            "focus": focus,
            "source": root.get("source", ""),
            "collection": collection,
            "url": root.get("url", ""),
        }


def pack_medquad(
    medquad_dir: Path,
    out_path: Path = MEDQUAD_FILE,
    reject: Callable[[Document], str | None] | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Write the answered MedQuAD pairs as gzip JSONL (sorted, so the file is reproducible).

    ``reject`` (the benchmark guard) names pairs that must not ship; returns (written, rejected).
    """
    by_key: dict[tuple[str, str], dict[str, str]] = {}
    for xml in sorted(medquad_dir.glob("*/*.xml")):
        for rec in parse_medquad_xml(xml):
            # A few XML files repeat a pair (same collection and qid): keep the first.
            by_key.setdefault((rec["collection"], rec["qid"]), rec)
    records = [by_key[key] for key in sorted(by_key)]
    rejected: list[tuple[str, str]] = []
    if reject is not None:
        kept = []
        for rec in records:
            why = reject(medquad_document(rec))
            if why is None:
                kept.append(rec)
            else:
                rejected.append((medquad_doc_id(rec), why))
        records = kept
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the gzip bytes identical across runs.
    with (
        open(out_path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz,
    ):
        for rec in records:
            gz.write((json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode())
    return len(records), rejected


def load_medquad_records(path: Path = MEDQUAD_FILE, limit: int | None = None) -> list[dict[str, str]]:
    """The shipped MedQuAD records, in file order (first ``limit`` only when given)."""
    if not path.is_file():
        raise FileNotFoundError(f"MedQuAD corpus file missing: {path} (python -m retrieval.pack_medquad)")
    out: list[dict[str, str]] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            out.append(json.loads(line))
    return out


def medquad_doc_id(rec: Mapping[str, str]) -> str:
    # qids repeat across collections (GARD and GHR both start at 0000001), so name the collection.
    return f"medquad:{rec['collection']}:{rec['qid']}"


def medquad_document(rec: Mapping[str, str]) -> Document:
    """A MedQuAD answer as a document: the answer is the text; the question is not indexed."""
    return Document(
        id=medquad_doc_id(rec),
        text=rec["answer"],
        title=rec.get("focus", ""),
        source=MEDQUAD_SOURCE,
        url=rec.get("url") or None,
        license=MEDQUAD_LICENSE,
        metadata={
            "qid": rec["qid"],
            "qtype": rec.get("qtype", ""),
            "collection": rec.get("collection", ""),
            "publisher": rec.get("source", ""),
        },
    )


def sample_stratified(records: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """``limit`` records spread evenly over the file (every collection represented), deterministic."""
    if limit >= len(records):
        return list(records)
    step = len(records) / limit
    return [records[int(i * step)] for i in range(limit)]


def answer_key(text: str) -> str:
    return " ".join(text.lower().split())


def medquad_documents(path: Path = MEDQUAD_FILE, limit: int | None = None) -> list[Document]:
    """MedQuAD documents; with ``limit`` an evenly spread subset across all collections.

    Some answers are shared verbatim by several questions (e.g. one GHR page answering
    "what is X" and "what causes X"); each distinct answer is indexed once, under the first
    pair that carries it (see :func:`canonical_doc_ids`).
    """
    records = load_medquad_records(path)
    if limit is not None:
        records = sample_stratified(records, max(0, limit))
    seen: set[str] = set()
    docs: list[Document] = []
    for rec in records:
        key = answer_key(rec["answer"])
        if key in seen:
            continue
        seen.add(key)
        docs.append(medquad_document(rec))
    return docs


def canonical_doc_ids(records: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Map each record's answer text to the id of the document that indexes it (first carrier)."""
    out: dict[str, str] = {}
    for rec in records:
        out.setdefault(answer_key(rec["answer"]), medquad_doc_id(rec))
    return out


def documents_from_mappings(raw_docs: Iterable[Mapping[str, Any] | Document]) -> list[Document]:
    return [d if isinstance(d, Document) else Document.from_mapping(d) for d in raw_docs]
