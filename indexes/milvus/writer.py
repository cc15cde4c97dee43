"""Writing to a Milvus index: stage documents as they are embedded, then publish them with one commit.

Staged passages (with their vectors) go to `{prefix}_staged` and staged documents to `{prefix}_documents` with
`born = STAGED`: never visible, and kept by a crash, so the next ingest does not embed them again. A publish
at generation G = P + 1 writes the new rows with `born = G` (invisible to readers at P), then upserts the
`published` row: that one call is the commit (meta.py). A publish killed before it leaves rows born after P,
which the next writer deletes (`repair`); after it, staged rows already published, which it deletes too.
Every write is an upsert or a delete by key, so a retried call never duplicates a row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import IndexBusy, IndexStoreError
from ..locks import hold_write_lock
from ..records import ChunkRecord, DocumentRecord, KnownDocument, PublishResult, StagedDocument
from .filter_expr import literal, split_attributes
from .lease import Lease
from .meta import Published, read_published, write_published
from .schema import (
    DOCUMENT_FIELDS,
    REVISIONS,
    STAGED,
    chunk_row,
    document_record,
    document_row,
    key,
    passage,
    revision_of,
    staged_key,
    staged_row,
    vector_bytes,
)
from .writes import PATHS, Old, Rows, strings, writable

if TYPE_CHECKING:
    from ..batches import BatchLedger
    from .store import MilvusIndex

RETIRED_GRACE = 120.0  # seconds retired rows outlive their retirement (readers of older snapshots use them)
PASSAGES = 1_000  # staged passages a publish holds in memory at a time (documents grouped up to it)
_STAGED_FIELDS = [
    *("path", "ordinal", "text", "tokens", "heading", "page", "page_end", "char_start", "char_end"),
    *("text_hash", "dense"),
]


class MilvusWriter:
    """The single writer of a Milvus index (the `IndexWriter` of `indexes.protocols`; `write.lock` in its folder)."""

    def __init__(self, index: MilvusIndex, *, wait: float = 0.0) -> None:
        self.index = index
        self._conn = index.connection
        self._names = index.names
        self._wait = wait
        self._lock_file: int | None = None
        self._published = Published()
        self._bm25 = False
        self._rows: Rows
        self._lease: Lease | None = None

    def __enter__(self) -> MilvusWriter:
        self._lock_file = hold_write_lock(self.index.folder, self._wait)
        try:
            self._lease = Lease(self._conn, self._names)
            self._lease.take()
            self._rows = Rows(self._conn, self._names, self._lease.renew)
            self._bm25 = "words" in self._rows.fields[self._names.chunks]
            self._published = read_published(self._conn, self._names)
            self.repair()
            self.tidy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    # --- what is there -------------------------------------------------------------------------------

    def known_documents(self) -> dict[str, KnownDocument]:
        """Every published document's path, hash, size and mtime."""
        fields = ["path", "content_hash", "size", "mtime"]
        rows = self._rows.scan(self._names.documents, self._published.visible(), fields)
        return {r["path"]: KnownDocument(r["path"], r["content_hash"], int(r["size"]), float(r["mtime"])) for r in rows}

    def staged_documents(self) -> dict[str, StagedDocument]:
        """Documents staged by an earlier, unfinished ingest, by path."""
        fields = ["path", "content_hash", "chunks", "tokens"]
        rows = self._rows.scan(self._names.documents, f"born == {STAGED}", fields)
        return {
            r["path"]: StagedDocument(r["path"], r["content_hash"], int(r["chunks"]), int(r["tokens"])) for r in rows
        }

    def stored_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors already stored for passages with these hashes: staged ones first, then published ones."""
        found: dict[str, bytes] = {}
        for start in range(0, len(text_hashes), PATHS):
            part = strings(text_hashes[start : start + PATHS])
            for row in self._rows.scan(self._names.staged, f"text_hash in [{part}]", ["text_hash", "dense"]):
                found.setdefault(row["text_hash"], vector_bytes(row["dense"]))
            missing = strings([h for h in text_hashes[start : start + PATHS] if h not in found])
            if missing:
                expr = f"text_hash in [{missing}] and {self._published.visible()}"
                for row in self._rows.scan(self._names.chunks, expr, ["text_hash", "dense"]):
                    found.setdefault(row["text_hash"], vector_bytes(row["dense"]))
        return found

    def batch_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """None: Batch API runs are not supported on a Milvus index (`ledger`)."""
        return {}

    # --- staging -------------------------------------------------------------------------------------

    def stage_many(self, documents: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        """Stage whole documents with their passages (a path given twice keeps its last document).

        The staged document rows go last: a crash before them leaves passages only (vectors the next run
        reuses), never a staged document missing passages.
        """
        latest = list({d.path: (d, chunks) for d, chunks in documents}.values())
        self._rows.delete_keys(self._names.documents, [staged_key(d.path) for d, _ in latest])
        self._rows.upsert(
            self._names.staged, [staged_row(d.path, c.chunk, c.text_hash, c.vector) for d, cs in latest for c in cs]
        )
        self._rows.drop_staged_beyond([(d.path, len(chunks)) for d, chunks in latest])
        rows = [document_row(0, STAGED, d, len(cs), sum(c.chunk.tokens for c in cs), None) for d, cs in latest]
        self._rows.upsert(self._names.documents, rows)

    def stage_chunks(self, path: str, chunks: Sequence[ChunkRecord]) -> None:
        """Stage some passages of a large document ahead of the document (see `stage_document`)."""
        self._rows.delete_keys(self._names.documents, [staged_key(path)])
        self._rows.upsert(self._names.staged, [staged_row(path, c.chunk, c.text_hash, c.vector) for c in chunks])

    def stage_document(self, document: DocumentRecord, chunks: int, tokens: int) -> None:
        """Stage a document whose `chunks` passages `stage_chunks` stored (leftovers past them go)."""
        self._rows.drop_staged_beyond([(document.path, chunks)])
        self._rows.upsert(self._names.documents, [document_row(0, STAGED, document, chunks, tokens, None)])

    def unstage(self, paths: Iterable[str]) -> None:
        """Drop staged documents that are no longer wanted, with their passages."""
        self._rows.unstage(list(paths))

    def touch(self, path: str, mtime: float) -> None:
        """Record a new mtime for a document whose content did not change (its passages carry it for filters).

        The passages are rewritten first: a crash between leaves the document's old mtime, so the next
        ingest touches it again.
        """
        expr = f"path == {literal(path)} and {self._published.visible()}"
        for name in (self._names.chunks, self._names.documents):
            for rows in self._rows.batches(name, expr, self._rows.fields[name]):
                self._rows.upsert(name, [{**writable(r), "mtime": float(mtime)} for r in rows])

    # --- publishing ----------------------------------------------------------------------------------

    def publish(self, removed: Iterable[str] = ()) -> PublishResult:
        """Make every staged document visible and the `removed` paths gone, with one commit."""
        self._still_current()
        self.repair()
        current = self._published
        generation = current.generation + 1
        staged = sorted(
            self._rows.scan(self._names.documents, f"born == {STAGED}", DOCUMENT_FIELDS), key=lambda r: r["path"]
        )
        staged_paths = [r["path"] for r in staged]
        restaged = set(staged_paths)
        removed = [p for p in dict.fromkeys(removed) if p not in restaged]
        gone = self._rows.visible_at(removed, current)
        now = time.time()
        next_document, next_chunk = current.next_document_id, current.next_chunk_id
        added = tokens = 0
        published: list[str] = []
        for part in _groups(staged):
            ids = range(next_document, next_document + len(part))
            written, next_chunk = self._publish_chunks(part, ids, next_chunk, generation)
            whole = [(i, r) for i, r in zip(ids, part) if written[r["path"]] == int(r["chunks"])]
            if len(whole) < len(part):  # passages lost to a crash: not published, left for the next ingest
                partial = ", ".join(str(i) for i, r in zip(ids, part) if written[r["path"]] != int(r["chunks"]))
                self._conn.call(
                    "delete", self._names.chunks, filter=f"document_id in [{partial}] and born == {generation}"
                )
            rows = [
                document_row(i, generation, document_record(r), int(r["chunks"]), int(r["tokens"]), now)
                for i, r in whole
            ]
            self._rows.upsert(self._names.documents, rows)
            next_document += len(part)
            added += sum(int(r["chunks"]) for _, r in whole)
            tokens += sum(int(r["tokens"]) for _, r in whole)
            published += [r["path"] for _, r in whole]
        replaced = self._rows.visible_at(published, current)
        old = replaced + gone
        result = PublishResult(generation, len(published), len(gone), added, sum(o.chunks for o in old))
        documents = current.documents - len(old) + len(published)
        self._commit(
            self._retire(current, old, generation),
            next_document_id=next_document,
            next_chunk_id=next_chunk,
            documents=documents,
            chunks=current.chunks - result.chunks_removed + added,
            tokens=current.tokens - sum(o.tokens for o in old) + tokens,
            last_ingest=(now if staged else current.last_ingest) if documents else None,
        )
        self._rows.unstage(staged_paths)
        self.tidy()
        return result

    def _publish_chunks(
        self, documents: list[dict[str, Any]], ids: range, next_chunk: int, generation: int
    ) -> tuple[dict[str, int], int]:
        """Copy the staged passages of these staged documents into the chunks collection, born in `generation`,
        with chunk ids in (document, ordinal) order; read `PASSAGES` ordinals at a time (memory stays flat)."""
        records = {r["path"]: (document_id, document_record(r)) for document_id, r in zip(ids, documents)}
        order = {path: n for n, path in enumerate(records)}
        counts = {r["path"]: int(r["chunks"]) for r in documents}
        written = dict.fromkeys(counts, 0)
        for low in range(0, max(counts.values(), default=0), PASSAGES):
            # By key, not by a scan of every staged row for these paths: the keys follow from path and ordinal.
            keys = [staged_key(p, o) for p, n in counts.items() for o in range(low, min(n, low + PASSAGES))]
            found = [r for r in self._rows.get(self._names.staged, keys, _STAGED_FIELDS) if r["path"] in counts]
            rows = []
            for row in sorted(found, key=lambda r: (order[r["path"]], int(r["ordinal"]))):
                document_id, record = records[row["path"]]
                rows.append(
                    chunk_row(
                        next_chunk,
                        document_id,
                        generation,
                        record,
                        passage(row),
                        row["text_hash"],
                        row["dense"],
                        bm25=self._bm25,
                    )
                )
                next_chunk += 1
                written[row["path"]] += 1
            self._rows.upsert(self._names.chunks, rows)
        return written, next_chunk

    def remove(self, paths: Iterable[str]) -> PublishResult:
        """Take published documents out with one commit, leaving staged work (an unfinished ingest's) alone."""
        self._still_current()
        self.repair()
        current = self._published
        old = self._rows.visible_at(list(dict.fromkeys(paths)), current)
        generation = current.generation + 1
        documents = current.documents - len(old)
        removed_chunks = sum(o.chunks for o in old)
        self._commit(
            self._retire(current, old, generation),
            documents=documents,
            chunks=current.chunks - removed_chunks,
            tokens=current.tokens - sum(o.tokens for o in old),
            last_ingest=current.last_ingest if documents else None,
        )
        self.tidy()
        return PublishResult(generation, 0, len(old), 0, removed_chunks)

    def set_attributes(self, document_id: int, attributes: dict[str, object]) -> None:
        """Replace a document's attributes with one commit: its rows are written again as a new revision (same
        document and chunk ids, born in the new generation) and the old revision is retired."""
        self._still_current()
        self.repair()
        current = self._published
        visible = f"document_id == {int(document_id)} and {current.visible()}"
        found = self._rows.scan(self._names.documents, visible, self._rows.fields[self._names.documents])
        if not found:
            return
        generation = current.generation + 1
        revision = revision_of(int(found[0]["document_key"])) + 1
        if revision >= REVISIONS:
            raise IndexStoreError(
                f"document {document_id} had its attributes replaced {REVISIONS - 1} times: re-ingest it to reset"
            )
        text, number, boolean = split_attributes(attributes)
        columns = {"born": generation, "attr_text": text, "attr_number": number, "attr_bool": boolean}
        for rows in self._rows.batches(self._names.chunks, visible, self._rows.fields[self._names.chunks]):
            revised = [{**writable(r), **columns, "chunk_key": key(int(r["chunk_id"]), revision)} for r in rows]
            self._rows.upsert(self._names.chunks, revised)  # born in the new generation: the scan skips them
        document = {**writable(found[0]), **columns, "attributes": dict(attributes)}
        self._rows.upsert(self._names.documents, [{**document, "document_key": key(int(document_id), revision)}])
        old = Old(int(document_id), found[0]["path"], int(found[0]["chunks"]), int(found[0]["tokens"]))
        self._commit(self._retire(current, [old], generation))
        self.tidy()

    def finish(self) -> None:
        """An ingest with nothing to publish: delete what retired long enough ago."""
        self.tidy()

    def ledger(self) -> BatchLedger:
        from .store import NO_BATCH

        raise IndexStoreError(NO_BATCH)

    # --- upkeep --------------------------------------------------------------------------------------

    def repair(self) -> None:
        """Delete what a killed writer left: rows of a publish that never committed (born after the published
        generation), and staged documents that a committed publish took but did not get to delete."""
        self._rows.repair(self._published)

    def tidy(self, grace: float = RETIRED_GRACE) -> None:
        """Delete the rows of documents retired more than `grace` seconds ago, then forget those retirements."""
        tidied = self._rows.tidy(self._published, grace)
        if tidied is not None:
            write_published(self._conn, self._names, tidied)
            self._published = tidied
            self.index.committed(tidied)

    # --- helpers -------------------------------------------------------------------------------------

    def _still_current(self) -> None:
        """IndexBusy if another writer committed since this one read the index (two folders naming the same
        collections, or a host whose lease expired): writing on would reuse its generation and ids."""
        fresh = read_published(self._conn, self._names)
        if fresh.generation != self._published.generation:
            raise IndexBusy(
                f"another writer published generation {fresh.generation} of this Milvus index while this one "
                f"worked from generation {self._published.generation}: nothing of this run is visible; run it again"
            )

    def _commit(self, published: Published, **changes: Any) -> None:
        """The commit: one upsert of the published row, taken after every data write returned."""
        published = replace(published, published_at=time.time(), **changes)
        write_published(self._conn, self._names, published)
        self._published = published
        self.index.committed(published)

    def _retire(self, current: Published, old: Sequence[Old], generation: int) -> Published:
        """The next state (at `generation`) with `old` retired in it. A document retired again (an attribute edited
        twice) keeps its latest entry only: rows born before it cover the earlier one's, so the row stays short."""
        if not old:
            return replace(current, generation=generation)
        ids = {o.document_id for o in old}
        kept = [
            (g, tuple(i for i in group if i not in ids), at)
            for (g, group), at in zip(current.retired, current.retired_at)
        ]
        entries = [(g, group, at) for g, group, at in kept if group] + [(generation, tuple(sorted(ids)), time.time())]
        retired = tuple((g, group) for g, group, _ in entries)
        return replace(current, generation=generation, retired=retired, retired_at=tuple(at for _, _, at in entries))


def _groups(staged: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Staged documents in groups of up to `PASSAGES` passages and `PATHS` documents (a longer one alone)."""
    group: list[dict[str, Any]] = []
    size = 0
    for row in staged:
        chunks = int(row["chunks"])
        if group and (size + chunks > PASSAGES or len(group) >= PATHS):
            yield group
            group, size = [], 0
        group.append(row)
        size += chunks
    if group:
        yield group
