"""The full-text index: BM25 over each passage's title, heading and text, by tantivy, in `<index>/fulltext/`.

Derived data: the catalog keeps the text and stays the source of truth; tantivy only
indexes it (it stores no text), so the text is on disk once. tantivy ranks with
block-max WAND, so a query of common words does not score every row it matches, and it
searches without holding the GIL. Words are Porter-stemmed and accents folded ("café" finds
"cafe") in `indexes/words.py`; the title and heading are indexed twice, so they weigh above
the text, as FTS5's column weights (2, 1.5, 1) made them before.

Crash safety (see `indexes/writer.py`): a publish adds its new passages here before the
catalog commits and deletes the removed ones after; `generation` records the catalog
generation this folder reflects and is removed while a change is under way. A writer
that finds it missing or behind brings the folder in line with the catalog (`sync`).
Readers drop hits that their snapshot lacks.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import tantivy

from . import words
from .catalog import Catalog
from .errors import IndexStoreError

FOLDER = "fulltext"
LOCK = "fulltext.lock"
FORMAT = "format"  # the schema's version: a folder of another is rebuilt
MARKER = "generation"  # the catalog generation the folder reflects; absent while a change is under way
Passage = tuple[int, int, str, str, str]  # chunk id, document id, title, heading, text

_FORMAT = "2"
_FIELD = "body"
_REPEAT = 2  # the title and heading go in twice: weighed above the text
_K1 = 1.2  # tantivy's BM25 k1 (b = 0.75)
_HEAP = 50_000_000  # bytes the tantivy writer buffers before it flushes a segment
PASSAGES = """SELECT c.id, c.document_id, d.title, c.heading, c.text
    FROM chunks c JOIN documents d ON d.id = c.document_id"""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)  # the catalog's chunk id
    builder.add_integer_field("document", indexed=True, fast=True)  # its document id, which filters match
    builder.add_integer_field("all", indexed=True)  # 1 everywhere: its count is BM25's N
    builder.add_text_field(_FIELD, tokenizer_name="whitespace", index_option="freq")  # stems, from `words`
    return builder.build()


class FullText:
    """The full-text folder of one index: searchers for readers, changes for the writer."""

    def __init__(self, index_folder: Path) -> None:
        self.path = index_folder / FOLDER
        self.lock_path = index_folder / LOCK  # outside the folder, which a rebuild replaces
        self._schema = _schema()
        self._lock = threading.Lock()
        self._index: tantivy.Index | None = None
        self._cached: tuple[int, bool, tantivy.Searcher] | None = None

    def words(self, terms: Iterable[str]) -> list[str]:
        """The distinct indexed forms of query words (one word may give several, or none)."""
        return words.query_words(terms)

    def searcher(self, generation: int) -> tantivy.Searcher | None:
        """A searcher for readers of this catalog generation (None if the folder is missing or unreadable).

        One is kept per generation once the folder is known to reflect it; until then (a writer
        at work, or a repair awaited) each call takes the newest state.
        """
        cached = self._cached
        if cached is not None and cached[0] == generation and cached[1]:
            return cached[2]
        with self._lock:
            index = self._open()
            if index is None:
                return None
            good = self.generation() == generation  # read before the state it vouches for
            searcher = _fresh_searcher(index)
            self._cached = (generation, good, searcher)
            return searcher

    def _open(self) -> tantivy.Index | None:
        if not self._current_format():
            return None  # built by another version of this module: rebuilt by the next writer
        if self._index is None:
            try:
                index = tantivy.Index.open(str(self.path)) if (self.path / "meta.json").exists() else None
            except ValueError:
                return None
            if index is not None:
                index.config_reader("manual")  # a searcher changes only when we say (see `searcher`)
            self._index = index
        return self._index

    def query(
        self, searcher: tantivy.Searcher, words: Sequence[str], documents: Sequence[int] | None = None
    ) -> tantivy.Query:
        """Any of the words (already analysed), among the passages of `documents` if given.

        Each word is boosted so that its weight is the classic BM25 idf, log((N - n + 0.5) / (n + 0.5)),
        as FTS5's bm25() had it, rather than tantivy's log(1 + ...): words in half the passages or
        more count for (almost) nothing, which is what fusion with the dense side was tuned on.
        """
        clauses = []
        for word, (ours, theirs) in zip(words, _idfs(searcher, words)):
            term = tantivy.Query.term_query(self._schema, _FIELD, word, index_option="freq")
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(term, ours / theirs)))
        query = tantivy.Query.boolean_query(clauses)
        if documents is None:
            return query
        # Only the documents a filter allows, inside the search; the filter adds nothing to a score.
        allowed = tantivy.Query.const_score_query(tantivy.Query.term_set_query(self._schema, "document", documents), 0)
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, allowed)])

    def search(self, searcher: tantivy.Searcher, query: tantivy.Query, k: int) -> list[tuple[int, float, int]]:
        """The k best passages: (chunk id, BM25, document id), best first."""
        hits = searcher.search(query, k, count=False).hits
        addresses = [address for _, address in hits]
        ids = searcher.fast_field_values("id", addresses)
        documents = searcher.fast_field_values("document", addresses)
        return [
            (int(cid), float(score), int(document))
            for cid, document, (score, _) in zip(ids, documents, hits)
            if isinstance(cid, int) and isinstance(document, int)
        ]

    def ceiling(self, searcher: tantivy.Searcher, words: Sequence[str]) -> float:
        """The most BM25 any passage could score for these words: (k1 + 1) times the sum of their idf."""
        return (_K1 + 1) * sum(ours for ours, _ in _idfs(searcher, words))

    def snippets(self, word_set: Sequence[str], texts: Mapping[int, str]) -> dict[int, str]:
        """For each text holding any of the words, its best fragment with them in <mark> tags."""
        wanted = set(word_set)
        marked = {cid: words.snippet(text, wanted) for cid, text in texts.items()}
        return {cid: text for cid, text in marked.items() if text is not None}

    @contextmanager
    def writer(self) -> Iterator[FullTextWriter]:
        """The one writer of the folder (it waits for a repair under way elsewhere to finish)."""
        with _locked(self.lock_path, wait=True), self._writer() as writer:
            yield writer

    def _writer(self) -> FullTextWriter:
        """A writer, the folder created anew if it is missing or unreadable (the caller holds the lock)."""
        index = self._open() if (self.path / "meta.json").exists() else None
        if index is None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            index = tantivy.Index(self._schema, path=str(self.path), reuse=False)
            index.config_reader("manual")
            (self.path / FORMAT).write_text(_FORMAT, encoding="ascii")
            self._index = index
        return FullTextWriter(self, index)

    def files(self) -> list[Path]:
        """The files of the folder (for the size on disk)."""
        return [p for p in self.path.glob("*") if p.is_file()]

    def mark(self, generation: int) -> None:
        """Record that the folder reflects this catalog generation (the caller holds the lock)."""
        marker = self.path / MARKER
        tmp = marker.with_name(f".{MARKER}.{os.getpid()}.tmp")
        tmp.write_text(str(generation), encoding="ascii")
        os.replace(tmp, marker)

    def advance(self, before: int, after: int) -> None:
        """After a change of the catalog that moved no passage (a merge of vector segments): the folder
        reflects `after` if it reflected `before`, so readers keep their searcher and nothing is repaired."""
        with _locked(self.lock_path, wait=False) as held:
            if held and self.generation() == before:
                self.mark(after)

    def _current_format(self) -> bool:
        try:
            return (self.path / FORMAT).read_text(encoding="ascii") == _FORMAT
        except OSError:
            return False

    def generation(self) -> int | None:
        """The catalog generation the folder reflects, if it is known to reflect one."""
        if not self._current_format():
            return None
        try:
            return int((self.path / MARKER).read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def sync(self, catalog: Catalog, generation: Callable[[], int], *, wait: bool = True) -> None:
        """Bring the folder in line with the catalog: passages it lacks added, those it has no more deleted.

        Without `wait`, gives up at once if a writer holds the folder (that writer repairs it).
        """
        if self.generation() == generation():
            return
        with _locked(self.lock_path, wait=wait) as held:
            current = generation()
            if not held or self.generation() == current:
                return
            with self._writer() as writer:
                have = writer.ids()
                wanted = {int(row[0]) for row in catalog.rows("SELECT id FROM chunks")}
                writer.delete(sorted(have - wanted))
                missing = wanted - have
                for rows in catalog.stream(f"{PASSAGES} ORDER BY c.id"):
                    writer.add(row for row in rows if row[0] in missing)
                writer.commit(current)


class FullTextWriter:
    """Changes to the full-text folder: adds, deletes, then a commit that records the catalog generation."""

    def __init__(self, owner: FullText, index: tantivy.Index) -> None:
        self._owner = owner
        self._index = index
        (owner.path / MARKER).unlink(missing_ok=True)  # from here until `commit`, the folder is not known good
        try:
            self._writer = index.writer(heap_size=_HEAP, num_threads=1)
        except ValueError as exc:
            raise IndexStoreError(f"cannot write the full-text index {owner.path}: {exc}") from exc

    def __enter__(self) -> FullTextWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.wait_merging_threads()

    def ids(self) -> set[int]:
        """Every chunk id the folder holds."""
        return chunk_ids(_fresh_searcher(self._index))

    def add(self, passages: Iterable[Passage]) -> None:
        """Index these passages (visible after `flush` or `commit`)."""
        context = ("", "", "")  # the title and heading last stemmed: a document's passages share them
        for cid, document, title, heading, text in passages:
            if context[:2] != (title, heading):
                context = (title, heading, words.indexed(title + " \n " + heading))
            body = [context[2]] * _REPEAT + [words.indexed(text)]
            self._writer.add_document(tantivy.Document(id=cid, document=document, all=1, **{_FIELD: body}))

    def delete(self, ids: Iterable[int]) -> None:
        """Take these chunk ids out."""
        for cid in ids:
            self._writer.delete_documents_by_term("id", cid)

    def flush(self) -> None:
        """Make the changes so far durable, still marked as under way."""
        self._writer.commit()

    def commit(self, generation: int) -> None:
        """Make the changes durable and record that the folder now reflects `generation`."""
        self._writer.commit()
        self._owner.mark(generation)


def chunk_ids(searcher: tantivy.Searcher) -> set[int]:
    """Every chunk id a searcher sees (deleted ones excluded)."""
    hits = searcher.search(tantivy.Query.all_query(), max(searcher.num_docs, 1), count=False).hits
    return {int(cid) for cid in searcher.fast_field_values("id", [a for _, a in hits]) if isinstance(cid, int)}


def _idfs(searcher: tantivy.Searcher, words: Sequence[str]) -> list[tuple[float, float]]:
    """Each word's classic BM25 idf (floored, as FTS5 floors it) and tantivy's own, log(1 + ...).

    N counts the passages deleted but not yet merged away, as tantivy's own idf does.
    """
    total = searcher.doc_freq("all", 1)
    out = []
    for n in (searcher.doc_freq(_FIELD, word) for word in words):
        ratio = (total - n + 0.5) / (n + 0.5)
        out.append((max(math.log(ratio), 1e-6), math.log(1 + ratio)))
    return out


@contextmanager
def _locked(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive lock on `path` (between processes and between threads); yields whether it is held."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        if wait:
            raise
        yield False  # a reader without write access: the next writer repairs
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the flock


def _fresh_searcher(index: tantivy.Index) -> tantivy.Searcher:
    """The newest committed state; a reload racing a writer's clean-up is tried again."""
    for attempt in range(3):
        try:
            index.reload()
            return index.searcher()
        except ValueError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
