"""DCAT-AP 3.0.1: a dataset record as a ``dcat:Dataset`` graph, and the node as a ``dcat:Catalog``.

The graphs pass the official DCAT-AP 3.0.1 SHACL shapes with no violation. Objects the shapes
constrain by class (licence, media type, format, access rights, landing page, agents) are typed
in the graph itself, because a harvester validates what it receives without fetching anything.
Controlled values come from the tables DCAT-AP names: EU access-right, file-type, data-theme,
language and country, ADMS publisher types, IANA media types, SPDX licences.

One distribution is made per file format of the dataset (not per image: a dataset may hold
thousands of images, and a catalog entry lists how the data comes, not every file). The node
does not serve the image files, so distributions have an ``accessURL`` (the data location when
the record has one, else the landing page) and no ``downloadURL``.

``dataset_from_graph`` (in ``dcat_read``) reads back exactly the fields in ``DCAT_FIELDS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from rdflib import RDF, RDFS, XSD, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from node.ontologies import format_term, resolve_license
from node.records import Dataset, Image, Person, Term

from .context import CatalogPage, NodeInfo, catalog_iri, dataset_iri, node_iri, summary
from .dcat_read import DCAT_FIELDS, dataset_from_graph, dataset_subjects, is_absolute_iri
from .identifiers import PidKind, pid_kind, publication_iri
from .namespaces import (
    ACCESS_RIGHT,
    ACCESS_RIGHT_SCHEME,
    ADMS,
    ADMS_PUBLISHER_TYPE,
    ADMS_PUBLISHER_TYPE_SCHEME,
    BIBO,
    COUNTRY,
    COUNTRY_SCHEME,
    DATA_THEME,
    DATA_THEME_SCHEME,
    DCAT,
    DCTERMS,
    FAIRNODE,
    FBBI_ONTOLOGY,
    FILE_TYPE,
    FILE_TYPE_SCHEME,
    FOAF,
    HYDRA,
    IANA_MEDIA_TYPES,
    LANGUAGE,
    LANGUAGE_SCHEME,
    NCBITAXON_ONTOLOGY,
    ORG,
    PROV,
    SCHEMA,
    SKOS,
    VCARD,
    new_graph,
)
from .vocab import (
    DEFAULT_MEDIA_TYPE,
    EU_ACCESS_RIGHT,
    EU_ACCESS_RIGHT_LABEL,
    EU_DATA_THEME,
    EU_DATA_THEME_LABEL,
    EU_FILE_TYPE,
    FBBI_NAME,
    NCBITAXON_NAME,
    NODE_PUBLISHER_TYPE,
    is_fbbi,
    is_ncbitaxon,
)

__all__ = [
    "DCAT_FIELDS",
    "DEFAULT_SERVICES",
    "Service",
    "add_dataset",
    "catalog_graph",
    "dataset_from_graph",
    "dataset_graph",
    "dataset_subjects",
]

# The language of the text the node itself writes (titles of distributions, statements).
CATALOG_LANGUAGE = "ENG"


@dataclass(frozen=True)
class Service:
    """An endpoint of the node, published as a ``dcat:DataService`` of the catalog."""

    path: str  # below base_url
    title: str
    conforms_to: str  # the standard the endpoint implements
    description_path: str | None  # a machine-readable description of the endpoint
    keywords: tuple[str, ...] = ()


# The endpoints DESIGN §6 gives every node; callers pass the subset that is actually served.
DEFAULT_SERVICES: tuple[Service, ...] = (
    Service(
        "/api/v1/",
        "REST API",
        "https://spec.openapis.org/oas/v3.1.0",
        "/api/v1/openapi.json",
        ("REST", "JSON", "OpenAPI"),
    ),
    Service(
        "/oai",
        "OAI-PMH",
        "http://www.openarchives.org/OAI/2.0/",
        "/oai?verb=Identify",
        ("OAI-PMH", "metadata harvesting"),
    ),
)


def dataset_graph(
    ds: Dataset, images: list[Image] | None = None, *, base_url: str, node: NodeInfo
) -> Graph:
    """The DCAT-AP 3.0.1 description of ``ds`` (distributions per format; sizes from ``images``
    when given, else from the record's totals)."""
    g = new_graph()
    add_dataset(g, ds, images, base_url=base_url, node=node)
    return g


def catalog_graph(
    datasets: Iterable[Dataset],
    *,
    base_url: str,
    node: NodeInfo,
    page: CatalogPage | None = None,
    services: Sequence[Service] = DEFAULT_SERVICES,
    modified: datetime | None = None,
) -> Graph:
    """The node's ``dcat:Catalog`` with ``datasets`` (one page of them when ``page`` is given:
    Hydra ``PartialCollectionView`` links), its data services, publisher and themes.

    ``modified`` is the catalog's last change; by default the newest ``modified`` of
    ``datasets``.
    """
    g = new_graph()
    cat = URIRef(catalog_iri(base_url))
    g.add((cat, RDF.type, DCAT.Catalog))
    g.add((cat, DCTERMS.title, Literal(node.name)))
    text = node.description or f"Catalog of the microscopy image datasets of {node.name}."
    g.add((cat, DCTERMS.description, Literal(text)))
    publisher = _node_agent(g, node, base_url)
    g.add((cat, DCTERMS.publisher, publisher))
    home = URIRef(f"{base_url}/")
    g.add((cat, FOAF.homepage, home))
    g.add((home, RDF.type, FOAF.Document))
    g.add((cat, DCTERMS.language, _coded(g, LANGUAGE[CATALOG_LANGUAGE], LANGUAGE_SCHEME)))
    g.add((LANGUAGE[CATALOG_LANGUAGE], RDF.type, DCTERMS.LinguisticSystem))
    if node.eu_country:
        place = _coded(g, COUNTRY[node.eu_country], COUNTRY_SCHEME)
        g.add((place, RDF.type, DCTERMS.Location))
        g.add((cat, DCTERMS.spatial, place))
    for scheme, title in (
        (FBBI_ONTOLOGY, FBBI_NAME),
        (NCBITAXON_ONTOLOGY, NCBITAXON_NAME),
        (DATA_THEME_SCHEME, "Data theme (EU)"),
    ):
        g.add((cat, DCAT.themeTaxonomy, scheme))
        g.add((scheme, RDF.type, SKOS.ConceptScheme))
        g.add((scheme, DCTERMS.title, Literal(title, lang="en")))

    members = list(datasets)
    subjects = [add_dataset(g, ds, None, base_url=base_url, node=node) for ds in members]
    for s in subjects:
        g.add((cat, DCAT.dataset, s))
    newest = modified or max((ds.modified for ds in members), default=None)
    if newest is not None:
        g.add((cat, DCTERMS.modified, Literal(newest)))
    for service in services:
        g.add((cat, DCAT.service, _service(g, service, subjects, base_url, node, publisher)))
    if page is not None:
        _hydra_view(g, cat, page)
    return g


# --------------------------------------------------------------------------- the dataset


def add_dataset(
    g: Graph, ds: Dataset, images: list[Image] | None, *, base_url: str, node: NodeInfo
) -> URIRef:
    """Add the description of ``ds`` to ``g`` and return its subject IRI."""
    s = URIRef(dataset_iri(base_url, ds.id))
    g.add((s, RDF.type, DCAT.Dataset))
    g.add((s, DCTERMS.identifier, Literal(ds.id)))
    g.add((s, DCTERMS.title, Literal(ds.title)))
    # DCAT-AP requires a description; a record without one gets a factual summary.
    g.add((s, DCTERMS.description, Literal(ds.description or summary(ds))))
    if ds.identifier:
        g.add((s, ADMS.identifier, _pid(g, ds.identifier)))
    # The record URI is also the landing page (the node negotiates HTML on the same URI).
    g.add((s, DCAT.landingPage, s))
    g.add((s, RDF.type, FOAF.Document))
    for kw in ds.keywords:
        g.add((s, DCAT.keyword, Literal(kw)))
    g.add((s, DCAT.theme, _eu_theme(g)))
    for term in ds.imaging_methods:
        g.add((s, DCAT.theme, _concept(g, term, FBBI_ONTOLOGY if is_fbbi(term) else None)))
    for term in ds.organisms:
        taxon = _concept(g, term, NCBITAXON_ONTOLOGY if is_ncbitaxon(term) else None)
        g.add((taxon, RDF.type, SCHEMA.Taxon))  # what tells an organism from a method
        g.add((s, DCAT.theme, taxon))
    for term in ds.subjects:
        g.add((s, DCTERMS.subject, _concept(g, term, None)))
    _people(g, s, ds.creators, DCTERMS.creator, BIBO.authorList)
    _people(g, s, ds.contributors, DCTERMS.contributor, BIBO.contributorList)
    for prop, value in (
        (DCTERMS.created, ds.created),
        (DCTERMS.issued, ds.issued),
        (DCTERMS.modified, ds.modified),
        (DCTERMS.available, ds.embargo_end),  # the date the data becomes available
    ):
        if value is not None:
            g.add((s, prop, Literal(value)))
    if ds.version:
        g.add((s, DCAT.version, Literal(ds.version)))
    for pub in ds.related_publications:
        g.add((s, DCTERMS.isReferencedBy, URIRef(publication_iri(pub))))
    g.add((s, DCTERMS.publisher, _publisher(g, ds, node, base_url)))
    contact = _contact_point(g, ds, node)
    if contact is not None:
        g.add((s, DCAT.contactPoint, contact))
    code = EU_ACCESS_RIGHT[ds.data_access]
    rights = _coded(g, ACCESS_RIGHT[code], ACCESS_RIGHT_SCHEME, EU_ACCESS_RIGHT_LABEL[code])
    g.add((rights, RDF.type, DCTERMS.RightsStatement))
    g.add((s, DCTERMS.accessRights, rights))
    _temporal(g, s, ds)
    _provenance(g, s, ds)
    for dist in _distributions(g, s, ds, images):
        g.add((s, DCAT.distribution, dist))
    return s


def _pid(g: Graph, pid: str) -> BNode:
    node = BNode()
    g.add((node, RDF.type, ADMS.Identifier))
    g.add((node, SKOS.notation, Literal(pid)))
    agency = "DataCite" if pid_kind(pid) is PidKind.doi else "ARK Alliance"
    g.add((node, ADMS.schemaAgency, Literal(agency)))
    return node


def _concept(g: Graph, term: Term, scheme: URIRef | None) -> Node:
    node: Node = URIRef(term.iri) if term.iri else BNode()
    g.add((node, RDF.type, SKOS.Concept))
    g.add((node, SKOS.prefLabel, Literal(term.label)))
    if scheme is not None:
        g.add((node, SKOS.inScheme, scheme))
    return node


def _eu_theme(g: Graph) -> Node:
    """The EU data theme of every microscopy dataset and service: science and technology."""
    theme = DATA_THEME[EU_DATA_THEME]
    _concept(g, Term(label=EU_DATA_THEME_LABEL, iri=str(theme)), DATA_THEME_SCHEME)
    return theme


def _coded(g: Graph, code: URIRef, scheme: URIRef, label: str | None = None) -> URIRef:
    """A value of an EU authority table, with the ``skos:inScheme`` the DCAT-AP vocabulary
    shapes check (they look for it in the data, as harvesters do not load every table)."""
    g.add((code, SKOS.inScheme, scheme))
    if label:
        g.add((code, SKOS.prefLabel, Literal(label, lang="en")))
    return code


def _agent(g: Graph, p: Person) -> Node:
    node: Node = URIRef(p.orcid_iri) if p.orcid_iri else BNode()
    # foaf:Agent too: the shapes check dct:creator's class without inference.
    g.add((node, RDF.type, FOAF.Person))
    g.add((node, RDF.type, FOAF.Agent))
    g.add((node, FOAF.name, Literal(p.name)))
    if p.affiliation:
        if p.affiliation.startswith("https://ror.org/"):
            org: Node = URIRef(p.affiliation)
        else:
            org = BNode()
            g.add((org, FOAF.name, Literal(p.affiliation)))
        g.add((org, RDF.type, FOAF.Organization))
        g.add((node, ORG.memberOf, org))
    return node


def _people(g: Graph, s: URIRef, people: list[Person], prop: URIRef, order: URIRef) -> None:
    """``prop`` per person, plus the ordered ``bibo`` list (RDF has no order; citations do) and
    a qualified attribution carrying the person's role in this dataset."""
    if not people:
        return
    nodes = [_agent(g, p) for p in people]
    for node, p in zip(nodes, people, strict=True):
        g.add((s, prop, node))
        if p.role:
            att, role = BNode(), BNode()
            g.add((s, PROV.qualifiedAttribution, att))
            g.add((att, RDF.type, PROV.Attribution))
            g.add((att, PROV.agent, node))
            g.add((att, DCAT.hadRole, role))
            g.add((role, RDF.type, DCAT.Role))
            g.add((role, RDFS.label, Literal(p.role)))
    head = BNode()
    Collection(g, head, nodes)
    g.add((s, order, head))


def _publisher_type(g: Graph, agent: Node) -> None:
    kind = ADMS_PUBLISHER_TYPE[NODE_PUBLISHER_TYPE]
    g.add((agent, DCTERMS.type, kind))
    g.add((kind, RDF.type, SKOS.Concept))
    g.add((kind, SKOS.prefLabel, Literal("Academia/Scientific organisation", lang="en")))
    g.add((kind, SKOS.inScheme, ADMS_PUBLISHER_TYPE_SCHEME))
    g.add((ADMS_PUBLISHER_TYPE_SCHEME, RDF.type, SKOS.ConceptScheme))
    g.add((ADMS_PUBLISHER_TYPE_SCHEME, DCTERMS.title, Literal("Publisher type", lang="en")))


def _node_agent(g: Graph, node: NodeInfo, base_url: str) -> URIRef:
    agent = URIRef(node_iri(base_url))
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, RDF.type, FOAF.Organization))
    g.add((agent, FOAF.name, Literal(node.name)))
    g.add((agent, DCTERMS.identifier, Literal(node.id)))
    if node.ror:
        g.add((agent, RDFS.seeAlso, URIRef(node.ror)))
    _publisher_type(g, agent)
    return agent


