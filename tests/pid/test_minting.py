"""Minting ARKs into the catalog (node/pid/service.py): never twice, in the caller's transaction,
against a table that is already full, and the 0003 migration on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from pid_helpers import add_dataset, pid_rows, stored, with_pid
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from node.catalog.db import alembic_config, make_engine, upgrade
from node.catalog.models import PidRow
from node.config import Config
from node.pid import ark
from node.pid.errors import PidError
from node.pid.service import PidService, lookup_in
from node.records import Lifecycle


def mint_for(service: PidService, engine: Engine, dataset_id: str) -> str:
    ds = stored(engine, dataset_id)
    with Session(engine) as s, s.begin():
        return service.mint(s, ds)


def test_minted_arks_are_valid_recorded_and_stable_per_dataset(config: Config, engine: Engine):
    add_dataset(engine, "ds-a")
    service = PidService(config, engine)
    pid = mint_for(service, engine, "ds-a")
    assert ark.is_valid(pid, naan="99999", shoulder="fk4")
    assert len(pid) == len("ark:/99999/fk4") + 8 + 1
    assert pid_rows(engine) == [(pid, "ds-a", "ark", "active")]
    # The same dataset asks again (a re-harvest, or it vanished and came back): the same PID.
    assert mint_for(service, engine, "ds-a") == pid
    assert len(pid_rows(engine)) == 1
    assert service.lookup(pid) == "ds-a"
    assert service.lookup(pid.replace("ark:/", "ARK:").replace("fk4", "fk4-")) == "ds-a"
    assert service.lookup("ark:/99999/fk4nothere") is None


def test_many_datasets_get_distinct_pids(config: Config, engine: Engine):
    service = PidService(config, engine)
    ids = [f"ds-{i}" for i in range(300)]
    for i in ids:
        add_dataset(engine, i)
    with Session(engine) as s, s.begin():
        pids = [service.mint(s, stored(engine, i)) for i in ids]
    assert len(set(pids)) == len(ids)
    assert {(p, d) for p, d, _, _ in pid_rows(engine)} == set(zip(pids, ids, strict=True))


def all_arks(naan: str, shoulder: str) -> list[str]:
    """Every ARK of a one-character blade: 29 names."""
    return [f"ark:/{naan}/{ark.with_check(naan, shoulder + b)}" for b in ark.BETANUMERIC]


def test_a_prefilled_table_leaves_only_the_free_name(config: Config, engine: Engine):
    cfg = with_pid(config, blade_length=1)
    names = all_arks("99999", "fk4")
    assert len(set(names)) == 29
    free, on_a_record, *taken = names
    with engine.begin() as c:
        c.execute(
            insert(PidRow),
            [
                {
                    "pid": p,
                    "dataset_id": f"old-{i}",
                    "minted_at": datetime.now(UTC),
                    "scheme": "ark",
                    "status": "withdrawn",
                }
                for i, p in enumerate(taken)
            ],
        )
    # A record may carry an identifier the table never saw (imported, or older than it): taken too.
    add_dataset(engine, "imported", identifier=on_a_record, lifecycle=Lifecycle.published)
    add_dataset(engine, "new")
    add_dataset(engine, "newer")
    service = PidService(cfg, engine)
    assert mint_for(service, engine, "new") == free
    with pytest.raises(PidError, match="raise \\[pid\\] blade_length"):
        mint_for(service, engine, "newer")
    owners = {d for _, d, _, _ in pid_rows(engine)}
    assert "new" in owners
    assert "newer" not in owners


def test_a_full_shoulder_is_refused_at_once(config: Config, engine: Engine):
    cfg = with_pid(config, blade_length=1)
    with engine.begin() as c:
        c.execute(
            insert(PidRow),
            [
                {
                    "pid": p,
                    "dataset_id": "x",
                    "minted_at": datetime.now(UTC),
                    "scheme": "ark",
                    "status": "active",
                }
                for p in all_arks("99999", "fk4")
            ],
        )
    add_dataset(engine, "late")
    with pytest.raises(PidError, match="every one of the 29 ARKs"):
        mint_for(PidService(cfg, engine), engine, "late")


def test_minting_is_part_of_the_callers_transaction(config: Config, engine: Engine):
    add_dataset(engine, "ds-rollback")
    service = PidService(config, engine)
    with Session(engine) as s:
        s.begin()
        pid = service.mint(s, stored(engine, "ds-rollback"))
        assert lookup_in(s, pid) == "ds-rollback"  # visible inside the transaction
        s.rollback()
    assert pid_rows(engine) == []
    assert service.lookup(pid) is None


def test_migration_0003_records_identifiers_records_already_carry(db_url: str):
    engine = make_engine(db_url)
    try:
        command.upgrade(alembic_config(engine), "0002")
        with engine.begin() as c:
            for ds_id, ident, lifecycle in [
                ("a", "ark:/99999/fk4old1", "published"),
                ("b", "10.80000/abc", "withdrawn"),
                ("c", None, "draft"),
            ]:
                c.execute(
                    text(
                        "INSERT INTO datasets (id, identifier, title, lifecycle, visibility, "
                        "data_access, origin_node, modified, dirty, doc) VALUES (:id, :ident, "
                        "'t', :lc, 'public', 'open', 'n', CURRENT_TIMESTAMP, false, '{}')"
                    ),
                    {"id": ds_id, "ident": ident, "lc": lifecycle},
                )
        upgrade(engine)
        with engine.connect() as c:
            rows = c.execute(
                select(PidRow.pid, PidRow.dataset_id, PidRow.scheme, PidRow.status).order_by(
                    PidRow.pid
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("10.80000/abc", "b", "datacite", "withdrawn"),
            ("ark:/99999/fk4old1", "a", "ark", "active"),
        ]
        command.downgrade(alembic_config(engine), "0002")
        upgrade(engine)
    finally:
        engine.dispose()
