"""Every table, imported here so ``Base.metadata`` is complete for Alembic and tests."""

from hub.store.tables import connectors, consent, ledger, meta, participant, sync, users

__all__ = ["connectors", "consent", "ledger", "meta", "participant", "sync", "users"]
