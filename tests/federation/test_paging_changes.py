"""A peer that changes records while it is being paged (issue 5, "Peers misbehave").

The source is a REAL second node (its Flask app, config and SQLite catalog, served by werkzeug
on loopback; see test_federate_runner.SourceNode) behind a tiny WSGI middleware that, right
after the app answered the FIRST page of a list (OAI-PMH ListRecords, or the DCAT /catalog),
edits the source's catalog: new titles for a record already served and one not yet served, a
withdrawal (node.catalog.publishing) of one served and one unserved record, and a new published
record. The node under test harvests it with node.federation.runner.federate, then again.

After the first run: no record twice, and every record that existed unchanged is there. After
the second run: exactly the source's current public records, with their newest titles, and the
withdrawn one it had seen as a tombstone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import Engine, select
from test_federate_runner import SOURCE_ID, SourceNode, harvester_config, record

from node.catalog import publishing
from node.catalog.models import DatasetRow, FederatedRecordRow
from node.config import Config
from node.federation.runner import federate

N = 10  # records on the source before the run: ds-000 … ds-009, oldest first
PAGE = 3  # records per page: the edits land after the first three were served
SERVED_EDITED, UNSERVED_EDITED = 1, 7  # new titles
SERVED_WITHDRAWN, UNSERVED_WITHDRAWN = 2, 5
NEW = 10  # published during the paging
UNCHANGED = set(range(N)) - {SERVED_EDITED, UNSERVED_EDITED, SERVED_WITHDRAWN, UNSERVED_WITHDRAWN}


def pid(n: int) -> str:
    return f"ark:/99999/fk4t{n:04d}"  # as test_federate_runner.record names them


class EditAfterFirstPage:
    """WSGI middleware: once the app has answered the first page of a list, run ``edit`` (once).

    Flask builds the whole page before it returns the response: the edit lands after the
    page's queries and before the harvester can ask for the next page."""

    def __init__(self, app: Callable, first_page: Callable[[dict], bool], edit: Callable[[], None]):
        self.app = app
        self.first_page = first_page
        self.edit = edit
        self.done = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        if not self.done and self.first_page(environ):
            self.done = True
            self.edit()
        return body


def first_oai_page(environ: dict) -> bool:
    args = parse_qs(environ.get("QUERY_STRING", ""))
    return (
        environ.get("PATH_INFO") == "/oai"
        and args.get("verb") == ["ListRecords"]
        and "resumptionToken" not in args
    )


def first_catalog_page(environ: dict) -> bool:
    args = parse_qs(environ.get("QUERY_STRING", ""))
    return environ.get("PATH_INFO") == "/catalog" and args.get("page", ["1"]) == ["1"]


