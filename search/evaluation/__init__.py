"""Measuring retrieval: BEIR collections, golden sets, ingest and query benchmarks."""
