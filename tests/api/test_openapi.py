"""The OpenAPI 3.1 document (node/api/openapi.py): valid, and describing every API route."""

from __future__ import annotations

import re

import pytest
from flask import Flask


def test_openapi_document_is_valid_3_1(client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"] == "3.1.0"
    validator.validate(doc)  # raises with the path of the first problem


def test_openapi_describes_every_api_route(app: Flask, client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    described = set(doc["paths"])
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            routes.add(re.sub(r"<(?:\w+:)?\w+>", "{id}", path))
    assert routes == described
    assert doc["servers"] == [{"url": "http://node.test/api/v1"}]
