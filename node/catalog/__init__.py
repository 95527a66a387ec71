"""The catalog: the source of truth for records (SQLAlchemy; SQLite or PostgreSQL)."""
