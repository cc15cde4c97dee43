"""OpenAI's Responses API (`/v1/responses`) with the `file_search` tool."""

from __future__ import annotations

from fastapi import APIRouter


def responses_router() -> APIRouter:
    """The routes (being built: see issue 12)."""
    return APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
