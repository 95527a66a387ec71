"""Placeholder: arrives with its issue (see README)."""
