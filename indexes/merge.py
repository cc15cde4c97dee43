"""Merging vector segments: a tiered policy, as Lucene's, and `optimize` (everything into one).

Each publish adds a segment, so segments pile up; a merge rewrites a group of them as one,
leaving out their tombstones. Segments are grouped in tiers of live size (under 1,000
vectors, then each power of ten); a tier holding `MERGE_FACTOR` segments merges its
smallest ones, and a segment more than `MAX_DELETED_SHARE` deleted is rewritten alone, as is
a flat segment grown past `vectors.ANN_MIN_VECTORS` (a large publish): it becomes HNSW.
A merge builds its segment without any lock (readers and writers go on), then commits
in one short transaction under the write lock; if a writer changed the inputs meanwhile
(another merge), the work is dropped. Killed at any point, it leaves the index as it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import segments, vectors
from .reader import catalog_generation
from .segments import SegmentInfo
from .store import LocalIndex
from .writer import LocalWriter

MERGE_FACTOR = 10
FLOOR_VECTORS = 1_000
MAX_DELETED_SHARE = 0.25


@dataclass(frozen=True)
class MergeResult:
    """What one merge did, and how long it held the write lock (the pause writers saw)."""

    segments: int
    vectors: int
    dropped: int
    kind: str
    seconds: float
    locked_seconds: float


def plan(infos: Sequence[SegmentInfo]) -> list[list[SegmentInfo]]:
    """The groups of segments worth merging now (none when the index is in good shape)."""
    tiers: dict[int, list[SegmentInfo]] = {}
    for info in infos:
        tiers.setdefault(_tier(info.vectors - info.tombstones), []).append(info)
    groups = [sorted(members, key=lambda s: s.vectors)[:MERGE_FACTOR] for members in tiers.values()]
    groups = [group for group in groups if len(group) >= MERGE_FACTOR]
    chosen = {info.id for group in groups for info in group}
    for info in infos:
        if info.id in chosen or not info.vectors:
            continue
        too_large = info.kind == "flat" and info.vectors - info.tombstones >= vectors.ANN_MIN_VECTORS
        if too_large or info.tombstones / info.vectors > MAX_DELETED_SHARE:
            groups.append([info])
    return groups


def _tier(live: int) -> int:
    return 0 if live < FLOOR_VECTORS else int(math.log10(live / FLOOR_VECTORS)) + 1


def merge_now(index: LocalIndex, *, wait: float = 300.0) -> list[MergeResult]:
    """Run the merges the policy asks for, one after the other."""
    done = []
    while groups := plan(live_segments(index)):
        result = merge(index, groups[0], wait=wait)
        if result is None:
            break  # the inputs changed under us: the next round plans again
        done.append(result)
    return done


def optimize(index: LocalIndex, *, wait: float = 300.0) -> MergeResult | None:
    """Merge every segment into one without tombstones, then compact the catalog."""
    infos = live_segments(index)
    result = None
    if len(infos) > 1 or any(info.tombstones for info in infos):
        result = merge(index, infos, wait=wait)
    with LocalWriter(index, wait=wait) as writer:
        writer.vacuum()
    return result


def live_segments(index: LocalIndex) -> list[SegmentInfo]:
    """The current snapshot's segments."""
    with index.read() as reader:
        return reader.segments()


def merge(index: LocalIndex, group: Sequence[SegmentInfo], *, wait: float = 300.0) -> MergeResult | None:
    """Merge `group` into one segment; None if another writer retired one of them first."""
    started = time.perf_counter()
    catalog = index.catalog()
    with catalog.transaction(write=False):
        dead = segments.dead_ids(catalog)
        view = index.segment_set(catalog, catalog_generation(catalog))
    if {info.id for info in group} - {info.id for info in view.infos}:
        return None
    parts = [vectors.all_vectors(view.load(info)) for info in group]
    ids = np.concatenate([p[0] for p in parts])
    matrix = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, index.manifest.dimension), "f4")
    keep = ~np.isin(ids, dead)
    prepared = segments.prepare(index.folder, ids[keep], matrix[keep], index.manifest.vector_storage)
    locked = time.perf_counter()
    try:
        with LocalWriter(index, wait=wait) as writer:
            locked = time.perf_counter()
            if not writer.commit_merge(group, prepared, ids[~keep]):
                return None
    finally:
        prepared.tmp.unlink(missing_ok=True)  # gone already unless the merge was dropped or failed
    ended = time.perf_counter()
    return MergeResult(len(group), prepared.vectors, int((~keep).sum()), prepared.kind, ended - started, ended - locked)
