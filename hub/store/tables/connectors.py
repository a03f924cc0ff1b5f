"""Tables for the connectors area."""