class ChangingSource(SourceNode):
    """A SourceNode whose app is wrapped in ``EditAfterFirstPage``."""

    def __init__(self, tmp: Path, first_page: Callable[[dict], bool]):
        self.edits: EditAfterFirstPage | None = None
        super().__init__(tmp, page_size=PAGE)
        self.edits = EditAfterFirstPage(self._app, first_page, self.change)

    def _wsgi(self, environ: dict, start_response: Callable) -> Any:
        if self.edits is None:
            return super()._wsgi(environ, start_response)
        return self.edits(environ, start_response)

    def change(self) -> None:
        now = datetime.now(UTC)
        self.add(
            record(SERVED_EDITED, title=f"Confocal stack {SERVED_EDITED}, revised", modified=now),
            record(
                UNSERVED_EDITED, title=f"Confocal stack {UNSERVED_EDITED}, revised", modified=now
            ),
            record(NEW, modified=now),
        )
        for n in (SERVED_WITHDRAWN, UNSERVED_WITHDRAWN):
            publishing.withdraw(
                self.engine, f"ds-{n:03d}", reason="consent withdrawn", config=self.config
            )

    def public(self) -> dict[str, str]:
        """The source's current public records: PID → title."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(DatasetRow.identifier, DatasetRow.title).where(
                    DatasetRow.lifecycle == "published", DatasetRow.visibility == "public"
                )
            ).all()
        return dict(rows)


@contextmanager
def changing_source(tmp: Path, first_page: Callable[[dict], bool]) -> Iterator[ChangingSource]:
    src = ChangingSource(tmp, first_page)
    try:
        src.add(*(record(i) for i in range(N)))
        yield src
    finally:
        src.close()


def held(engine: Engine) -> list[tuple[str, str, str, str]]:
    """Every record the receiver holds: (PID, title, lifecycle, origin node)."""
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                select(
                    DatasetRow.identifier,
                    DatasetRow.title,
                    DatasetRow.lifecycle,
                    DatasetRow.origin_node,
                )
            ).all()
        ]


def mappings(engine: Engine) -> Counter[str]:
    """How many catalog records each remote id of the peer became (must be one)."""
    with engine.connect() as c:
        rows = c.execute(
            select(FederatedRecordRow.remote_id, FederatedRecordRow.dataset_id).where(
                FederatedRecordRow.peer_id == SOURCE_ID
            )
        ).all()
    return Counter(r.remote_id for r in rows)


def assert_first_run(engine: Engine) -> list[int]:
    """No record twice, and what existed unchanged is there as it was; returns the unchanged
    records that are missing (the caller asserts there are none)."""
    rows = held(engine)
    pids = [r[0] for r in rows]
    assert len(pids) == len(set(pids)), Counter(pids).most_common(3)  # no record twice
    assert all(n == 1 for n in mappings(engine).values())
    by_pid = {r[0]: r for r in rows}
    for n in UNCHANGED:
        if pid(n) in by_pid:
            assert by_pid[pid(n)] == (pid(n), f"Confocal stack {n}", "published", SOURCE_ID)
    # What changed during the paging is there in one version or the other, or comes next run.
    assert set(by_pid) <= {pid(n) for n in range(N + 1)}
    return sorted(n for n in UNCHANGED if pid(n) not in by_pid)


def assert_second_run(engine: Engine, src: ChangingSource) -> None:
    rows = held(engine)
    assert len(rows) == len({r[0] for r in rows})
    published = {r[0]: r[1] for r in rows if r[2] == "published"}
    assert published == src.public()  # exactly the source's public records, newest titles
    assert published[pid(SERVED_EDITED)] == f"Confocal stack {SERVED_EDITED}, revised"
    assert published[pid(UNSERVED_EDITED)] == f"Confocal stack {UNSERVED_EDITED}, revised"
    assert pid(NEW) in published
    tombstones = {r[0] for r in rows if r[2] == "withdrawn"}
    # The withdrawn record the receiver had: a tombstone. The one it never saw: nothing at all.
    assert tombstones == {pid(SERVED_WITHDRAWN)}
    assert pid(UNSERVED_WITHDRAWN) not in {r[0] for r in rows}
    assert {r[3] for r in rows} == {SOURCE_ID}
    assert all(n == 1 for n in mappings(engine).values())


@pytest.mark.parametrize(
    ("protocol", "first_page"),
    [("fairnode", first_oai_page), ("dcat", first_catalog_page)],
    ids=["oai-pmh", "dcat"],
)
def test_a_peer_that_changes_records_during_paging(
    config: Config,
    engine: Engine,
    tmp_path: Path,
    protocol: str,
    first_page: Callable[[dict], bool],
):
    with changing_source(tmp_path / "src", first_page) as src:
        if protocol == "dcat":
            # /catalog pages by its `limit` argument, which its next-page links keep.
            peer = {"id": SOURCE_ID, "url": f"{src.url}/catalog?limit={PAGE}", "protocol": "dcat"}
        else:
            peer = {"id": SOURCE_ID, "url": src.url}  # fairnode: OAI-PMH, dcat_ap, small pages
        cfg = harvester_config(config, [peer])

        first = federate(cfg, engine)[SOURCE_ID]
        assert first.status == "completed", first.message
        assert src.edits is not None
        assert src.edits.done  # the edits did land mid-paging
        assert first.counts.skipped == 0, first.counts.problems
        missing = assert_first_run(engine)
        if protocol == "fairnode":
            assert missing == []  # OAI-PMH lists are keyset-paged and frozen at their start

        second = federate(cfg, engine)[SOURCE_ID]
        assert second.status == "completed", second.message
        assert second.counts.skipped == 0, second.counts.problems
        assert_second_run(engine, src)

        # A third run with nothing changed changes nothing.
        before = sorted(held(engine))
        third = federate(cfg, engine)[SOURCE_ID]
        assert third.status == "completed", third.message
        assert third.counts.added == third.counts.updated == third.counts.withdrawn == 0
        assert sorted(held(engine)) == before

    # /catalog pages by key (modified, id) like the OAI-PMH lists: a record that changes or
    # leaves during the walk never shifts an unchanged one out of the pages.
    assert not missing, f"unchanged records {missing} skipped on run 1"


def test_a_dcat_peer_changing_during_a_later_full_read_keeps_live_records(
    config: Config, engine: Engine, tmp_path: Path
):
    """The same edits, during the SECOND read of a DCAT peer: the reader then knows every
    record, and infers deletions from what a complete read did not find. A record merely
    skipped by the peer's paging must not become a tombstone (which no later read could undo,
    its modified being older than the tombstone's)."""
    with changing_source(tmp_path / "src", first_catalog_page) as src:
        peer = {"id": SOURCE_ID, "url": f"{src.url}/catalog?limit={PAGE}", "protocol": "dcat"}
        cfg = harvester_config(config, [peer])
        assert src.edits is not None
        src.edits.done = True  # the first read sees the source at rest
        assert federate(cfg, engine)[SOURCE_ID].status == "completed"
        assert {r[0] for r in held(engine)} == {pid(n) for n in range(N)}

        src.edits.done = False  # the second read is paged while the source changes
        second = federate(cfg, engine)[SOURCE_ID]
        assert second.status == "completed", second.message
        assert src.edits.done
        third = federate(cfg, engine)[SOURCE_ID]  # at rest again
        assert third.status == "completed", third.message
        rows = held(engine)
        tombstones = {r[0] for r in rows if r[2] == "withdrawn"}
        wrongly = sorted(tombstones - {pid(SERVED_WITHDRAWN), pid(UNSERVED_WITHDRAWN)})
        assert not wrongly, f"live records {wrongly} tombstoned by a read the peer changed under"
        published = {r[0]: r[1] for r in rows if r[2] == "published"}
        assert published == src.public()
        # Both withdrawn records were known here: both are tombstones, nothing else is.
        assert tombstones == {pid(SERVED_WITHDRAWN), pid(UNSERVED_WITHDRAWN)}
        assert len(rows) == len({r[0] for r in rows})
