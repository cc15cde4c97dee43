"""The HTTP service: the FastAPI app, its routes, keys, limits, metrics, jobs and uploads."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