def _publisher(g: Graph, ds: Dataset, node: NodeInfo, base_url: str) -> Node:
    """The node the record was born on: this node's agent, or one standing for the origin node
    of a harvested record (named by its node id, as the provenance says)."""
    origin = ds.provenance.origin_node
    name = ds.publisher or (node.name if origin == node.id else origin)
    if origin == node.id and name == node.name:
        return _node_agent(g, node, base_url)
    agent = BNode()
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, RDF.type, FOAF.Organization))
    g.add((agent, FOAF.name, Literal(name)))
    g.add((agent, DCTERMS.identifier, Literal(origin)))
    _publisher_type(g, agent)
    return agent


def _contact_point(g: Graph, ds: Dataset, node: NodeInfo) -> BNode | None:
    """Who to ask for the data: the record's access contact, else the node's address."""
    contact = (ds.access_contact or node.contact_email or "").strip()
    if not contact:
        return None
    card = BNode()
    g.add((card, RDF.type, VCARD.Kind))
    g.add((card, VCARD.fn, Literal(ds.publisher or node.name)))
    if contact.startswith(("http://", "https://")):
        g.add((card, VCARD.hasURL, URIRef(contact)))
    elif "@" in contact and " " not in contact:
        email = contact.removeprefix("mailto:")
        g.add((card, VCARD.hasEmail, URIRef(f"mailto:{email}")))
    else:
        g.add((card, VCARD.note, Literal(contact)))
    return card


