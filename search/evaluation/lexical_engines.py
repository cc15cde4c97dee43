"""Lexical engines side by side: FTS5 (as before, and pruned), tantivy (the engine kept) and bm25s.

Not part of the product or CI: a measurement script. It imports bm25s itself (not a
dependency: `pip install bm25s`) and uses FTS5 and tantivy through `indexes`. Run it as

    python -m search.evaluation.lexical_engines --chunks 100000 [--scifact-index FOLDER]

It builds synthetic passages of 60-120 consecutive words from SciFact abstracts (titled as
their abstract), then times top-300 searches for SciFact queries and for queries made of
common words, interleaving the engines query by query, and prints one JSON line per engine.
With `--scifact-index` (an index built by `semsearch eval`) it also scores each engine's
lexical-only nDCG@10 on SciFact, ranking documents by their best passage.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexes import LocalIndex
from indexes.catalog import Catalog, connect
from indexes.fulltext import FullText
from search.lexical import STOP_WORDS, query_terms

from .beir import load_beir, ndcg_at_k, trec_rank

DEPTH = 300
Passage = tuple[int, str, str]  # chunk id, title, text
Ranked = list[tuple[int, float]]


class Fts5:
    """FTS5 as semsearch used it: bm25() with column weights over every matching row."""

    name = "fts5"

    def __init__(self, folder: Path, passages: Sequence[Passage]) -> None:
        self.path = folder / "fts.sqlite"
        self.catalog = connect(self.path, create=True)
        self.catalog.run(
            "CREATE VIRTUAL TABLE IF NOT EXISTS f USING fts5(title, heading, text, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        self.catalog.run("CREATE TABLE IF NOT EXISTS grp (id INTEGER PRIMARY KEY, g INTEGER)")
        if not self.catalog.value("SELECT count(*) FROM grp"):  # the pruned plan shares the table
            with self.catalog.transaction(write=True):
                self.catalog.run_many("INSERT INTO f (rowid, title, heading, text) VALUES (?, ?, '', ?)", passages)
                self.catalog.run_many("INSERT INTO grp VALUES (?, ?)", ((p[0], p[0] % 10) for p in passages))
        self.local = threading.local()

    def _conn(self) -> Catalog:
        if not hasattr(self.local, "c"):
            self.local.c = connect(self.path)
        conn: Catalog = self.local.c
        return conn

    def match(self, terms: Sequence[str]) -> str:
        return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)

    def search(self, terms: Sequence[str], k: int, group: int | None = None) -> Ranked:
        join, cond, params = "", "", []
        if group is not None:
            join, cond, params = "JOIN grp ON grp.id = f.rowid ", "AND grp.g = ? ", [group]
        sql = (
            f"SELECT f.rowid, -bm25(f, 2.0, 1.5, 1.0) FROM f {join}WHERE f MATCH ? {cond}"
            "ORDER BY bm25(f, 2.0, 1.5, 1.0) LIMIT ?"
        )
        return [(int(r[0]), float(r[1])) for r in self._conn().rows(sql, (self.match(terms), *params, k))]

    def update(self, added: Sequence[Passage], deleted: Sequence[int]) -> None:
        with self.catalog.transaction(write=True):
            self.catalog.run_many("INSERT INTO f (rowid, title, heading, text) VALUES (?, ?, '', ?)", added)
            self.catalog.run_many("DELETE FROM f WHERE rowid = ?", [(i,) for i in deleted])

    def disk(self) -> int:
        """The pages of the FTS5 table's shadow tables (its copy of the text, its index, its sizes)."""
        return int(self.catalog.value(r"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'f\_%' ESCAPE '\'"))


class Fts5Pruned(Fts5):
    """FTS5 with a smarter plan: words in over 5% of rows leave the MATCH when rarer ones remain."""

    name = "fts5-pruned"

    def search(self, terms: Sequence[str], k: int, group: int | None = None) -> Ranked:
        conn = self._conn()
        total = int(conn.value("SELECT count(*) FROM f"))
        counts = {t: int(conn.value("SELECT count(*) FROM f WHERE f MATCH ?", (self.match([t]),))) for t in terms}
        rare = [t for t in terms if counts[t] <= total * 0.05]
        return super().search(rare or list(terms), k, group)


