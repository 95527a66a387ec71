"""Planner hints the catalog's key-ordered page queries need (OAI-PMH lists, the DCAT catalog)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class unindexed(FunctionElement):
    """A column that SQLite must not pick an index for: ``+column`` there, the column elsewhere.

    A page of a list is the first rows in (modified, id) order that pass the filters, so the
    (modified, id) index is the plan. SQLite has no statistics unless ANALYZE ran: it takes
    ``visibility IN ('public')`` for selective, reads the page through the visibility index and
    sorts every public record (0.3 s a page at 10k records). A unary ``+`` is SQLite's documented
    way to keep a term from using an index; PostgreSQL plans from its statistics.
    """

    inherit_cache = True
    name = "unindexed"
    type = String()


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)
