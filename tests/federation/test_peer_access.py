"""Peer access: a bearer token equal to FAIRNODE_FEDERATION_TOKEN makes a request a federation
peer, served `federation` records over OAI-PMH; a wrong token is a 401 with a challenge;
`institution` and `private` records never leave the node, in any verb, for anyone, not even as
deleted headers; and a resumption token only resumes for the kind of caller that started it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from test_descriptor import serving
from werkzeug.datastructures import WWWAuthenticate

from node.auth.peers import TOKEN_ENV
from node.oai.identifiers import oai_identifier
from node.oai.views import PAGE_SIZE_SETTING
from node.records import Lifecycle, Visibility

TOKEN = "s3cret-federation-token"
PEER = {"Authorization": f"Bearer {TOKEN}"}
OAI = {"oai": "http://www.openarchives.org/OAI/2.0/"}
BASE_URL = "http://node.test"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

VISIBILITIES = ["public", "federation", "institution", "private"]
NEVER = {"institution", "private"}  # the visibilities that never leave the node


@pytest.fixture
def records(catalog) -> None:
    """One published and one withdrawn record of each visibility, and a draft."""
    for i, vis in enumerate(VISIBILITIES):
        catalog.add(
            catalog.dataset(
                f"ds-{vis}", visibility=Visibility(vis), modified=T0 + timedelta(minutes=i)
            )  # fmt: skip
        )
        catalog.add(
            catalog.dataset(
                f"ds-gone-{vis}",
                visibility=Visibility(vis),
                lifecycle=Lifecycle.withdrawn,
                withdrawn_reason="retracted",
                modified=T0 + timedelta(minutes=10 + i),
            )  # fmt: skip
        )
    catalog.add(catalog.dataset("ds-draft", lifecycle=Lifecycle.draft))


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


@pytest.fixture
def oai(app: Flask, records: None) -> FlaskClient:
    app.config[PAGE_SIZE_SETTING] = 2  # lists need several pages
    return app.test_client()


def xml(response) -> etree._Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    return etree.fromstring(response.data)


def harvest(client: FlaskClient, verb: str, headers: dict[str, str]) -> list[tuple[str, bool]]:
    """Every (identifier, deleted) of a list, following resumption tokens."""
    out: list[tuple[str, bool]] = []
    args = {"verb": verb, "metadataPrefix": "oai_dc"}
    while True:
        root = xml(client.get("/oai", query_string=args, headers=headers))
        for h in root.iterfind(".//oai:header", OAI):
            out.append((h.findtext("oai:identifier", namespaces=OAI), h.get("status") == "deleted"))
        token = root.findtext(f".//oai:{verb}/oai:resumptionToken", namespaces=OAI)
        if not token:
            return out
        args = {"verb": verb, "resumptionToken": token}


def ident(dataset_id: str) -> str:
    return oai_identifier(BASE_URL, dataset_id)


def expected(visibilities: list[str]) -> list[tuple[str, bool]]:
    return [(ident(f"ds-{v}"), False) for v in visibilities] + [
        (ident(f"ds-gone-{v}"), True) for v in visibilities
    ]


@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_anonymous_harvesters_get_public_records_only(oai: FlaskClient, token: str, verb: str):
    assert harvest(oai, verb, {}) == expected(["public"])


@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_a_peer_with_the_token_also_gets_federation_records(
    oai: FlaskClient, token: str, verb: str
):
    assert sorted(harvest(oai, verb, PEER)) == sorted(expected(["public", "federation"]))


def test_get_record_follows_the_same_policy(oai: FlaskClient, token: str):
    def get(dataset_id: str, headers: dict[str, str]) -> str:
        root = xml(oai.get("/oai", query_string={"verb": "GetRecord", "metadataPrefix": "dcat_ap",
                                                 "identifier": ident(dataset_id)},
                           headers=headers))  # fmt: skip
        error = root.find("oai:error", OAI)
        if error is not None:
            return error.get("code")
        header = root.find(".//oai:header", OAI)
        return "deleted" if header.get("status") == "deleted" else "record"

    assert get("ds-federation", {}) == "idDoesNotExist"
    assert get("ds-federation", PEER) == "record"
    assert get("ds-gone-federation", PEER) == "deleted"
    assert get("ds-gone-federation", {}) == "idDoesNotExist"
    for vis in NEVER:
        for who in ({}, PEER):
            assert get(f"ds-{vis}", who) == "idDoesNotExist"
            assert get(f"ds-gone-{vis}", who) == "idDoesNotExist"
    assert get("ds-draft", PEER) == "idDoesNotExist"


def test_institution_and_private_records_never_appear_in_any_verb(oai: FlaskClient, token: str):
    requests_ = [
        {"verb": "Identify"},
        {"verb": "ListMetadataFormats"},
        {"verb": "ListSets"},
        {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"},
        {"verb": "ListRecords", "metadataPrefix": "dcat_ap"},
        {"verb": "ListRecords", "metadataPrefix": "oai_datacite"},
        {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "visibility:private"},
        {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "visibility:institution"},
    ] + [
        {"verb": verb, "identifier": ident(f"ds{part}{vis}"), **extra}
        for vis in NEVER
        for part in ("-", "-gone-")
        for verb, extra in (
            ("GetRecord", {"metadataPrefix": "oai_dc"}),
            ("ListMetadataFormats", {}),
        )  # fmt: skip
    ]
    for headers in ({}, PEER):
        seen = ""
        for args in requests_:
            root = xml(oai.get("/oai", query_string=args, headers=headers))
            if "identifier" in args:  # asked by name: unknown, as if it did not exist
                assert root.find("oai:error", OAI).get("code") == "idDoesNotExist"
                continue
            # the request element echoes the arguments: look at the answer only
            root.remove(root.find("oai:request", OAI))
            seen += etree.tostring(root, encoding="unicode")
        for vis in NEVER:
            assert f"ds-{vis}" not in seen
            assert f"ds-gone-{vis}" not in seen
            assert f"visibility:{vis}" not in seen
        assert "ds-draft" not in seen


def test_list_sets_names_the_visibilities_the_caller_is_served(oai: FlaskClient, token: str):
    def specs(headers: dict[str, str]) -> set[str]:
        root = xml(oai.get("/oai?verb=ListSets", headers=headers))
        return {s for s in root.xpath("//oai:setSpec/text()", namespaces=OAI)
                if s.startswith("visibility:")}  # fmt: skip

    assert specs({}) == {"visibility:public"}
    assert specs(PEER) == {"visibility:public", "visibility:federation"}


def test_a_wrong_token_is_a_401_with_a_challenge(app: Flask, records: None, token: str):
    """Over real HTTP, so the status line and the header are what a harvester gets."""
    with serving(app) as base:
        r = requests.get(f"{base}/oai", params={"verb": "Identify"},
                         headers={"Authorization": "Bearer not-the-token"}, timeout=10)  # fmt: skip
        assert r.status_code == 401
        challenge = WWWAuthenticate.from_header(r.headers["WWW-Authenticate"])
        assert challenge.type == "bearer"
        assert challenge.parameters["error"] == "invalid_token"
        assert "ds-" not in r.text
        empty = requests.get(f"{base}/oai", params={"verb": "Identify"},
                             headers={"Authorization": "Bearer "}, timeout=10)  # fmt: skip
        assert empty.status_code == 401
        ok = requests.get(f"{base}/oai", params={"verb": "Identify"}, headers=PEER, timeout=10)
        assert ok.status_code == 200
        # another scheme is not a claim to be a peer (a proxy's password): anonymous
        basic = requests.get(f"{base}/oai", params={"verb": "ListIdentifiers",
                                                    "metadataPrefix": "oai_dc"},
                             auth=("user", "pw"), timeout=10)  # fmt: skip
        assert basic.status_code == 200
        assert "ds-federation" not in basic.text


def test_without_the_variable_no_peer_authenticates(
    oai: FlaskClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    r = oai.get("/oai?verb=Identify", headers=PEER)
    assert r.status_code == 401
    monkeypatch.setenv(TOKEN_ENV, "")
    assert oai.get("/oai?verb=Identify", headers={"Authorization": "Bearer "}).status_code == 401
    assert oai.get("/oai?verb=Identify", headers=PEER).status_code == 401


def first_token(client: FlaskClient, headers: dict[str, str]) -> str:
    args = {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}
    root = xml(client.get("/oai", query_string=args, headers=headers))
    return root.findtext(".//oai:resumptionToken", namespaces=OAI)


def resume(client: FlaskClient, token: str, headers: dict[str, str]) -> etree._Element:
    args = {"verb": "ListIdentifiers", "resumptionToken": token}
    return xml(client.get("/oai", query_string=args, headers=headers))


def test_an_anonymous_caller_cannot_continue_a_peers_list(app: Flask, oai: FlaskClient, token: str):
    app.config[PAGE_SIZE_SETTING] = 1
    peer_token = first_token(oai, PEER)
    root = resume(oai, peer_token, {})
    error = root.find("oai:error", OAI)
    assert error.get("code") == "badResumptionToken"
    assert "authenticated peer" in error.text
    assert resume(oai, peer_token, PEER).find("oai:error", OAI) is None
    # and the other way round: a peer resuming an anonymous list is told so too
    anon_token = first_token(oai, {})
    error = resume(oai, anon_token, PEER).find("oai:error", OAI)
    assert error.get("code") == "badResumptionToken"
    assert "anonymous harvester" in error.text


# --------------------------------------------------------------------------- other read paths


def test_the_api_uses_the_same_identity(oai: FlaskClient, token: str):
    assert oai.get("/api/v1/datasets/ds-federation").status_code == 404
    assert oai.get("/api/v1/datasets/ds-federation", headers=PEER).status_code == 200
    assert oai.get("/api/v1/datasets/ds-institution", headers=PEER).status_code == 404
    r = oai.get("/api/v1/datasets", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "ds-" not in r.get_data(as_text=True)


@pytest.fixture(autouse=True)
def _no_token_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variable it needs; none inherits one from the environment."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
