"""Credentials the sandboxes check (their test credentials are public constants)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Header, HTTPException


def bearer_token(accept: Callable[[str], bool]) -> Callable[[str | None], None]:
    """A FastAPI dependency: ``Authorization: Bearer <token>`` that ``accept`` approves."""

    def dependency(authorization: str | None = Header(default=None)) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token or not accept(token.strip()):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    return dependency
