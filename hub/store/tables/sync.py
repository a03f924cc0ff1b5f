"""Tables for the sync area."""
