"""Fixtures for the OAI-PMH tests: the app with small pages, and a populated catalog."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from oai_helpers import PAGE, Corpus, populate

from node.oai.views import PAGE_SIZE_SETTING


@pytest.fixture
def oai_app(app: Flask) -> Flask:
    """The node's app with OAI pages of ``PAGE`` records, so that lists need several pages."""
    app.config[PAGE_SIZE_SETTING] = PAGE
    return app


@pytest.fixture
def oai(oai_app: Flask) -> FlaskClient:
    return oai_app.test_client()


@pytest.fixture
def corpus(catalog) -> Corpus:
    return populate(catalog)
