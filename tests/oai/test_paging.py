"""Resumption tokens while the catalog changes: no record skipped, none repeated.

A list is frozen when it starts: it holds the records that matched then and were not changed
before their page was served. A record changed during the harvest gets a later datestamp and
is picked up by the next incremental harvest (from = the first page's responseDate); records
added during the harvest too. Together the two harvests hold every record exactly in its newest
state, and the list itself never repeats one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from oai_helpers import (
    NS,
    PAGE,
    T0,
    Corpus,
    call,
    errors,
    first_page,
    harvest,
    make,
    next_page,
)

from node.records import Dataset, Lifecycle, Visibility

VERBS = ["ListIdentifiers", "ListRecords"]


def _order(corpus: Corpus, ids: set[str]) -> list[str]:
    return sorted(ids, key=lambda i: (corpus.datasets[i].modified, i))


def _changed(ds: Dataset, **update: object) -> Dataset:
    """``ds`` edited now: every write bumps ``modified`` (DESIGN §3)."""
    return ds.model_copy(update={"modified": datetime.now(UTC), **update})


@pytest.mark.parametrize("verb", VERBS)
def test_changes_between_pages(oai: FlaskClient, catalog, corpus: Corpus, verb: str) -> None:
    at_start = set(corpus.served)
    order = _order(corpus, at_start)
    h, token = first_page(oai, verb, metadataPrefix="oai_dc")
    started = h.pages[0].findtext("oai:responseDate", namespaces=NS)
    served_first = order[:PAGE]
    assert h.ids == served_first
    unserved = order[PAGE:]

    changed_unserved: set[str] = set()
    new: set[str] = set()
    # Between pages 1 and 2: edit a served record and an unserved one, withdraw one of each,
    # hide an unserved one (public → institution), publish a new record, and one that was
    # hidden until now (a draft becomes published).
    edits = {
        served_first[0]: {"title": "Edited after it was served"},
        unserved[-1]: {"title": "Edited before it was served"},
        served_first[1]: {"lifecycle": Lifecycle.withdrawn},
        unserved[0]: {"lifecycle": Lifecycle.withdrawn},
        unserved[3]: {"visibility": Visibility.institution},
    }
    for dataset_id, update in edits.items():
        corpus.datasets[dataset_id] = catalog.add(_changed(corpus.datasets[dataset_id], **update))
    changed_unserved |= {unserved[-1], unserved[0], unserved[3]}
    for dataset_id in ("ds-new-1", "ds-new-2"):
        corpus.datasets[dataset_id] = catalog.add(make(dataset_id, datetime.now(UTC)))
        new.add(dataset_id)
    published = _changed(corpus.datasets["ds-h-draft"], lifecycle=Lifecycle.published)
    corpus.datasets["ds-h-draft"] = catalog.add(published)
    new.add("ds-h-draft")

    token = next_page(oai, h, verb, token)
    # Between pages 2 and 3: edit a record served on page 2 and the next unserved one.
    on_page_2 = h.ids[PAGE:]
    upcoming = [i for i in order if i not in h.ids and i not in changed_unserved]
    for dataset_id in (on_page_2[0], upcoming[0]):
        corpus.datasets[dataset_id] = catalog.add(
            _changed(corpus.datasets[dataset_id], keywords=["edited"])
        )
    changed_unserved.add(upcoming[0])
    while token:
        body = h.pages[-1].find(f"oai:{verb}/oai:resumptionToken", NS)
        assert body.get("completeListSize") == str(len(at_start))  # frozen at list start
        token = next_page(oai, h, verb, token)

    # No duplicates; exactly the records of list start that were not changed before their turn,
    # in datestamp order; nothing added during the harvest.
    assert len(h.ids) == len(set(h.ids))
    assert set(h.ids) == at_start - changed_unserved
    assert h.ids == [i for i in order if i not in changed_unserved]
    assert not set(h.ids) & new
    # Records served before they changed were served in their state at that time.
    assert served_first[1] not in h.deleted

    # The next incremental harvest starts at the first page's responseDate: it holds every
    # change made during the harvest, in its newest state (withdrawals as deleted records; the
    # record hidden from harvesters is simply not there).
    later = harvest(oai, verb, metadataPrefix="oai_dc", from_=started)
    changed = set(edits) | {on_page_2[0], upcoming[0]} | new
    assert set(later.ids) == changed - {unserved[3]}
    assert later.deleted == {served_first[1], unserved[0]}
    # Together: every record a harvester may now see, nothing lost, nothing hidden.
    now_served = {
        i
        for i, ds in corpus.datasets.items()
        if ds.visibility is Visibility.public and ds.lifecycle is not Lifecycle.draft
    }
    assert set(h.ids) | set(later.ids) == now_served
    assert unserved[3] not in now_served


@pytest.mark.parametrize("verb", VERBS)
def test_future_until_is_frozen_at_list_start(
    oai: FlaskClient,
    catalog,
    corpus: Corpus,
    verb: str,
) -> None:
    """``until`` in the future does not let records edited during the harvest come back."""
    h, token = first_page(oai, verb, metadataPrefix="oai_dc", until="2099-12-31T23:59:59Z")
    for dataset_id in h.ids:
        catalog.add(_changed(corpus.datasets[dataset_id], title="edited"))
    while token:
        token = next_page(oai, h, verb, token)
    assert len(h.ids) == len(set(h.ids)) == len(corpus.served)


def test_many_records_with_one_datestamp(oai: FlaskClient, catalog) -> None:
    """Keyset paging breaks ties by id: 3 pages of records that share one instant."""
    ids = {f"ds-same-{n:02d}" for n in range(8)}
    for dataset_id in ids:
        catalog.add(make(dataset_id, T0))
    for verb in VERBS:
        got = harvest(oai, verb, metadataPrefix="oai_dc")
        assert got.ids == sorted(ids)
        assert len(got.pages) == 3


def test_token_is_idempotent(oai: FlaskClient, catalog, corpus: Corpus) -> None:
    """Re-issuing a token (a harvester retrying after a network error) returns the same page,
    and may be done after the list went on (section 3.5.1)."""
    h, token = first_page(oai, "ListRecords", metadataPrefix="oai_dc")
    again = call(oai, verb="ListRecords", resumptionToken=token)
    next_page(oai, h, "ListRecords", token)
    catalog.add(make("ds-new", datetime.now(UTC)))
    third = call(oai, verb="ListRecords", resumptionToken=token)
    for root in (again, third):
        ids = [e.text for e in root.iterfind(".//oai:header/oai:identifier", NS)]
        assert ids == [f"oai:node.test:{i}" for i in h.ids[PAGE:]]


def test_tokens_carry_the_list_arguments(oai: FlaskClient, corpus: Corpus) -> None:
    """set, from and until hold on every page of the list."""
    args = {"set": "access:open", "from_": "2024-03-01T12:00:01Z", "until": "2024-03-02T13:00:00Z"}
    got = harvest(oai, "ListRecords", metadataPrefix="oai_dc", **args)
    end = datetime(2024, 3, 2, 13, 0, 1, tzinfo=UTC)
    want = corpus.matching(access="open", start=T0 + timedelta(seconds=1), end=end)
    assert len(got.pages) > 1
    assert got.ids == _order(corpus, want)


def test_rest_of_a_list_vanishing_is_no_records_match(
    oai: FlaskClient,
    catalog,
    corpus: Corpus,
) -> None:
    """If every record after a page changes before it is served, the list ends with
    noRecordsMatch (a list needs one record at least)."""
    h, token = first_page(oai, "ListIdentifiers", metadataPrefix="oai_dc", set="origin:test-node")
    rest = corpus.matching(origin="test-node") - set(h.ids)
    assert token
    assert rest
    for dataset_id in rest:
        catalog.add(_changed(corpus.datasets[dataset_id]))
    root = call(oai, verb="ListIdentifiers", resumptionToken=token)
    assert [c for c, _ in errors(root)] == ["noRecordsMatch"]


def test_incremental_harvests_chain(oai: FlaskClient, catalog, corpus: Corpus) -> None:
    """Harvest, change, harvest from the previous responseDate: each change arrives once more;
    nothing is missed between the two."""
    first = harvest(oai, "ListIdentifiers", metadataPrefix="oai_dc")
    stamp = first.pages[0].findtext("oai:responseDate", namespaces=NS)
    assert sorted(first.ids) == sorted(corpus.served)
    edited = catalog.add(_changed(corpus.datasets["ds-a03"], title="again"))
    later = harvest(oai, "ListIdentifiers", metadataPrefix="oai_dc", from_=stamp)
    assert later.ids == ["ds-a03"]
    assert later.pages[0].find("oai:ListIdentifiers/oai:resumptionToken", NS) is None
    header = later.headers[0]
    assert header.findtext("oai:datestamp", namespaces=NS) == edited.modified.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
