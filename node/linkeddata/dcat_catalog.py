"""One page of someone else's DCAT catalog, read: its paging, the datasets it describes, and
the members it lists without describing them (what a FAIR Data Point serves at their own IRIs).

The federation's DCAT reader (``node/federation/sources/dcat.py``) fetches the pages and keeps
the state of a read (seen datasets, links to follow, deletions); everything that walks an RDF
graph is here, so that rdflib stays inside ``node/linkeddata`` (DESIGN §2: heavy libraries
inside their package). Callers get strings, datetimes and ``Dataset`` records, never graph
nodes: ``CatalogDataset.subject`` is opaque to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from node.records import Dataset

from .dcat_read import dataset_from_graph, graph_date
from .mediatypes import parse
from .namespaces import DCAT, DCTERMS, HYDRA

LDP = Namespace("http://www.w3.org/ns/ldp#")
FDP_O = Namespace("https://w3id.org/fdp/fdp-o#")
R3D = Namespace("http://www.re3data.org/schema/3-0#")  # FDP before v1: r3d:dataCatalog

# Predicates by which a catalog (or an FDP, or an LDP container) lists its members.
LISTING = (DCAT.dataset, DCAT.catalog, LDP.contains, FDP_O.metadataCatalog, R3D.dataCatalog)
# What a listed resource may be besides a dataset: something that lists datasets in turn.
CATALOG_TYPES = {
    DCAT.Catalog,
    LDP.Container,
    LDP.BasicContainer,
    LDP.DirectContainer,
    LDP.IndirectContainer,
    FDP_O.FAIRDataPoint,
    FDP_O.MetadataService,
    R3D.Repository,
}


class CatalogPageError(ValueError):
    """A page that does not parse, or whose paging cannot be followed; the message says why
    (the caller adds which peer)."""


@dataclass(frozen=True)
class CatalogDataset:
    """A ``dcat:Dataset`` a page describes. ``remote_id``: its name at the peer (its IRI; a
    blank node goes by its landing page or ``dct:identifier``), None when it has none."""

    subject: Node
    remote_id: str | None

    @property
    def has_iri(self) -> bool:
        return isinstance(self.subject, URIRef)


@dataclass(frozen=True)
class DatasetRead:
    """What a page says of one dataset: the record, and the dates and page the harvest needs."""

    dataset: Dataset
    modified: datetime | None  # dct:modified
    issued: datetime | None  # dct:issued
    landing_page: str | None  # the first dcat:landingPage in sorted order


class CatalogPage:
    """The graph of one response of a DCAT catalog."""

    def __init__(self, graph: Graph):
        self.graph = graph

    @classmethod
    def parse(
        cls,
        body: bytes,
        media_type: str,
        *,
        url: str,
        contexts: Mapping[str, Any] | None = None,
    ) -> CatalogPage:
        """``body`` in RDF ``media_type``; relative IRIs resolve against ``url``. JSON-LD
        contexts come from ``contexts`` only (nothing is fetched). CatalogPageError with the
        parser's complaint when it does not parse."""
        try:
            return cls(parse(body, media_type, contexts=dict(contexts or {}), base=url))
        except Exception as exc:  # rdflib's parsers raise many kinds (SAX, JSON-LD, syntax)
            raise CatalogPageError(" ".join(str(exc).split())[:300]) from None

    def next_page(self, url: str) -> str | None:
        """The next page's URL (absolute), from ``hydra:next`` or ``hydra:nextPage``; None on
        the last page. Several different next pages: the one stated by this page's own view
        (``url``) wins; still several is a CatalogPageError (where the catalog goes on is
        unknown)."""
        found: dict[str, set[str]] = {}
        for prop in (HYDRA.next, HYDRA.nextPage):
            for s, o in self.graph.subject_objects(prop):
                if isinstance(o, URIRef | Literal) and str(o).strip():
                    found.setdefault(urljoin(url, str(o).strip()), set()).add(str(s))
        if len(found) > 1:
            own = {n for n, subjects in found.items() if url in subjects}
            if len(own) == 1:
                return own.pop()
            raise CatalogPageError(
                f"{url}: the page names several next pages ({', '.join(sorted(found))})"
            )
        return next(iter(found), None)

    def listed_links(self) -> list[str]:
        """The IRIs the page lists as members (datasets, catalogs) without describing them
        (they have no rdf:type here): what an FDP serves at each IRI. An LDP container whose
        member relation is not a listing one (an FDP dataset's distributions) is not
        followed."""
        g = self.graph
        links: set[str] = set()
        for prop in LISTING:
            for s, o in g.subject_objects(prop):
                if not isinstance(o, URIRef) or (o, RDF.type, None) in g:
                    continue
                if (s, RDF.type, DCAT.Dataset) in g:
                    continue  # a dataset's own members (distributions) are not datasets
                if prop == LDP.contains:
                    relation = g.value(s, LDP.hasMemberRelation)
                    if relation is not None and relation not in LISTING:
                        continue
                links.add(str(o))
        return sorted(links)

    def datasets(self) -> list[CatalogDataset]:
        """Every ``dcat:Dataset`` the page describes, in the order of their IRIs (or blank
        node ids): the same page reads the same way every time."""
        subjects = sorted(set(self.graph.subjects(RDF.type, DCAT.Dataset)), key=str)
        return [CatalogDataset(s, self._remote_id(s)) for s in subjects]

    def describes_dataset_or_catalog(self, iri: str) -> bool:
        """Whether the page (the resource at ``iri``) describes a dataset, or is a catalog
        or container that may list some."""
        if (None, RDF.type, DCAT.Dataset) in self.graph:
            return True
        return bool(set(self.graph.objects(URIRef(iri), RDF.type)) & CATALOG_TYPES)

    def read_dataset(self, item: CatalogDataset, *, origin_node: str) -> DatasetRead:
        """The record of ``item`` (``dcat_read.dataset_from_graph``: ValueError, or pydantic's
        ValidationError, when the description cannot make one); ``origin_node`` is used when
        the publisher names none."""
        if item.remote_id is None:
            raise ValueError("a blank-node dcat:Dataset has no name to read it by")
        subject = item.subject
        if isinstance(subject, BNode):
            # dataset_from_graph reads IRI subjects: give the blank node its remote id as IRI.
            subject = URIRef(item.remote_id)
            for p, o in list(self.graph.predicate_objects(item.subject)):
                self.graph.add((subject, p, o))
        dataset = dataset_from_graph(self.graph, subject, origin_node=origin_node)
        # The dates again, read as dataset_from_graph read them (it raised on an unreadable
        # one): the record cannot tell an absent dct:modified from a defaulted one; the harvest
        # must (node/federation/sources/dcat.py: _settle).
        landing = sorted(str(o) for o in self.graph.objects(subject, DCAT.landingPage))
        return DatasetRead(
            dataset=dataset,
            modified=graph_date(self.graph, subject, DCTERMS.modified),
            issued=graph_date(self.graph, subject, DCTERMS.issued),
            landing_page=landing[0] if landing else None,
        )

    def _remote_id(self, s: Node) -> str | None:
        if isinstance(s, URIRef):
            return str(s)
        for p in (DCAT.landingPage, DCTERMS.identifier):
            values = sorted(str(o) for o in self.graph.objects(s, p) if str(o).strip())
            if values:
                return values[0]
        return None
