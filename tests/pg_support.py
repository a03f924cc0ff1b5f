"""A PostgreSQL schema of its own per test (from EVI_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ENV = "EVI_TEST_POSTGRES_URL"


def make_pg_schema_url(base: str) -> tuple[str, Callable[[], None]]:
    """A URL whose connections use a fresh schema, and a function that drops it."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """Skip when PostgreSQL is not configured; else a schema URL, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, drop = make_pg_schema_url(base)
    try:
        yield url
    finally:
        drop()
