"""The REST API under /api/v1/: JSON views, query validation, record mappings and OpenAPI."""
