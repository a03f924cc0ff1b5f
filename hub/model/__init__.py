"""Pydantic models: the hub's common language (see DESIGN.md, "Domain words")."""
