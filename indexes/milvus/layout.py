"""The collections of a Milvus index as pymilvus builds them: fields, vector indexes, create, load, drop.

Field names and meanings are in schema.py (with the rows that fill them). pymilvus is imported inside the
functions: it costs ~0.8 s, paid only when a Milvus index is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import CollectionNames

MAX_PATH, MAX_TYPE, MAX_TEXT, MAX_HASH = 4096, 64, 65535, 64  # VARCHAR lengths, in UTF-8 bytes


def _schema(client: Any, primary: str) -> Any:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(primary, DataType.INT64, is_primary=True)
    return schema


def _document_fields(schema: Any) -> None:
    """The document's own fields, denormalised onto each passage (filters run on one row)."""
    from pymilvus import DataType

    schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("type", DataType.VARCHAR, max_length=MAX_TYPE)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("size", DataType.INT64)
    schema.add_field("pages", DataType.INT64)
    schema.add_field("mtime", DataType.DOUBLE)
    for name in ("attr_text", "attr_number", "attr_bool"):
        schema.add_field(name, DataType.JSON)


def _passage_fields(schema: Any) -> None:
    from pymilvus import DataType

    for name in ("ordinal", "tokens", "page", "page_end", "char_start", "char_end"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("heading", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    schema.add_field("text_hash", DataType.VARCHAR, max_length=MAX_HASH)


def chunks_schema(client: Any, dimension: int, *, bm25: bool) -> Any:
    from pymilvus import DataType, Function, FunctionType

    schema = _schema(client, "chunk_key")
    schema.add_field("chunk_id", DataType.INT64)
    schema.add_field("document_id", DataType.INT64)
    schema.add_field("born", DataType.INT64)
    _document_fields(schema)
    _passage_fields(schema)
    if bm25:
        analyzer = {"tokenizer": "standard"}  # the words are stems already (indexes/words.py)
        schema.add_field(
            "words",
            DataType.VARCHAR,
            max_length=MAX_TEXT,
            enable_analyzer=True,
            enable_match=True,
            analyzer_params=analyzer,
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function("bm25", FunctionType.BM25, ["words"], ["sparse"]))
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def documents_schema(client: Any) -> Any:
    from pymilvus import DataType

    schema = _schema(client, "document_key")
    schema.add_field("document_id", DataType.INT64)
    schema.add_field("born", DataType.INT64)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=MAX_HASH)
    _document_fields(schema)
    schema.add_field("attributes", DataType.JSON)
    for name in ("chunks", "tokens"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("ingested_at", DataType.DOUBLE)
    schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    return schema


def staged_schema(client: Any, dimension: int) -> Any:
    from pymilvus import DataType

    schema = _schema(client, "staged_id")
    schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
    _passage_fields(schema)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def meta_schema(client: Any) -> Any:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("value", DataType.JSON)
    schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    return schema


def _index_params(client: Any, vector: str, *, server: bool, bm25: bool = False) -> Any:
    params = client.prepare_index_params()
    if vector == "dense" and server:
        params.add_index("dense", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 200})
    elif vector == "dense":
        params.add_index("dense", index_type="FLAT", metric_type="IP")  # exact; HNSW + a selective filter misses
    else:
        params.add_index(vector, index_type="FLAT", metric_type="L2")
    if bm25:
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return params


def create_collections(conn: Any, names: CollectionNames, dimension: int, *, bm25: bool) -> None:
    """Create the index's four collections (Strong consistency by default: each read states its own)."""
    from .connection import Dialect

    client, server = conn.client, conn.dialect is Dialect.SERVER
    plan = [
        (
            names.chunks,
            chunks_schema(client, dimension, bm25=bm25),
            _index_params(client, "dense", server=server, bm25=bm25),
        ),
        (names.documents, documents_schema(client), _index_params(client, "_v", server=server)),
        (names.staged, staged_schema(client, dimension), _index_params(client, "dense", server=False)),
        (names.meta, meta_schema(client), _index_params(client, "_v", server=server)),
    ]
    for name, schema, params in plan:
        if not conn.call("has_collection", name):
            conn.call("create_collection", name, schema=schema, consistency_level="Strong", retry=False)
        if not conn.call("list_indexes", name):  # also when a create was killed between the two
            # pymilvus polls an index build every 0.5 s: Lite builds an empty collection's at once, so skip it there
            conn.call("create_index", name, params, sync=server)


def missing_collections(conn: Any, names: CollectionNames) -> list[str]:
    """The index's collections that the store does not have."""
    return [name for name in names.all() if not conn.call("has_collection", name)]


def load_collections(conn: Any, names: CollectionNames) -> None:
    """Load the collections into memory (a reopened collection is 'released' and refuses searches)."""
    for name in names.all():
        conn.call("load_collection", name)


def drop_collections(conn: Any, names: CollectionNames) -> None:
    """Drop the index's collections (those that exist)."""
    for name in names.all():
        if conn.call("has_collection", name):
            conn.call("drop_collection", name)