def _temporal(g: Graph, s: URIRef, ds: Dataset) -> None:
    """The acquisition period of the images, when the files gave dates."""
    start, end = ds.image_summary.acquired_from, ds.image_summary.acquired_to
    if start is None and end is None:
        return
    period = BNode()
    g.add((period, RDF.type, DCTERMS.PeriodOfTime))
    if start is not None:
        g.add((period, DCAT.startDate, Literal(start)))
    if end is not None:
        g.add((period, DCAT.endDate, Literal(end)))
    g.add((s, DCTERMS.temporal, period))


def _provenance(g: Graph, s: URIRef, ds: Dataset) -> None:
    p = ds.provenance
    text = f"Catalogued by node {p.origin_node!r}"
    if p.source:
        text += f" from its harvest source {p.source!r}"
    text += "; metadata read from the image files and curated there"
    if p.harvested_via:
        text += "; harvested via " + " → ".join(p.harvested_via)
    if p.source_record_url:
        text += f"; source record {p.source_record_url}"
    statement = BNode()
    g.add((statement, RDF.type, DCTERMS.ProvenanceStatement))
    g.add((statement, RDFS.label, Literal(text + ".", lang="en")))
    g.add((s, DCTERMS.provenance, statement))
    # Machine-readable too, so the next node rebuilds the provenance: the chain of nodes as an
    # rdf:List (its order matters: nearest the origin first), the source record as what the
    # dataset was derived from.
    if p.harvested_via:
        chain = BNode()
        Collection(g, chain, [Literal(n) for n in p.harvested_via])
        g.add((statement, FAIRNODE.harvestedVia, chain))
    if p.source_record_url and is_absolute_iri(p.source_record_url):
        g.add((s, PROV.wasDerivedFrom, URIRef(p.source_record_url)))


