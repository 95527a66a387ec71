"""SearchService: what the API, the portal and the CLI call to search and to keep the index.

It turns request parameters into a SearchQuery within the caller's access policy and scope,
asks the backend, and loads the hits' records from the catalog *through the access policy
again*: the index can lag the catalog by a few seconds, and a record made private in the
meantime must not show (its count may, until the queue is drained).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from node.auth.policy import Identity, read_scope
from node.catalog.service import RecordService
from node.config import Config
from node.errors import BadRequestError
from node.records import Dataset
from node.search.backend import FacetValue, Health, Hit, SearchBackend, SearchQuery
from node.search.query import build_query
from node.search.scope import FederationScopes, Scope, ScopeResolver, parse_scope


@dataclass
class SearchItem:
    dataset: Dataset
    hit: Hit


@dataclass
class SearchPage:
    items: list[SearchItem]
    total: int
    facets: dict[str, list[FacetValue]]
    next: str | None
    query: SearchQuery
    scope: Scope


class SearchService:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        backend: SearchBackend,
        *,
        scopes: ScopeResolver | FederationScopes | None = None,
    ):
        self.config = config
        self.engine = engine
        self.backend = backend
        self.records = RecordService(engine)
        # the places of the federation's nodes, read from the catalog and cached briefly
        self.scopes = scopes or FederationScopes(config, engine)

    def query_for(
        self, args: Mapping[str, Sequence[str]], identity: Identity
    ) -> tuple[SearchQuery, Scope]:
        """The validated query of request ``args`` for ``identity`` (BadRequestError if bad)."""
        args = dict(args)
        scope = parse_scope(_single(args.pop("scope", None)))
        policy = read_scope(identity)
        query = build_query(
            args,
            lifecycles=frozenset(lc.value for lc in policy.lifecycles),
            visibilities=frozenset(v.value for v in policy.visibilities),
            origins=self.scopes.origins(scope),
            default_limit=self.config.web.page_size,
            max_limit=self.config.web.max_page_size,
        )
        return replace(query, facet_size=self.config.search.facet_size), scope

    def search(self, args: Mapping[str, Sequence[str]], identity: Identity) -> SearchPage:
        query, scope = self.query_for(args, identity)
        result = self.backend.search(query)
        found = self.records.datasets_by_ids([h.id for h in result.hits], read_scope(identity))
        items = [SearchItem(found[h.id], h) for h in result.hits if h.id in found]
        return SearchPage(items, result.total, result.facets, result.next, query, scope)

    def health(self) -> Health:
        return self.backend.health()


def _single(values: Sequence[str] | None) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise BadRequestError("parameter 'scope' is given more than once; give it once")
    return values[0]
