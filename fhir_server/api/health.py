"""Liveness (`GET /healthz`: the process answers) and readiness (`GET /readyz`: the database does)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fhir_server.storage import UNAVAILABLE_ERRORS

router = APIRouter()


@router.get("/healthz", include_in_schema=True)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.database.ping()
    except UNAVAILABLE_ERRORS as error:
        return JSONResponse({"status": "unavailable", "database": str(error).split(",")[0]}, 503)
    return JSONResponse({"status": "ready"})
