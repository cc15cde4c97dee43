"""An index folder: manifest, SQLite catalog and FAISS vectors, opened together.

Readers work inside one SQLite read transaction (a snapshot), and use the FAISS file
of that snapshot's generation, so a search never mixes two states of the index. A
FAISS file that is missing or stale is rebuilt from the vectors kept in the catalog.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import vectors
from .catalog import CATALOG_NAME, connect
from .errors import IndexCorrupt, IndexExists, IndexNotFound
from .manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from .records import StoredChunk

if TYPE_CHECKING:
    import faiss

_CHUNK_COLUMNS = """c.id, c.document_id, d.path, d.title, c.text, c.heading, c.page,
    c.page_end, c.char_start, c.char_end, c.ordinal"""


class Index:
    """An opened index folder; safe to share between threads."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest
        self._local = threading.local()
        self._lock = threading.Lock()
        self._vectors: tuple[int, faiss.Index] | None = None

    @classmethod
    def create(cls, folder: Path, manifest: Manifest) -> Index:
        """Create a new, empty index; the manifest is written last, so it marks a whole index."""
        if (folder / MANIFEST_NAME).exists():
            raise IndexExists(f"an index already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        connect(folder / CATALOG_NAME, create=True).close()
        write_manifest(folder, manifest)
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder: Path) -> Index:
        """Open an existing index, or raise `IndexNotFound`."""
        if not (folder / MANIFEST_NAME).exists():
            raise IndexNotFound(
                f"no index at {folder}: run `semsearch ingest PATH --index {folder}` first"
            )
        index = cls(folder, read_manifest(folder))
        index.connection()  # fail now, not at the first query, if the catalog is broken
        return index

    @classmethod
    def exists(cls, folder: Path) -> bool:
        """Whether `folder` holds an index."""
        return (folder / MANIFEST_NAME).exists()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the catalog."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.folder / CATALOG_NAME)
            self._local.conn = conn
        return conn

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """A consistent snapshot of the index for the duration of the block."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            # The FAISS index loads on the first dense search only: stats and lexical search never wait for it.
            yield Reader(conn, lambda: self._vectors_for(conn, generation), self.manifest.dimension)
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"cannot read the catalog in {self.folder}: {exc}") from exc
        finally:
            conn.execute("COMMIT")

    def _vectors_for(self, conn: sqlite3.Connection, generation: int) -> faiss.Index:
        cached = self._vectors
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._lock:
            if self._vectors is None or self._vectors[0] != generation:
                self._vectors = (generation, self.load_vectors(conn, generation))
            return self._vectors[1]

    def load_vectors(self, conn: sqlite3.Connection, generation: int) -> faiss.Index:
        """The FAISS index of a generation: its file if present, else rebuilt from the catalog."""
        path = vectors.file_for(self.folder, generation)
        if path.exists():
            try:
                index = vectors.load(path)
                if index.d == self.manifest.dimension:
                    return index
            except IndexCorrupt:
                pass  # rebuilt below from the catalog, which is the source of truth
        return self.rebuild_vectors(conn)

    def rebuild_vectors(self, conn: sqlite3.Connection) -> faiss.Index:
        """A FAISS index built from every vector stored in the catalog."""
        index = vectors.new_index(self.manifest.dimension, self.manifest.index_type)
        cursor = conn.execute("SELECT id, vector FROM chunks ORDER BY id")
        while rows := cursor.fetchmany(10_000):
            ids = [row[0] for row in rows]
            vectors.add(index, ids, vectors.as_matrix([row[1] for row in rows], index.d))
        return index

    def stats(self) -> dict[str, Any]:
        """Counts, model and size on disk."""
        with self.read() as reader:
            counts = reader.counts()
        size = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        return {
            "index": str(self.folder),
            **counts,
            "embedding_model": self.manifest.embedding_model,
            "dimension": self.manifest.dimension,
            "metric": self.manifest.metric,
            "index_type": self.manifest.index_type,
            "chunking": self.manifest.chunking,
            "created_at": self.manifest.created_at,
            "size_bytes": size,
        }

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class Reader:
    """Queries against one snapshot of the index."""

    def __init__(self, conn: sqlite3.Connection, load_vectors: Callable[[], faiss.Index], dimension: int) -> None:
        self._conn = conn
        self._load_vectors = load_vectors
        self._dimension = dimension

    def allowed_chunks(self, where_sql: str, params: Sequence[object] = ()) -> np.ndarray:
        """Ids (int64, ascending) of the chunks whose document `d` satisfies `where_sql`.

        `where_sql` is a boolean expression over `documents d`; it may use `REGEXP` (Python `re.search`).
        """
        sql = f"SELECT id FROM chunks WHERE document_id IN (SELECT d.id FROM documents d WHERE {where_sql}) ORDER BY id"
        return np.fromiter((row[0] for row in self._conn.execute(sql, list(params))), dtype=np.int64)

    def dense(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Nearest chunks to a query vector: (chunk id, cosine), best first; only `allowed` chunk ids if given."""
        return vectors.search(self._load_vectors(), query, k, allowed)

    def lexical(
        self, match: str, k: int, weights: Sequence[float] = (2.0, 1.5, 1.0), where_sql: str | None = None, params: Sequence[object] = ()
    ) -> list[tuple[int, float]]:
        """FTS5 BM25 over title, heading and text: (chunk id, score), best first.

        With `where_sql` (as for `allowed_chunks`), only chunks whose document satisfies it, in the same statement.
        """
        if not match or k <= 0:
            return []
        joins = "" if where_sql is None else "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
        condition = "" if where_sql is None else f"AND ({where_sql}) "
        sql = (
            f"SELECT chunks_fts.rowid, -bm25(chunks_fts, ?, ?, ?) FROM chunks_fts {joins}"
            f"WHERE chunks_fts MATCH ? {condition}ORDER BY bm25(chunks_fts, ?, ?, ?) LIMIT ?"
        )
        rows = self._conn.execute(sql, (*weights, match, *params, *weights, k)).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by chunk id, with their document's path and title."""
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            sql = f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})"
            for row in self._conn.execute(sql, part):
                found[row[0]] = StoredChunk(*row)
        return found

    def documents_of(self, ids: Sequence[int]) -> dict[int, int]:
        """The document id of each chunk id."""
        marks = ",".join("?" * len(ids))
        return dict(self._conn.execute(f"SELECT id, document_id FROM chunks WHERE id IN ({marks})", list(ids)).fetchall()) if ids else {}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the order given."""
        marks = ",".join("?" * len(ids))
        found = dict(self._conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", list(ids)).fetchall()) if ids else {}
        return vectors.as_matrix([found[i] for i in ids if i in found], self._dimension)

    def snippets(self, match: str, ids: Sequence[int], *, tokens: int = 32) -> dict[int, str]:
        """For each chunk that matches, its best fragment with the matching words in <mark> tags."""
        if not match or not ids:
            return {}
        marks = ",".join("?" * len(ids))
        sql = (
            "SELECT rowid, snippet(chunks_fts, 2, '<mark>', '</mark>', '…', ?) FROM chunks_fts "
            f"WHERE chunks_fts MATCH ? AND rowid IN ({marks})"
        )
        return {int(row[0]): str(row[1]) for row in self._conn.execute(sql, (tokens, match, *ids))}

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every passage, in chunk id order."""
        sql = f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id"
        for row in self._conn.execute(sql):
            yield StoredChunk(*row)

    def counts(self) -> dict[str, Any]:
        """Documents, chunks and tokens in this snapshot."""
        docs, last = self._conn.execute("SELECT count(*), max(ingested_at) FROM documents").fetchone()
        chunks, tokens = self._conn.execute("SELECT count(*), coalesce(sum(tokens), 0) FROM chunks").fetchone()
        generation = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        return {"documents": docs, "chunks": chunks, "tokens": tokens, "generation": int(generation), "last_ingest": last}
