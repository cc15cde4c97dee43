"""OpenAI's Files API (`/v1/files`)."""

from __future__ import annotations

from fastapi import APIRouter


def files_router() -> APIRouter:
    """The routes (being built: see issue 12)."""
    return APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
