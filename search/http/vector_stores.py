"""OpenAI's Vector stores API (`/v1/vector_stores`...)."""

from __future__ import annotations

from fastapi import APIRouter


def vector_stores_router() -> APIRouter:
    """The routes (being built: see issue 12)."""
    return APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
