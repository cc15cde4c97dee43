"""Random documents and filters for the filter tests: the local catalog's and Milvus's against `Filter.matches`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from indexes import DocumentRecord

TOPICS = {
    "garden": "soil compost tomato seedling pruning mulch watering roses hedge spade",
    "river": "current delta estuary flood bank sediment meander salmon dam bridge",
    "coffee": "espresso roast bean grinder crema arabica brew barista milk cup",
    "chess": "opening gambit endgame bishop knight rook checkmate pawn castle tempo",
    "space": "orbit rocket comet galaxy telescope nebula satellite launch crater moon",
    "music": "melody chord rhythm violin tempo concert harmony piano score rehearsal",
    "bread": "dough yeast flour oven crust sourdough knead proof loaf starter",
    "storms": "thunder lightning cyclone rainfall pressure gust forecast hail front cloud",
}
TYPES = {"text": "txt", "markdown": "md", "rst": "rst", "html": "html", "pdf": "pdf"}
START, END = datetime(2019, 1, 1, tzinfo=UTC).timestamp(), datetime(2025, 1, 1, tzinfo=UTC).timestamp()


def random_attributes(rng: np.random.Generator, i: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "year": int(rng.integers(2019, 2025)),
        "public": bool(rng.random() < 0.5),
        "score": round(float(rng.random()), 3),
    }
    if rng.random() < 0.9:
        attributes["team"] = str(rng.choice(["a", "b", "c"]))
    if rng.random() < 0.7:
        attributes["tags"] = str(rng.choice(["red", "green", "blue"]))
    if i % 23 == 0:
        attributes["year"] = str(attributes["year"])  # a string "2021" is not the number 2021
    if i % 31 == 0:
        attributes["a.b c"] = "odd key"
    return attributes


def random_document(rng: np.random.Generator, i: int) -> tuple[DocumentRecord, list[str]]:
    kind = str(rng.choice(list(TYPES)))
    attributes = random_attributes(rng, i)
    folder = str(rng.choice(["", "notes/", "x/y/"]))
    team = attributes.get("team", "none")
    path = f"/data/{team}/{attributes['year']}/{folder}doc-{i:03d}.{TYPES[kind]}" if i else "/special/[draft] notes.md"
    topic = str(rng.choice(list(TOPICS)))
    words = TOPICS[topic].split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(6, 12)))) for _ in range(int(rng.integers(1, 5)))]
    record = DocumentRecord(
        path=path,
        content_hash=f"h{i}",
        type=kind,
        title=f"Document {i} on {topic}",
        size=int(rng.integers(100, 100_000)),
        mtime=float(rng.uniform(START, END)),
        pages=int(rng.integers(1, 50)) if kind == "pdf" else None,
        attributes=attributes,
    )
    return record, texts


def _leaf(rng: np.random.Generator) -> dict[str, Any]:
    pick = int(rng.integers(0, 17))
    team, year, iso = (
        str(rng.choice(["a", "b", "c"])),
        int(rng.integers(2019, 2025)),
        f"{int(rng.integers(2019, 2025))}-{int(rng.integers(1, 13)):02d}-01",
    )
    op = str(rng.choice(["gt", "gte", "lt", "lte"]))
    leaves: list[dict[str, Any]] = [
        {"key": "team", "type": str(rng.choice(["eq", "ne"])), "value": team},
        {
            "key": "team",
            "type": str(rng.choice(["in", "nin"])),
            "value": sorted({team, str(rng.choice(["a", "b", "c"]))}),
        },
        {"key": "year", "type": op, "value": year},
        {
            "key": "year",
            "type": str(rng.choice(["eq", "ne", "in"])),
            "value": year if rng.random() < 0.7 else str(year),
        },
        {"key": "year", "type": str(rng.choice(["in", "nin"])), "value": [year, str(year), year + 1]},
        {"key": "public", "type": str(rng.choice(["eq", "ne"])), "value": bool(rng.random() < 0.5)},
        {
            "key": "tags",
            "type": str(rng.choice(["eq", "ne", "prefix"])),
            "value": str(rng.choice(["red", "green", "gr"])),
        },
        {"key": "score", "type": op, "value": round(float(rng.random()), 2)},
        {"key": "type", "type": str(rng.choice(["eq", "ne", "in", "nin"])), "value": str(rng.choice(list(TYPES)))},
        {"key": "size", "type": op, "value": int(rng.integers(100, 100_000))},
        {"key": "modified", "type": op, "value": iso if rng.random() < 0.5 else f"{iso}T12:30:00+02:00"},
        {"key": "modified", "type": op, "value": float(rng.uniform(START, END))},
        {"key": "pages", "type": op, "value": int(rng.integers(1, 50))},
        {
            "key": "path",
            "type": "prefix",
            "value": str(rng.choice([f"/data/{team}/", f"/data/{team}/{year}/", "/special"])),
        },
        {
            "key": "path",
            "type": "glob",
            "value": str(
                rng.choice(["/data/*/*/*.md", "/data/**/notes/*", "**/*.pdf", f"/data/{team}/**", "/data/?/2020/**"])
            ),
        },
        {"key": "title", "type": "prefix", "value": f"Document {int(rng.integers(1, 30))}"},
        {"key": str(rng.choice(["nope", "a.b c"])), "type": str(rng.choice(["eq", "ne"])), "value": "odd key"},
    ]
    leaf = leaves[pick]
    if leaf["type"] in ("in", "nin") and not isinstance(leaf["value"], list):
        leaf["value"] = [leaf["value"]]
    return leaf


def random_filter(rng: np.random.Generator, depth: int = 0) -> dict[str, Any]:
    if depth < 3 and rng.random() < 0.4:
        return {
            "type": str(rng.choice(["and", "or"])),
            "filters": [random_filter(rng, depth + 1) for _ in range(int(rng.integers(1, 4)))],
        }
    return _leaf(rng)


def random_query(rng: np.random.Generator) -> str:
    words = " ".join(TOPICS.values()).split()
    return " ".join(rng.choice(words, size=3))
