"""Identities and the one access policy every read path goes through."""
