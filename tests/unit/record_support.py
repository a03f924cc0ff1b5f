"""Stored records made up for the tests of what is read from them (casework, statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.model.canonical import json_sha256
from hub.store.tables.sync import StoredRecord


def add_record(
    session: Session,
    participant_id: int,
    *,
    origin: str,
    source_id: str,
    kind: str,
    category: str,
    body: dict[str, Any],
    at: datetime,
    restricted: bool = False,
    unmapped: list[dict[str, str]] | None = None,
) -> None:
    """One record as the sync stores it (``body`` in the common model, with its ``kind``;
    ``unmapped``: the codes its mapping did not know, as ``{"field", "code"}``)."""
    session.add(
        StoredRecord(
            source=origin,
            source_id=source_id,
            participant_id=participant_id,
            kind=kind,
            category=category,
            updated_at=at,
            body=body,
            payload_sha256=json_sha256(body),
            restricted=restricted,
            unmapped=unmapped or [],
            stored_at=at,
        )
    )
