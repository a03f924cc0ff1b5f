"""Which of an authority's codes its mapping file does not know, as the stored records say.

A record whose code the mapping does not know is stored with that code in its
``unmapped`` list (field and native code: the authority's vocabulary, never personal
data) and counted as ``unmapped`` in the night's report. This is what an administrator
needs to extend the mapping file: each field and code, how many stored records carry it,
and when the newest of them was stored.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hub.connector.registry import get_connector
from hub.context import Hub
from hub.store.tables.sync import StoredRecord

_BATCH = 5_000


def unmapped_codes(hub: Hub, name: str) -> list[dict[str, Any]]:
    """``field``, ``code``, ``records`` and ``last_stored`` (ISO 8601) for each code of
    connector ``name`` its mapping did not know, the most frequent first. Reads only the
    records that carry one (``json_array_length``, on SQLite and PostgreSQL alike)."""
    get_connector(hub.plugins, name)  # an unknown name is refused, listing the installed
    hub.require_schema()
    counts: Counter[tuple[str, str]] = Counter()
    newest: dict[tuple[str, str], datetime] = {}
    query = (
        select(StoredRecord.unmapped, StoredRecord.stored_at)
        .where(StoredRecord.source == name)
        .where(func.json_array_length(StoredRecord.unmapped) > 0)
        .execution_options(yield_per=_BATCH)
    )
    with hub.db.session() as session:
        for codes, stored_at in session.execute(query):
            for item in codes or []:
                key = (str(item.get("field")), str(item.get("code")))
                counts[key] += 1
                if key not in newest or stored_at > newest[key]:
                    newest[key] = stored_at
    return [
        {"field": field, "code": code, "records": n, "last_stored": newest[field, code].isoformat()}
        for (field, code), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
