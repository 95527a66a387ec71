"""Publishing and withdrawing (node/catalog/publishing.py), and `fairnode publish` / `withdraw`
as real processes: lifecycle, dates, PID, search queue, and every refusal with its message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pid_helpers import T0, add_dataset, fairnode, pid_rows, stored
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from node.catalog import publishing
from node.catalog.db import open_catalog
from node.catalog.models import SearchQueueRow
from node.config import Config
from node.errors import BadRequestError, ConflictError, NotFoundError
from node.pid import ark
from node.records import Lifecycle

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def queued(engine: Engine) -> set[str]:
    with engine.connect() as c:
        return set(c.scalars(select(SearchQueueRow.dataset_id)))


def clear_queue(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(SearchQueueRow.__table__.delete())


def test_publish_sets_lifecycle_dates_pid_and_queues_for_search(config: Config, engine: Engine):
    add_dataset(engine, "ds-1")
    clear_queue(engine)
    out = publishing.publish(engine, "ds-1", config=config, now=NOW)
    assert out.changed
    ds = stored(engine, "ds-1")
    assert ds.lifecycle is Lifecycle.published
    assert ds.issued == NOW
    assert ds.modified == NOW > T0
    assert ark.is_valid(ds.identifier, naan="99999", shoulder="fk4")
    assert out.pid == ds.identifier
    assert out.message == f"dataset 'ds-1' published as {ds.identifier}"
    assert pid_rows(engine) == [(ds.identifier, "ds-1", "ark", "active")]
    assert queued(engine) == {"ds-1"}  # the same transaction queued it for search

    # Again: idempotent, nothing changes, and it says so.
    clear_queue(engine)
    again = publishing.publish(engine, "ds-1", config=config)
    assert not again.changed
    assert again.message == f"dataset 'ds-1' is already published as {ds.identifier}"
    assert stored(engine, "ds-1") == ds
    assert queued(engine) == set()


def test_publish_keeps_an_earlier_issued_date(config: Config, engine: Engine):
    add_dataset(engine, "ds-old", issued=T0)
    publishing.publish(engine, "ds-old", config=config, now=NOW)
    assert stored(engine, "ds-old").issued == T0


def test_a_published_dataset_without_pid_gets_one(config: Config, engine: Engine):
    add_dataset(engine, "legacy", lifecycle=Lifecycle.published, issued=T0)
    out = publishing.publish(engine, "legacy", config=config, now=NOW)
    assert out.changed
    assert "was published without a PID; it now has ark:/99999/fk4" in out.message
    assert stored(engine, "legacy").issued == T0


def test_withdraw_keeps_the_pid_and_a_withdrawn_dataset_never_comes_back_silently(
    config: Config, engine: Engine
):
    add_dataset(engine, "ds-w")
    pid = publishing.publish(engine, "ds-w", config=config).pid
    clear_queue(engine)
    out = publishing.withdraw(
        engine, "ds-w", reason="  consent\nwithdrawn ", config=config, now=NOW
    )
    ds = stored(engine, "ds-w")
    assert (ds.lifecycle, ds.withdrawn_reason, ds.identifier, ds.modified) == (
        Lifecycle.withdrawn,
        "consent withdrawn",
        pid,
        NOW,
    )
    assert (
        out.message
        == f"dataset 'ds-w' withdrawn (consent withdrawn); {pid} now shows its tombstone"
    )
    assert pid_rows(engine) == [(pid, "ds-w", "ark", "withdrawn")]
    assert queued(engine) == {"ds-w"}

    with pytest.raises(ConflictError) as e:
        publishing.publish(engine, "ds-w", config=config)
    assert "was withdrawn (consent withdrawn)" in e.value.message
    assert "fairnode publish ds-w --reinstate" in e.value.message
    assert stored(engine, "ds-w").lifecycle is Lifecycle.withdrawn

    same = publishing.withdraw(engine, "ds-w", reason="consent withdrawn", config=config)
    assert not same.changed
    assert same.message == "dataset 'ds-w' is already withdrawn (consent withdrawn)"

    back = publishing.publish(engine, "ds-w", config=config, reinstate=True)
    assert back.message == f"dataset 'ds-w' reinstated: published again as {pid}"
    ds = stored(engine, "ds-w")
    assert (ds.lifecycle, ds.identifier, ds.withdrawn_reason) == (Lifecycle.published, pid, None)
    assert pid_rows(engine) == [(pid, "ds-w", "ark", "active")]


def test_refusals_name_the_problem(config: Config, engine: Engine):
    with pytest.raises(NotFoundError, match="no dataset 'nope' in the catalog"):
        publishing.publish(engine, "nope", config=config)
    with pytest.raises(NotFoundError, match="no dataset 'nope'"):
        publishing.withdraw(engine, "nope", reason="x", config=config)
    add_dataset(engine, "draft")
    with pytest.raises(BadRequestError, match="needs a reason"):
        publishing.withdraw(engine, "draft", reason=" \n ", config=config)
    with pytest.raises(ConflictError, match="is a draft: it was never published"):
        publishing.withdraw(engine, "draft", reason="oops", config=config)
    assert stored(engine, "draft").lifecycle is Lifecycle.draft


def test_publish_in_the_callers_session_commits_with_it(config: Config, engine: Engine):
    add_dataset(engine, "ds-s")
    with Session(engine) as s:
        s.begin()
        out = publishing.publish(s, "ds-s", config=config)
        s.rollback()  # the caller changed its mind: nothing happened
    assert stored(engine, "ds-s").lifecycle is Lifecycle.draft
    assert pid_rows(engine) == []
    with Session(engine) as s, s.begin():
        out = publishing.publish(s, "ds-s", config=config)
    assert stored(engine, "ds-s").identifier == out.pid


# ---------------------------------------------------------------------- the command


def write_node(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        f'[node]\nid = "cli-node"\nname = "CLI node"\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{db_url}"\n[pid]\nshoulder = "b7"\nblade_length = 6\n'
    )
    return cfg


def test_publish_and_withdraw_commands(tmp_path: Path, db_url: str):
    cfg = str(write_node(tmp_path, db_url))
    engine = open_catalog(db_url)
    try:
        add_dataset(engine, "ds-cli")

        res = fairnode("--config", cfg, "publish", "ds-unknown")
        assert (res.returncode, res.stdout) == (1, "")
        assert "error: no dataset 'ds-unknown' in the catalog" in res.stderr

        res = fairnode("--config", cfg, "publish", "ds-cli")
        assert res.returncode == 0, res.stderr
        pid = stored(engine, "ds-cli").identifier
        assert ark.is_valid(pid, naan="99999", shoulder="b7")
        assert len(pid) == len("ark:/99999/b7") + 6 + 1
        assert res.stdout == f"dataset 'ds-cli' published as {pid}\n"
        assert queued(engine) == set()  # the command brought the search index up to date

        res = fairnode("--config", cfg, "publish", "ds-cli")
        assert res.returncode == 0, res.stderr
        assert res.stdout == f"dataset 'ds-cli' is already published as {pid}\n"

        res = fairnode("--config", cfg, "withdraw", "ds-cli")
        assert res.returncode == 1
        assert "error: a withdrawal needs a reason" in res.stderr
        assert stored(engine, "ds-cli").lifecycle is Lifecycle.published

        res = fairnode("--config", cfg, "withdraw", "ds-cli", "--reason", "duplicate of ds-2")
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("dataset 'ds-cli' withdrawn (duplicate of ds-2)")
        ds = stored(engine, "ds-cli")
        assert (ds.lifecycle, ds.identifier) == (Lifecycle.withdrawn, pid)

        res = fairnode("--config", cfg, "publish", "ds-cli")
        assert res.returncode == 1
        assert "was withdrawn (duplicate of ds-2)" in res.stderr
        assert "fairnode publish ds-cli --reinstate" in res.stderr
        assert stored(engine, "ds-cli").lifecycle is Lifecycle.withdrawn

        res = fairnode("--config", cfg, "publish", "ds-cli", "--reinstate")
        assert res.returncode == 0, res.stderr
        assert res.stdout == f"dataset 'ds-cli' reinstated: published again as {pid}\n"
        assert stored(engine, "ds-cli").identifier == pid

        res = fairnode("--config", cfg, "withdraw", "ds-unknown", "--reason", "x")
        assert res.returncode == 1
        assert "no dataset 'ds-unknown'" in res.stderr
    finally:
        engine.dispose()
