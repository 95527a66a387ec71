"""The catalog: the source of truth for records (SQLAlchemy; SQLite by default, PostgreSQL at scale)."""