# --------------------------------------------------------------------------- distributions


@dataclass
class _FormatPart:
    name: str
    media_type: str | None = None
    byte_size: int | None = None
    images: int = 0
    files: int = 0


def _format_parts(ds: Dataset, images: list[Image] | None) -> list[_FormatPart]:
    if not images:
        single = len(ds.formats) == 1
        return [
            _FormatPart(
                name=f,
                media_type=DEFAULT_MEDIA_TYPE.get(f),
                byte_size=ds.total_size if single and ds.total_size else None,
                images=ds.image_count if single else 0,
                files=ds.file_count if single else 0,
            )
            for f in ds.formats
        ]
    parts: dict[str, _FormatPart] = {}
    files: dict[str, set[str]] = {}
    sized: set[str] = set()
    for im in images:
        part = parts.setdefault(im.format, _FormatPart(name=im.format))
        part.images += 1
        part.media_type = part.media_type or im.media_type
        files.setdefault(im.format, set()).update(im.files or [im.path])
        # Sizes are per fileset: count each main file once (as records.aggregate_images does).
        if im.file_size and im.path not in sized:
            sized.add(im.path)
            part.byte_size = (part.byte_size or 0) + im.file_size
    for name, part in parts.items():
        part.files = len(files[name])
        part.media_type = part.media_type or DEFAULT_MEDIA_TYPE.get(name)
    return [parts[name] for name in sorted(parts)]


