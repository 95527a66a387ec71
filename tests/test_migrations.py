"""Schema migrations: several processes opening one catalog at an old revision at once (what
`gunicorn node.wsgi:app --workers N` does after an upgrade) all start, and the schema ends at head.
Without the migration lock the second process failed with "table ... already exists"."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from node.catalog.db import alembic_config, make_engine

OPEN = "import sys; from node.catalog.db import open_catalog; open_catalog(sys.argv[1]).dispose()"


def test_processes_opening_an_old_catalog_together_all_start(db_url: str):
    engine = make_engine(db_url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0004")  # a catalog from before the federation tables
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head != "0004"
    env = {k: v for k, v in os.environ.items() if k != "FAIRNODE_DATABASE_URL"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, db_url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], [err[-800:] for _, err in outcomes]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        conn.execute(text("SELECT count(*) FROM peers"))  # the new tables are there
    engine.dispose()
