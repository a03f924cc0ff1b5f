"""`evi db harden`: make the ledger append-only inside PostgreSQL itself.

Two independent layers, so one mistake does not open the log:

* privileges: the application role keeps SELECT and INSERT on the ledger tables but loses
  UPDATE, DELETE and TRUNCATE (on ``ledger_head`` it may only update ``size`` and
  ``frontier``, which the writer needs);
* triggers, which bind every role including the owner: ledger rows cannot be deleted or
  truncated, tiles and checkpoints cannot be changed, the head cannot shrink, and an
  entry may only be changed by a purge (bytes and search columns cleared, ``seq``,
  ``time``, ``action`` and ``leaf_hash`` untouched).

Purging therefore needs a role with UPDATE on ``ledger_entry``: run ``evi log purge``
as the schema owner. Repeatable.
"""

from __future__ import annotations

from sqlalchemy import Engine

from hub.errors import ConfigError

LEDGER_TABLES = ("ledger_entry", "ledger_tile", "ledger_checkpoint")

# The SQL holds no percent signs: it goes through DB-API drivers, which read them as
# parameter placeholders.
_FUNCTIONS = """
CREATE OR REPLACE FUNCTION evi_ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
    MESSAGE = 'the EVI hub ledger is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME
      || ' refused';
END $$;

CREATE OR REPLACE FUNCTION evi_ledger_entry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq = OLD.seq AND NEW.leaf_hash = OLD.leaf_hash AND NEW.time = OLD.time
     AND NEW.action = OLD.action AND NEW.canonical IS NULL AND NEW.purged_at IS NOT NULL
     AND NEW.decision IS NULL AND NEW.outcome IS NULL AND NEW.origin IS NULL
     AND NEW.recipient IS NULL AND NEW.actor IS NULL AND NEW.participant IS NULL
     AND NEW.correlation_id IS NULL THEN
    RETURN NEW;  -- a purge: content cleared, place in the tree kept
  END IF;
  RAISE EXCEPTION 'the EVI hub ledger is append-only: only a purge may change an entry'
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION evi_ledger_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = OLD.id AND NEW.size >= OLD.size THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the EVI hub ledger head may only grow'
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def harden_statements(role: str, quote: str) -> list[str]:
    """The SQL `evi db harden` runs; ``quote`` is ``role`` quoted as an identifier."""
    tables = ", ".join(LEDGER_TABLES)
    statements = [
        _FUNCTIONS,
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables}, ledger_head FROM {quote}",
        f"GRANT SELECT, INSERT ON {tables}, ledger_head TO {quote}",
        f"GRANT UPDATE (size, frontier) ON ledger_head TO {quote}",
        f"GRANT USAGE, SELECT ON SEQUENCE ledger_checkpoint_id_seq TO {quote}",
    ]
    for table in LEDGER_TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS evi_append_only_delete ON {table}",
            f"CREATE TRIGGER evi_append_only_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION evi_ledger_refuse()",
            f"DROP TRIGGER IF EXISTS evi_append_only_truncate ON {table}",
            f"CREATE TRIGGER evi_append_only_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION evi_ledger_refuse()",
            f"DROP TRIGGER IF EXISTS evi_append_only_update ON {table}",
            f"CREATE TRIGGER evi_append_only_update BEFORE UPDATE ON {table} FOR EACH ROW "
            "EXECUTE FUNCTION "
            + ("evi_ledger_entry_guard()" if table == "ledger_entry" else "evi_ledger_refuse()"),
        ]
    statements += [
        "DROP TRIGGER IF EXISTS evi_append_only_update ON ledger_head",
        "CREATE TRIGGER evi_append_only_update BEFORE UPDATE ON ledger_head FOR EACH ROW "
        "EXECUTE FUNCTION evi_ledger_head_guard()",
        "DROP TRIGGER IF EXISTS evi_append_only_delete ON ledger_head",
        "CREATE TRIGGER evi_append_only_delete BEFORE DELETE ON ledger_head "
        "FOR EACH ROW EXECUTE FUNCTION evi_ledger_refuse()",
    ]
    return statements


def harden(engine: Engine, role: str) -> list[str]:
    """Apply :func:`harden_statements` in one transaction; returns what was run.

    Raises :class:`ConfigError` on SQLite (which has no roles) or for an unknown role.
    """
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            "`evi db harden` is for PostgreSQL; on SQLite protect the database file with "
            "file permissions and rely on `evi log verify` and the witness directory"
        )
    with engine.begin() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_roles WHERE rolname = %(role)s", {"role": role}
        ).first()
        if exists is None:
            raise ConfigError(
                f"PostgreSQL has no role '{role}'; give the role the application connects as "
                "(--role)"
            )
        statements = harden_statements(role, engine.dialect.identifier_preparer.quote(role))
        for statement in statements:
            conn.exec_driver_sql(statement)
    return statements