def _distributions(g: Graph, s: URIRef, ds: Dataset, images: list[Image] | None) -> list[URIRef]:
    access = URIRef(ds.data_location.url) if ds.data_location.url else s
    licence = _licence(g, ds.license) if ds.license else None
    out = []
    parts = _format_parts(ds, images)
    if not parts:  # no format known yet: one distribution still carries access and licence
        parts = [_FormatPart(name="")]
    for part in parts:
        d = URIRef(f"{s}#distribution-{quote(part.name or 'data', safe='')}")
        g.add((d, RDF.type, DCAT.Distribution))
        g.add((d, DCAT.accessURL, access))
        if licence is not None:
            g.add((d, DCTERMS.license, licence))
        if part.name:
            # The title is the format name exactly: the reader takes the formats from it.
            g.add((d, DCTERMS.title, Literal(part.name)))
            counts = f"{part.images} image(s) in {part.files} file(s)" if part.images else "Files"
            g.add((d, DCTERMS.description, Literal(f"{counts} in {part.name} format.", lang="en")))
        else:
            g.add((d, DCTERMS.description, Literal("The files of this dataset.", lang="en")))
        if part.media_type:
            mt = IANA_MEDIA_TYPES[part.media_type]
            g.add((mt, RDF.type, DCTERMS.MediaType))
            g.add((d, DCAT.mediaType, mt))
        if part.name in EU_FILE_TYPE:
            ft = _coded(g, FILE_TYPE[EU_FILE_TYPE[part.name]], FILE_TYPE_SCHEME)
            g.add((ft, RDF.type, DCTERMS.MediaTypeOrExtent))
            g.add((d, DCTERMS["format"], ft))
        edam = format_term(part.name) if part.name else None
        if edam is not None and edam.iri:
            # EDAM names the format precisely (OME-TIFF, not just TIFF): the standard it meets.
            spec = URIRef(edam.iri)
            g.add((spec, RDF.type, DCTERMS.Standard))
            g.add((spec, RDFS.label, Literal(edam.label)))
            g.add((d, DCTERMS.conformsTo, spec))
        if part.byte_size:
            g.add((d, DCAT.byteSize, Literal(part.byte_size, datatype=XSD.nonNegativeInteger)))
        out.append(d)
    return out


