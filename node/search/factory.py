"""Choosing the search backend from the configuration (heavy clients imported only here)."""

from __future__ import annotations

from node.config import Config
from node.search.backend import SearchBackend


def open_backend(config: Config) -> SearchBackend:
    """The backend ``[search] backend`` names, ready to use (nothing is written yet)."""
    if config.search.backend == "elasticsearch":
        from node.search.elastic import ElasticsearchBackend

        return ElasticsearchBackend(config)
    from node.search.tantivy_index import TantivyBackend

    return TantivyBackend(config)
