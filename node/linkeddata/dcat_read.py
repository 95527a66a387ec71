"""DCAT-AP 3.0.1 graph → Dataset: the reading half of the DCAT profile (``dcat.py`` writes).

It reads what ``dcat.dataset_graph`` writes, and is lenient with other catalogs' DCAT: missing
optional properties leave the record's defaults, several values where the record holds one
give the first in sorted order (so the result never depends on triple order).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from itertools import islice

from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from node.ontologies import UnknownTermError, resolve_license, term_label
from node.records import (
    DataAccess,
    DataLocation,
    Dataset,
    ImageSummary,
    Person,
    Provenance,
    Term,
)

from .context import dataset_id_from_iri
from .identifiers import pid_kind, publication_value
from .mediatypes import parse
from .namespaces import (
    ACCESS_RIGHT,
    ADMS,
    BIBO,
    DATA_THEME,
    DCAT,
    DCTERMS,
    FAIRNODE,
    FBBI,
    FOAF,
    NCBITAXON,
    NCBITAXON_ONTOLOGY,
    ORCID,
    ORG,
    PROV,
    SCHEMA,
    SKOS,
    VCARD,
)

# The record fields a DCAT-AP graph carries, read back unchanged (dotted: a part of a field).
# Notes: keywords, subjects, organisms, methods and publications come back sorted (RDF sets);
# creators and contributors keep their order (bibo lists). A record without description or
# access contact is given one on the way out (DCAT-AP requires a description; the contact
# falls back to the node's), which then reads back. total_size needs per-format sizes: given
# when the images are passed, or when the dataset has one format. Closed data with an embargo
# end reads back as embargoed (both are EU NON_PUBLIC; the embargo date tells them apart).
DCAT_FIELDS: tuple[str, ...] = (
    "id",
    "identifier",
    "title",
    "description",
    "keywords",
    "subjects",
    "organisms",
    "imaging_methods",
    "creators",
    "contributors",
    "license",
    "created",
    "modified",
    "issued",
    "embargo_end",
    "publisher",
    "related_publications",
    "version",
    "data_location.url",
    "total_size",
    "formats",
    "data_access",
    "access_contact",
    "provenance.origin_node",
    "provenance.harvested_via",
    "provenance.source_record_url",
    "image_summary.acquired_from",
    "image_summary.acquired_to",
)

_ACCESS = {"PUBLIC": DataAccess.open, "RESTRICTED": DataAccess.restricted}


def dataset_subjects(g: Graph) -> list[URIRef]:
    """Every ``dcat:Dataset`` IRI in ``g``, sorted."""
    return sorted(s for s in g.subjects(RDF.type, DCAT.Dataset) if isinstance(s, URIRef))


def dataset_from_rdfxml(data: bytes, *, origin_node: str | None = None) -> tuple[Dataset, str]:
    """The one dcat:Dataset of an RDF/XML document (an OAI ``dcat_ap`` record) and its page:
    ``dcat:landingPage`` when it has one, else its IRI."""
    g = parse(data, "application/rdf+xml")
    ds = dataset_from_graph(g, origin_node=origin_node)
    subject = dataset_subjects(g)[0]  # dataset_from_graph checked there is exactly one
    landing = g.value(subject, DCAT.landingPage)
    return ds, str(landing if isinstance(landing, URIRef) else subject)


def dataset_from_graph(
    g: Graph, subject: str | URIRef | None = None, *, origin_node: str | None = None
) -> Dataset:
    """The Dataset described by ``subject`` in ``g`` (the graph's only ``dcat:Dataset`` when
    ``subject`` is None). ``origin_node`` is used when the publisher carries no node id."""
    s = _subject(g, subject)
    publisher = _one(g, s, DCTERMS.publisher)
    origin = _text(g, publisher, DCTERMS.identifier) if publisher is not None else None
    origin = origin or origin_node
    if not origin:
        raise ValueError(
            f"dcat:Dataset <{s}> names no origin node: expected dct:publisher with a "
            "dct:identifier (the node id), or pass origin_node"
        )
    # Another catalog's dataset may carry no dct:identifier (DCAT-AP makes it optional): its
    # IRI is its identity then.
    ds_id = _text(g, s, DCTERMS.identifier) or dataset_id_from_iri(str(s)) or str(s)
    title = _text(g, s, DCTERMS.title)
    if not title:
        raise ValueError(f"dcat:Dataset <{s}> has no dct:title")
    methods, organisms = _themes(g, s)
    distributions = sorted(o for o in g.objects(s, DCAT.distribution))
    start, end = _period(g, s)
    fields = {
        "id": ds_id,
        "identifier": _pid(g, s),
        "title": title,
        "description": _text(g, s, DCTERMS.description),
        "keywords": sorted(str(k) for k in g.objects(s, DCAT.keyword)),
        "subjects": _sorted_terms(_term(g, o) for o in g.objects(s, DCTERMS.subject)),
        "organisms": organisms,
        "imaging_methods": methods,
        "creators": _people(g, s, DCTERMS.creator, BIBO.authorList),
        "contributors": _people(g, s, DCTERMS.contributor, BIBO.contributorList),
        "license": _licence(g, distributions),
        "created": graph_date(g, s, DCTERMS.created),
        "modified": graph_date(g, s, DCTERMS.modified),
        "issued": graph_date(g, s, DCTERMS.issued),
        "embargo_end": graph_date(g, s, DCTERMS.available),
        "publisher": _text(g, publisher, FOAF.name) if publisher is not None else None,
        "related_publications": sorted(
            publication_value(str(o)) for o in g.objects(s, DCTERMS.isReferencedBy)
        ),
        "version": _text(g, s, DCAT.version),
        "data_location": DataLocation(url=_access_url(g, s, distributions)),
        "total_size": sum(_byte_size(g, d) for d in distributions),
        "formats": sorted({t for d in distributions if (t := _text(g, d, DCTERMS.title))}),
        "data_access": _access(g, s),
        "access_contact": _contact(g, s),
        "provenance": _provenance(g, s, origin),
        "image_summary": ImageSummary(acquired_from=start, acquired_to=end),
    }
    return Dataset(**{k: v for k, v in fields.items() if v is not None})


# --------------------------------------------------------------------------- helpers

MAX_CHAIN = 64  # nodes a record came through; a longer chain is a peer's error, cut there


def is_absolute_iri(value: str) -> bool:
    """Whether ``value`` can stand as an IRI in a graph: a scheme, no spaces or brackets."""
    head, sep, _ = value.partition(":")
    return bool(
        sep
        and head[:1].isalpha()
        and all(c.isalnum() or c in "+-." for c in head)
        and not any(c.isspace() or c in '<>"{}|\\^`' for c in value)
    )


def _provenance(g: Graph, s: URIRef, origin: str) -> Provenance:
    """Origin node, the chain of nodes the record came through (fairnode:harvestedVia, an
    rdf:List on the dct:ProvenanceStatement, order kept) and the source record
    (prov:wasDerivedFrom); other catalogs' DCAT has neither, which leaves them empty."""
    chain: list[str] = []
    for statement in _sorted_values(g, s, DCTERMS.provenance):
        head = g.value(statement, FAIRNODE.harvestedVia)
        if head is None:
            continue
        try:
            items = list(islice(g.items(head), MAX_CHAIN))
        except ValueError:  # rdflib refuses a list whose rdf:rest loops
            raise ValueError(
                f"<{s}> {FAIRNODE.harvestedVia} is a looping rdf:List: expected the node ids"
            ) from None
        chain = [str(n) for n in items if isinstance(n, Literal) and str(n).strip()]
        break
    derived = [str(o) for o in _sorted_values(g, s, PROV.wasDerivedFrom) if isinstance(o, URIRef)]
    return Provenance(
        origin_node=origin,
        harvested_via=chain,
        source_record_url=derived[0] if derived else None,
    )


