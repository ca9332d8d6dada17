"""The shipped vector artifact: int8 MiniLM vectors of every chunk of the app's corpus.

Embedding the ~30k chunks of MedQuAD + graph descriptions takes 20-45 minutes on a 2-core
CPU; loading their vectors from a file takes well under a second. The artifact is looked up
by *content*: each vector is keyed by a digest of the exact text the embedder reads
(``title. text``), so a chunk whose text is unchanged reuses its vector and only new or
edited chunks are embedded (see :mod:`retrieval.builder`).

File layout (little-endian, one file, deterministic bytes for the same vectors)::

    b"MEDKGVEC" | u32 header length | header JSON (sorted keys)
    keys    n x 16 bytes  blake2b-128 of the embedding text, sorted ascending
    scales  n x float32   per-row scale: vector ~= codes * scale
    codes   n x d int8    symmetric per-row quantisation of the unit vector

The header names the model, max_seq_length, dimension, chunking parameters and the
``corpus_hash`` of the chunk list it was built for (:func:`chunk_keys_hash`), so a test can
tell when the shipped corpus changed without a rebuilt artifact.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.chunking import ChunkingParams
from retrieval.corpus import DATA_DIR

ARTIFACT_FILE = DATA_DIR / "minilm-l6-v2.int8.vec"
MAGIC = b"MEDKGVEC"
FORMAT_VERSION = 1
KEY_BYTES = 16
QUANTIZATION = "int8-symmetric-per-row"


def text_key(text: str) -> bytes:
    """The 16-byte content key of one embedding text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest()


def chunk_keys_hash(keys: Sequence[bytes]) -> str:
    """sha256 over the ordered chunk keys: changes when any chunk text, title or order changes."""
    h = hashlib.sha256()
    for key in keys:
        h.update(key)
    return h.hexdigest()


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes int8, scales float32) with ``codes * scale`` ~= each row."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, dtype=np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Unit float32 rows back from the codes (re-normalised: inner product stays a cosine)."""
    vectors = codes.astype(np.float32) * scales[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=vectors, where=norms > 0)


@dataclass(frozen=True)
class ArtifactHeader:
    model: str
    max_seq_length: int
    dimension: int
    chunk_max_words: int
    chunk_overlap_sentences: int
    n_vectors: int
    n_chunks: int
    corpus_hash: str
    format_version: int = FORMAT_VERSION
    quantization: str = QUANTIZATION
    text_key: str = "blake2b-128 of 'title. text' as embedded"

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":")).encode()


class VectorArtifact:
    """Quantised vectors looked up by text key."""

    def __init__(
        self, header: ArtifactHeader, keys: np.ndarray, scales: np.ndarray, codes: np.ndarray
    ) -> None:
        self.header = header
        self._codes = codes
        self._scales = scales
        # A dict over 30k 16-byte keys builds in ~10 ms and answers in O(1).
        self._row = {bytes(k): i for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._row)

    def compatible(
        self, *, model: str, max_seq_length: int, dimension: int, params: ChunkingParams
    ) -> list[str]:
        """Why these vectors cannot serve that model/chunking (empty when they can)."""
        h = self.header
        want = {
            "model": (canonical_model(h.model), canonical_model(model)),
            "max_seq_length": (h.max_seq_length, max_seq_length),
            "dimension": (h.dimension, dimension),
            "chunk_max_words": (h.chunk_max_words, params.max_words),
            "chunk_overlap_sentences": (h.chunk_overlap_sentences, params.overlap_sentences),
        }
        return [f"{name}: artifact has {a!r}, wanted {b!r}" for name, (a, b) in want.items() if a != b]

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, float32 unit vectors for the found keys, in order)."""
        rows = np.fromiter((self._row.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        found = rows >= 0
        return found, dequantize(self._codes[rows[found]], self._scales[rows[found]])

    @classmethod
    def read(cls, path: Path = ARTIFACT_FILE) -> VectorArtifact:
        data = path.read_bytes()
        if data[: len(MAGIC)] != MAGIC:
            raise ValueError(f"{path} is not a medkg vector artifact")
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        raw = json.loads(data[start : start + hlen])
        if raw.get("format_version") != FORMAT_VERSION or raw.get("quantization") != QUANTIZATION:
            raise ValueError(f"{path}: unsupported artifact format {raw.get('format_version')}")
        header = ArtifactHeader(**raw)
        n, d = header.n_vectors, header.dimension
        offset = start + hlen
        keys = np.frombuffer(data, dtype=f"V{KEY_BYTES}", count=n, offset=offset)
        offset += n * KEY_BYTES
        scales = np.frombuffer(data, dtype="<f4", count=n, offset=offset)
        offset += n * 4
        codes = np.frombuffer(data, dtype=np.int8, count=n * d, offset=offset).reshape(n, d)
        if offset + n * d != len(data):
            raise ValueError(f"{path}: truncated or padded ({len(data)} bytes)")
        return cls(header, keys, scales, codes)


def write_artifact(path: Path, header: ArtifactHeader, keys: Sequence[bytes], vectors: np.ndarray) -> None:
    """Write unique keys with their vectors, sorted by key (bytes depend only on the content)."""
    if len(keys) != len(vectors) or len(set(keys)) != len(keys):
        raise ValueError("keys must be unique and match the vectors")
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    codes, scales = quantize(np.asarray(vectors, dtype=np.float32)[order])
    head = header.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + struct.pack("<I", len(head)) + head)
        fh.write(b"".join(keys[i] for i in order))
        fh.write(scales.astype("<f4").tobytes())
        fh.write(codes.tobytes())
    tmp.replace(path)


def canonical_model(name: str) -> str:
    """One spelling for the shipped model's aliases (they resolve to the same weights)."""
    low = name.strip().lower()
    if low in {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return name


def load_artifact(path: Path | None = ARTIFACT_FILE) -> VectorArtifact | None:
    """The artifact, or None when absent or unreadable (the build then embeds everything)."""
    if path is None or not path.is_file():
        return None
    try:
        return VectorArtifact.read(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
