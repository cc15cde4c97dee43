"""Milvus as the store behind an index (Milvus Lite or a server): filters compiled to Milvus expressions."""

from __future__ import annotations
