"""A list page is one walk of the (modified, id) index, not a sort of every served record.

The plan is the behaviour here: on SQLite without statistics the planner picked the
visibility index and sorted every public record for each page of 100, which made a harvest
quadratic in the catalog size. The test reads the planner's own account of the page query.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oai_helpers import Corpus
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql, sqlite

from node.oai.store import OAIStore, Query

UPPER = datetime(2100, 1, 1, tzinfo=UTC)

_COPIES = """
INSERT INTO datasets (id, source, folder, identifier, title, lifecycle, visibility, data_access,
                      origin_node, modified, dirty, doc)
SELECT d.id || '-' || n, d.source, d.folder, NULL, d.title, d.lifecycle, d.visibility,
       d.data_access, d.origin_node, d.modified + n * interval '1 second', d.dirty, d.doc
FROM (SELECT * FROM datasets ORDER BY id LIMIT 1) d, generate_series(1, 20000) n
"""


def _page_sql(engine: Engine, query: Query, after: tuple[datetime, str] | None) -> str:
    """The SQL of ``OAIStore.page`` with its parameters inlined, for EXPLAIN."""
    captured: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany) -> None:
        if "ORDER BY datasets.modified, datasets.id" in statement:
            dialect = sqlite.dialect() if engine.dialect.name == "sqlite" else postgresql.dialect()
            captured.append(
                str(
                    context.compiled.statement.compile(
                        dialect=dialect, compile_kwargs={"literal_binds": True}
                    )
                )
            )

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", grab)
    try:
        OAIStore(engine).page(query, after=after, limit=100, with_doc=True)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert captured, "the page query did not run"
    return captured[0]


def test_pages_walk_the_modified_id_index(engine: Engine, corpus: Corpus) -> None:
    first = min((d.modified, i) for i, d in corpus.datasets.items())
    for query, after in [
        (Query(None, None, UPPER), None),
        (Query(None, None, UPPER), first),
        (Query("visibility:public", datetime(2000, 1, 1, tzinfo=UTC), UPPER), first),
        (Query("origin:test-node", None, UPPER), first),
    ]:
        sql = _page_sql(engine, query, after)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = " | ".join(r[-1] for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
                assert "ix_datasets_modified_id" in plan, plan
                assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
            else:
                # PostgreSQL plans from statistics: on the small test corpus a scan and a sort
                # is right. Give it a catalog of a realistic size (20,000 more copies of a
                # record, rolled back with the connection) and its statistics.
                conn.execute(text(_COPIES))
                conn.execute(text("ANALYZE datasets"))
                plan = " | ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
                assert "ix_datasets_modified_id" in plan, plan
                assert "Sort" not in plan, plan