def _subject(g: Graph, subject: str | URIRef | None) -> URIRef:
    if subject is None:
        found = dataset_subjects(g)
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(map(str, found[:5]))})"
            raise ValueError(
                f"graph holds {what} dcat:Dataset subjects: expected exactly one subject typed "
                f"{DCAT.Dataset}, or pass the subject"
            )
        return found[0]
    s = URIRef(str(subject))
    if (s, RDF.type, DCAT.Dataset) not in g:
        raise ValueError(f"<{s}> is not typed {DCAT.Dataset} in the graph: expected a dcat:Dataset")
    return s


def _sorted_values(g: Graph, s: Node, p: URIRef) -> list[Node]:
    # Untagged or English literals first, then the rest; sorted within each, for determinism.
    def key(o: Node) -> tuple[int, str]:
        lang = o.language if isinstance(o, Literal) else None
        return (0 if lang in (None, "en") else 1, str(o))

    return sorted(g.objects(s, p), key=key)


def _one(g: Graph, s: Node, p: URIRef) -> Node | None:
    values = _sorted_values(g, s, p)
    return values[0] if values else None


def _text(g: Graph, s: Node | None, p: URIRef) -> str | None:
    if s is None:
        return None
    o = _one(g, s, p)
    return str(o) if o is not None else None