class Tantivy:
    """tantivy as integrated (`indexes/fulltext.py`): Porter stems, classic idf, top-k by block-max WAND.

    One document per passage here, so a filter's allowed documents are its passages; a filter
    as wide as 10% is applied to a deeper unfiltered list, as `indexes/lexical.py` does.
    """

    name = "tantivy"

    def __init__(self, folder: Path, passages: Sequence[Passage]) -> None:
        self.text = FullText(folder)
        self.generation = 0
        self.update(passages, [])

    def update(self, added: Sequence[Passage], deleted: Sequence[int]) -> None:
        with self.text.writer() as writer:
            writer.delete(deleted)
            writer.add((cid, cid, title, "", text) for cid, title, text in added)
            self.generation += 1
            writer.commit(self.generation)

    def search(self, terms: Sequence[str], k: int, group: int | None = None) -> Ranked:
        searcher = self.text.searcher(self.generation)
        assert searcher is not None
        words = self.text.words(terms)
        if group is None:
            return [(cid, score) for cid, score, _ in self.text.search(searcher, self.text.query(searcher, words), k)]
        deep = self.text.search(searcher, self.text.query(searcher, words), 20 * k)
        kept = [(cid, score) for cid, score, document in deep if document % 10 == group][:k]
        if len(kept) == k:
            return kept
        allowed = self.group_ids[group]
        return [(cid, s) for cid, s, _ in self.text.search(searcher, self.text.query(searcher, words, allowed), k)]

    group_ids: dict[int, list[int]] = {}

    def disk(self) -> int:
        return sum(p.stat().st_size for p in self.text.files())


