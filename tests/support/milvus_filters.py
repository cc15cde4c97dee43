"""The filter property test on a Milvus engine: random documents in a collection, random filters compiled to
expressions, the rows found against `Filter.matches` and the local catalog. Shared by Milvus Lite
(tests/test_milvus_filters.py) and the 2.3.5 server (tests/test_milvus_conformance.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from indexes import Comparison, DocumentRecord, LocalIndex, LocalWriter, Manifest, glob_matches
from indexes.milvus.filter_expr import (
    Dialect,
    expression,
    glob_candidates,
    output_field,
    split_attributes,
    string_value,
)
from search import parse_filters
from tests.support.filters import random_document, random_filter

DOCUMENTS, FILTERS = 200, 300
COLLECTION = "documents"


def filterable(record: DocumentRecord) -> dict[str, Any]:
    """A document as `Filter.matches` reads it."""
    return {
        "path": record.path,
        "type": record.type,
        "size": record.size,
        "modified": record.mtime,
        "title": record.title,
        "pages": record.pages,
        "attributes": record.attributes,
    }


def document_row(document_id: int, record: DocumentRecord) -> dict[str, Any]:
    """A document as a row of the test collection: the filterable columns of the store's schema."""
    text, number, boolean = split_attributes(record.attributes)
    return {
        "document_id": document_id,
        **{k: getattr(record, k) for k in ("path", "type", "title", "size", "mtime")},
        "pages": -1 if record.pages is None else record.pages,
        "attr_text": text,
        "attr_number": number,
        "attr_bool": boolean,
        "v": [1.0, 0.0],
    }


def create_documents(client: Any, name: str = COLLECTION) -> None:
    """A collection `name` with the filterable columns of the store's documents (and a dummy vector)."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("document_id", DataType.INT64, is_primary=True)
    for field in ("path", "type", "title"):
        schema.add_field(field, DataType.VARCHAR, max_length=4096)
    schema.add_field("size", DataType.INT64)
    schema.add_field("pages", DataType.INT64)
    schema.add_field("mtime", DataType.DOUBLE)
    for field in ("attr_text", "attr_number", "attr_bool"):
        schema.add_field(field, DataType.JSON)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")


def fill(client: Any, rng: np.random.Generator, name: str = COLLECTION) -> dict[int, DocumentRecord]:
    """DOCUMENTS random documents inserted into `name` (then loaded again, as after a reopen), by id."""
    records = {i + 1: random_document(rng, i)[0] for i in range(DOCUMENTS)}
    client.insert(name, [document_row(i, r) for i, r in records.items()])
    client.release_collection(name)
    client.load_collection(name)  # Milvus searches only a loaded collection
    return records


STRONG = {"consistency_level": "Strong"}


def query(
    client: Any, expr: str, fields: list[str], name: str = COLLECTION, consistency: Mapping[str, Any] = STRONG
) -> list[dict[str, Any]]:
    """The rows `expr` selects; `consistency` as the store passes it (Strong waits ~250 ms per query on a server)."""
    return list(client.query(name, filter=expr, output_fields=fields, limit=16_384, **consistency))


def found(client: Any, expr: str, name: str = COLLECTION, consistency: Mapping[str, Any] = STRONG) -> set[int]:
    """The document ids of the rows `expr` selects."""
    return {r["document_id"] for r in query(client, expr, ["document_id"], name, consistency)}


def resolver(client: Any, dialect: Dialect, name: str = COLLECTION, consistency: Mapping[str, Any] = STRONG) -> Any:
    """The store's way with globs: candidates by the glob's literal head, then the glob rule in Python."""

    def resolve(c: Comparison) -> Collection[int]:
        assert isinstance(c.value, str)
        fields = ["document_id", output_field(c.key)]
        rows = query(client, expression(glob_candidates(c), dialect), fields, name, consistency)
        return {
            r["document_id"] for r in rows if (s := string_value(r, c.key)) is not None and glob_matches(c.value, s)
        }

    return resolve


def local_catalog(folder: Path, records: dict[int, DocumentRecord]) -> LocalIndex:
    """The same documents in a local index (no passages): its catalog answers filters in SQL."""
    index = LocalIndex.create(folder, Manifest("test/model", 4))
    with LocalWriter(index) as writer:
        for record in records.values():
            writer.stage(record, [])
        writer.publish()
    return index


def check_random_filters(
    client: Any,
    dialect: Dialect,
    records: dict[int, DocumentRecord],
    folder: Path,
    rng: np.random.Generator,
    name: str = COLLECTION,
    consistency: Mapping[str, Any] = STRONG,
) -> None:
    """FILTERS random filters: the rows Milvus finds == `Filter.matches` == the local catalog's documents."""
    index, resolve, sizes = local_catalog(folder, records), resolver(client, dialect, name, consistency), []
    try:
        with index.read() as reader:
            for n in range(FILTERS):
                f = parse_filters(random_filter(rng))
                assert f is not None
                expected = {i for i, r in records.items() if f.matches(filterable(r))}
                expr = expression(f, dialect, resolve)
                assert found(client, expr, name, consistency) == expected, f"filter {n}: {f}\n{expr}"
                assert {d.record.path for d in reader.documents(f)} == {records[i].path for i in expected}
                sizes.append(len(expected))
    finally:
        index.close()
    assert sum(0 < n < DOCUMENTS for n in sizes) > FILTERS // 2  # the filters are not trivial