def _licence(g: Graph, spdx_id: str) -> URIRef:
    lic = resolve_license(spdx_id)
    node = URIRef(lic.iri)
    g.add((node, RDF.type, DCTERMS.LicenseDocument))
    g.add((node, RDFS.label, Literal(lic.name)))
    return node


# --------------------------------------------------------------------------- catalog parts


def _service(
    g: Graph,
    service: Service,
    datasets: list[URIRef],
    base_url: str,
    node: NodeInfo,
    publisher: URIRef,
) -> URIRef:
    svc = URIRef(base_url + service.path)
    g.add((svc, RDF.type, DCAT.DataService))
    g.add((svc, DCTERMS.title, Literal(f"{service.title} of {node.name}")))
    g.add((svc, DCAT.endpointURL, svc))
    if service.description_path:
        g.add((svc, DCAT.endpointDescription, URIRef(base_url + service.description_path)))
    spec = URIRef(service.conforms_to)
    g.add((spec, RDF.type, DCTERMS.Standard))
    g.add((svc, DCTERMS.conformsTo, spec))
    g.add((svc, DCTERMS.publisher, publisher))
    g.add((svc, DCAT.theme, _eu_theme(g)))
    for kw in service.keywords:
        g.add((svc, DCAT.keyword, Literal(kw)))
    if node.contact_email:
        card = BNode()
        g.add((card, RDF.type, VCARD.Kind))
        g.add((card, VCARD.fn, Literal(node.name)))
        g.add((card, VCARD.hasEmail, URIRef(f"mailto:{node.contact_email}")))
        g.add((svc, DCAT.contactPoint, card))
    for ds in datasets:
        g.add((svc, DCAT.servesDataset, ds))
    return svc


def _hydra_view(g: Graph, cat: URIRef, page: CatalogPage) -> None:
    view = URIRef(page.url)
    g.add((cat, RDF.type, HYDRA.Collection))
    g.add((cat, HYDRA.view, view))
    if page.total_items is not None:
        g.add((cat, HYDRA.totalItems, Literal(page.total_items, datatype=XSD.nonNegativeInteger)))
    g.add((view, RDF.type, HYDRA.PartialCollectionView))
    for prop, url in (
        (HYDRA.first, page.first),
        (HYDRA.previous, page.previous),
        (HYDRA.next, page.next),
        (HYDRA.last, page.last),
    ):
        if url:
            g.add((view, prop, URIRef(url)))