class Bm25s:
    """bm25s: a sparse matrix of precomputed BM25 weights; no incremental update (rebuild)."""

    name = "bm25s"

    def __init__(self, folder: Path, passages: Sequence[Passage]) -> None:
        self.bm25s = importlib.import_module("bm25s")
        self.stemmer = importlib.import_module("Stemmer").Stemmer("english")
        self.folder = folder / "bm25s"
        self.update(passages, [])

    def update(self, added: Sequence[Passage], deleted: Sequence[int]) -> None:
        kept = [p for p in getattr(self, "passages", []) if p[0] not in set(deleted)] + list(added)
        self.passages = kept
        self.ids = [p[0] for p in kept]
        tokens = self.bm25s.tokenize([f"{p[1]} {p[1]} {p[2]}" for p in kept], stemmer=self.stemmer, show_progress=False)
        self.model = self.bm25s.BM25()
        self.model.index(tokens, show_progress=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.model.save(str(self.folder))

    def search(self, terms: Sequence[str], k: int, group: int | None = None) -> Ranked:
        tokens = self.bm25s.tokenize([" ".join(terms)], stemmer=self.stemmer, show_progress=False, return_ids=False)
        if not tokens[0]:
            return []
        docs, scores = self.model.retrieve(tokens, k=min(k, len(self.ids)), show_progress=False)
        return [(self.ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


ENGINES: dict[str, Callable[[Path, Sequence[Passage]], Any]] = {e.name: e for e in (Fts5, Fts5Pruned, Tantivy, Bm25s)}


def scifact_words(dataset: Path) -> list[tuple[str, list[str]]]:
    """SciFact's abstracts: (title, words)."""
    with gzip.open(dataset / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [(r["title"], r["text"].split()) for r in rows if len(r["text"].split()) > 20]


def synthetic(abstracts: list[tuple[str, list[str]]], n: int, seed: int = 7) -> list[Passage]:
    """n passages of 60-120 consecutive words of a random abstract (continued in the next), ids 1..n."""
    rng = random.Random(seed)
    out = []
    for cid in range(1, n + 1):
        at = rng.randrange(len(abstracts))
        title, words = abstracts[at]
        length = rng.randint(60, 120)
        start = rng.randrange(len(words))
        while len(words) - start < length:
            words = words + abstracts[(at := at + 1) % len(abstracts)][1]
        out.append((cid, title, " ".join(words[start : start + length])))
    return out


def query_sets(
    dataset: Path, abstracts: list[tuple[str, list[str]]], count: int = 200, seed: int = 11
) -> dict[str, list[list[str]]]:
    """`count` SciFact queries, and half as many of 4-8 words drawn from the 150 commonest non-stop words."""
    rng = random.Random(seed)
    texts = [json.loads(line)["text"] for line in (dataset / "queries.jsonl").open(encoding="utf-8")]
    counts = Counter(w.lower() for _, words in abstracts for w in words if w.isalpha() and w.lower() not in STOP_WORDS)
    common = [w for w, _ in counts.most_common(150)]
    return {
        "scifact": [query_terms(t) for t in rng.sample(texts, count)],
        "common": [rng.sample(common, rng.randint(4, 8)) for _ in range(count // 2)],
    }


def _quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return round(statistics.median(ordered), 2), round(ordered[int(0.95 * (len(ordered) - 1))], 2)


def latency(engines: list[Any], queries: list[list[str]], group: bool = False) -> dict[str, dict[str, float]]:
    """p50/p95 wall and mean CPU ms per engine, the engines interleaved query by query."""
    wall: dict[str, list[float]] = {e.name: [] for e in engines}
    cpu: dict[str, list[float]] = {e.name: [] for e in engines}
    rng = random.Random(3)
    for n, terms in enumerate(queries):
        for engine in rng.sample(engines, len(engines)):
            w, c = time.perf_counter(), time.process_time()
            engine.search(terms, DEPTH, n % 10 if group else None)
            wall[engine.name].append((time.perf_counter() - w) * 1000)
            cpu[engine.name].append((time.process_time() - c) * 1000)
    out = {}
    for name in wall:
        p50, p95 = _quantiles(wall[name])
        out[name] = {"p50": p50, "p95": p95, "cpu_mean": round(statistics.fmean(cpu[name]), 2)}
    return out


def threads_speedup(search: Callable[[Any], object], queries: Sequence[Any]) -> float:
    """Throughput with 2 threads over 1 thread (2.0: the search releases the GIL; 1.0: it holds it)."""

    def run_all() -> None:
        for query in queries:
            search(query)

    start = time.perf_counter()
    run_all()
    one = time.perf_counter() - start
    workers = [threading.Thread(target=run_all) for _ in range(2)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    two = time.perf_counter() - start
    return round((2 * len(queries) / two) / (len(queries) / one), 2)


def gil_share(search: Callable[[], object], seconds: float = 1.5) -> float:
    """How fast a pure-Python thread runs while `search` runs, against while the caller sleeps as long.

    Near 0: the search holds the GIL; well above it: other threads run meanwhile (on a loaded
    2-core machine ~0.4-0.7, since the two threads also share the cores with others).
    """
    count, stop = [0], threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    worker = threading.Thread(target=spin)
    worker.start()
    start, before = time.perf_counter(), count[0]
    while time.perf_counter() - start < seconds:
        search()
    took, during = time.perf_counter() - start, count[0] - before
    time.sleep(took)
    stop.set()
    worker.join()
    return round(during / max(count[0] - before - during, 1), 2)


def _engine_call_only(engine: Tantivy, queries: list[list[str]]) -> float:
    """The same for tantivy's own search call alone (queries built beforehand)."""
    searcher = engine.text.searcher(engine.generation)
    assert searcher is not None
    built = [engine.text.query(searcher, engine.text.words(terms)) for terms in queries]
    return threads_speedup(lambda query: searcher.search(query, DEPTH, count=False), built)


def scifact_quality(dataset: Path, index_folder: Path, names: list[str]) -> dict[str, float]:
    """Lexical-only SciFact nDCG@10 per engine over the passages of a `semsearch eval` index."""
    beir = load_beir(dataset)
    index = LocalIndex.open(index_folder)
    with index.read() as reader:
        stored = list(reader.all_chunks())
    paths = {c.chunk_id: c.path for c in stored}
    passages = [(c.chunk_id, c.title, f"{c.heading} {c.text}".strip()) for c in stored]
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            engine = ENGINES[name](_folder(Path(tmp), name), passages)
            total = 0.0
            for qid, judged in beir.qrels.items():
                best: dict[str, float] = {}
                for cid, score in engine.search(query_terms(beir.queries[qid]), DEPTH):
                    best[paths[cid]] = max(best.get(paths[cid], score), score)
                total += ndcg_at_k(trec_rank(best), judged, 10)
            scores[name] = round(total / len(beir.qrels), 4)
    return scores


def _folder(tmp: Path, name: str) -> Path:
    """Each engine's folder; both FTS5 plans share one table."""
    folder = tmp / ("fts5" if name.startswith("fts5") else name)
    folder.mkdir(exist_ok=True)
    return folder


def measure(dataset: Path, chunks: int, names: list[str], count: int) -> None:
    abstracts = scifact_words(dataset)
    passages = synthetic(abstracts, chunks)
    queries = query_sets(dataset, abstracts, count)
    Tantivy.group_ids = {g: [p[0] for p in passages if p[0] % 10 == g] for g in range(10)}
    extra = synthetic(abstracts, 1000, seed=8)
    extra = [(chunks + cid, title, text) for cid, title, text in extra]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        engines, report = [], {}
        for name in names:
            start = time.perf_counter()
            engine = ENGINES[name](_folder(Path(tmp), name), passages)
            report[name] = {"chunks": chunks, "build_s": round(time.perf_counter() - start, 1), "disk": engine.disk()}
            engines.append(engine)
        for label, qs in queries.items():
            for name, figures in latency(engines, qs).items():
                report[name][label] = figures
        for name, figures in latency([e for e in engines if e.name != "bm25s"], queries["scifact"], True).items():
            report[name]["filtered_10pct"] = figures
        print(json.dumps(report), flush=True)
        for engine in engines:
            many = queries["common"] * 4 if isinstance(engine, Tantivy) else queries["common"][:40]
            report[engine.name]["threads2_speedup"] = threads_speedup(functools.partial(engine.search, k=DEPTH), many)
            if isinstance(engine, Tantivy):
                report[engine.name]["threads2_speedup_engine_call"] = _engine_call_only(engine, many)
            heavy = functools.partial(engine.search, queries["common"][0], DEPTH)
            report[engine.name]["python_thread_share_during_search"] = gil_share(heavy)
            if engine.name == "fts5-pruned":
                continue  # shares the fts5 table, updated once
            start = time.perf_counter()
            engine.update(extra, list(range(1, 1001)))
            report[engine.name]["add1000_delete1000_s"] = round(time.perf_counter() - start, 2)
        numbers = [random.Random(1).random() for _ in range(2_000_000)]  # sorted(): a C call that keeps the GIL
        print(json.dumps({"python_thread_share_during_sorted()": gil_share(functools.partial(sorted, numbers))}))
        for name, row in report.items():
            print(json.dumps({"engine": name, **row}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--queries", type=int, default=200, help="SciFact queries (and half as many common-word ones)")
    parser.add_argument("--scifact-index", type=Path, help="a `semsearch eval` index of SciFact, for nDCG@10")
    args = parser.parse_args()
    names = args.engines.split(",")
    if args.scifact_index:
        print(json.dumps({"scifact_lexical_ndcg@10": scifact_quality(args.dataset, args.scifact_index, names)}))
    if args.chunks:
        measure(args.dataset, args.chunks, names, args.queries)


if __name__ == "__main__":
    main()
