"""Tables for the ledger area."""
