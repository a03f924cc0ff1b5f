"""Storage: SQLAlchemy tables, repositories (never commit) and the one place that opens sessions."""