def graph_date(g: Graph, s: Node, p: URIRef) -> datetime | None:
    """``p`` of ``s`` as an aware datetime (UTC when the literal has no zone): a typed date or
    date-time, or a plain ISO 8601 literal (other catalogs often leave the datatype off); None
    when absent, ValueError naming the value when unreadable."""
    o = _one(g, s, p)
    if o is None:
        return None
    value = o.toPython() if isinstance(o, Literal) else None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:  # other catalogs often leave the datatype off an ISO 8601 date (or get it wrong)
        moment = datetime.fromisoformat(str(o).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"<{s}> {p} is {o!r}: expected an xsd:dateTime or xsd:date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _pid(g: Graph, s: URIRef) -> str | None:
    """The first adms:identifier notation that is a DOI or an ARK (others: not our PIDs)."""
    pids = []
    for ident in g.objects(s, ADMS.identifier):
        for notation in g.objects(ident, SKOS.notation):
            try:
                pid_kind(str(notation))
            except ValueError:
                continue
            pids.append(str(notation))
    return sorted(pids)[0] if pids else None


def _term(g: Graph, node: Node) -> Term:
    iri = str(node) if isinstance(node, URIRef) else None
    # Another catalog may give only the IRI: the node's vocabularies know most labels.
    label = _text(g, node, SKOS.prefLabel) or _text(g, node, RDFS.label)
    label = label or (term_label(iri) if iri else None)
    return Term(label=label or iri or "unnamed", iri=iri)


def _sorted_terms(terms: Iterable[Term]) -> list[Term]:
    return sorted(terms, key=lambda t: (t.label, t.iri or ""))


def _themes(g: Graph, s: URIRef) -> tuple[list[Term], list[Term]]:
    """Themes → (imaging methods, organisms). Organisms are typed schema:Taxon (or are
    NCBITaxon IRIs); methods are FBbi IRIs or label-only concepts; other IRIs (the EU data
    theme, another catalog's themes) are not record fields."""
    methods, organisms = [], []
    for node in g.objects(s, DCAT.theme):
        iri = str(node)
        taxon = (node, RDF.type, SCHEMA.Taxon) in g or iri.startswith(str(NCBITAXON))
        taxon = taxon or (node, SKOS.inScheme, NCBITAXON_ONTOLOGY) in g
        if taxon:
            organisms.append(_term(g, node))
        elif iri.startswith(str(FBBI)) or isinstance(node, BNode):
            methods.append(_term(g, node))
        elif iri.startswith(str(DATA_THEME)):
            continue
    return _sorted_terms(methods), _sorted_terms(organisms)


def _person(g: Graph, node: Node, roles: dict[Node, str]) -> Person:
    orcid = str(node) if isinstance(node, URIRef) and str(node).startswith(str(ORCID)) else None
    affiliation = None
    org = _one(g, node, ORG.memberOf)
    if isinstance(org, URIRef):
        affiliation = str(org)
    elif org is not None:
        affiliation = _text(g, org, FOAF.name)
    name = _text(g, node, FOAF.name) or orcid or "unnamed"
    return Person(name=name, orcid=orcid, affiliation=affiliation, role=roles.get(node))


def _people(g: Graph, s: URIRef, prop: URIRef, order: URIRef) -> list[Person]:
    roles: dict[Node, str] = {}
    for att in g.objects(s, PROV.qualifiedAttribution):
        agent, role = g.value(att, PROV.agent), g.value(att, DCAT.hadRole)
        label = _text(g, role, RDFS.label) if role is not None else None
        if agent is not None and label:
            roles[agent] = label
    members = set(g.objects(s, prop))
    head = g.value(s, order)
    ordered = [n for n in Collection(g, head) if n in members] if head is not None else []
    rest = sorted(members - set(ordered), key=lambda n: (_text(g, n, FOAF.name) or "", str(n)))
    return [_person(g, n, roles) for n in [*ordered, *rest]]


def _licence(g: Graph, distributions: list[Node]) -> str | None:
    iris = sorted({str(o) for d in distributions for o in g.objects(d, DCTERMS.license)})
    for iri in iris:
        try:
            return resolve_license(iri).id
        except UnknownTermError:
            continue  # another catalog's licence IRI that is no SPDX licence: not a record field
    return None


def _byte_size(g: Graph, d: Node) -> int:
    """dcat:byteSize as a whole number (some catalogs write "43008.0"); 0 when unreadable."""
    try:
        return max(0, int(float(_text(g, d, DCAT.byteSize) or 0)))
    except ValueError:
        return 0


def _access_url(g: Graph, s: URIRef, distributions: list[Node]) -> str | None:
    """The data location: an access URL other than the landing page (which the writer uses
    when the record has no data URL)."""
    urls = sorted({str(o) for d in distributions for o in g.objects(d, DCAT.accessURL)})
    urls = [u for u in urls if u != str(s)]
    return urls[0] if urls else None


def _access(g: Graph, s: URIRef) -> DataAccess | None:
    right = _text(g, s, DCTERMS.accessRights)
    if not right or not right.startswith(str(ACCESS_RIGHT)):
        return None
    code = right[len(str(ACCESS_RIGHT)) :]
    if code == "NON_PUBLIC":
        # Embargoed data carries the date it opens; closed data does not.
        embargoed = (s, DCTERMS.available, None) in g
        return DataAccess.embargoed if embargoed else DataAccess.closed
    return _ACCESS.get(code)


def _contact(g: Graph, s: URIRef) -> str | None:
    card = _one(g, s, DCAT.contactPoint)
    if card is None:
        return None
    email = _text(g, card, VCARD.hasEmail)
    if email:
        return email.removeprefix("mailto:")
    return _text(g, card, VCARD.hasURL) or _text(g, card, VCARD.note)


def _period(g: Graph, s: URIRef) -> tuple[datetime | None, datetime | None]:
    period = _one(g, s, DCTERMS.temporal)
    if period is None:
        return None, None
    return graph_date(g, period, DCAT.startDate), graph_date(g, period, DCAT.endDate)
