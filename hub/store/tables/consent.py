"""Tables for the consent area."""
