"""Fixtures of the search tests: each backend, empty or loaded with the corpus.

The backend fixtures are parametrized over tantivy and Elasticsearch (the noida-db emulator the
tests start, or a real cluster named by FAIRNODE_TEST_ES_URL), so every test of the shared
behavioural suite runs against both and must pass on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from noida import elasticsearch_server
from search_helpers import BACKENDS, corpus, make_backend

from node.search.backend import SearchBackend


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with elasticsearch_server(tmp_path_factory.mktemp("es")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    url = request.getfixturevalue("es_url") if request.param == "elasticsearch" else None
    backend = make_backend(request.param, tmp_path, url)
    yield backend
    backend.close()


@pytest.fixture
def backend(empty_backend: SearchBackend) -> SearchBackend:
    """A backend holding ``corpus()``."""
    empty_backend.index(ds.to_json() for ds in corpus())
    return empty_backend
