"""schema.org / Bioschemas Dataset 1.0: the JSON-LD embedded in every landing page, and back.

The document follows the Bioschemas Dataset profile (1.0-RELEASE): every minimum property
(name, description, identifier, keywords, license, url) and the recommended ones the record
can fill. Imaging methods are FBbi ``DefinedTerm``s in ``measurementTechnique``; organisms are
NCBITaxon ``Taxon``s in ``about`` (schema.org's ``taxonomicRange`` belongs to BioChemEntity, not
to Dataset), next to the other subject terms as ``DefinedTerm``s.

``dataset_from_jsonld`` reads the JSON document itself (its arrays keep the creator order that
RDF would lose); ``graph_from_jsonld`` turns it into triples with a *local* copy of the
schema.org context, so that parsing never fetches anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from rdflib import Graph

from node.ontologies import resolve_license, term_label
from node.records import (
    DataAccess,
    DataLocation,
    Dataset,
    Funding,
    Image,
    ImageSummary,
    Person,
    Provenance,
    Term,
)

from .context import (
    NodeInfo,
    catalog_iri,
    dataset_id_from_iri,
    dataset_iri,
    node_iri,
    summary,
    thumbnail_url,
)
from .identifiers import pid_from_url, pid_url, publication_iri, publication_value
from .mediatypes import parse
from .namespaces import BIOSCHEMAS_DATASET, FBBI_ONTOLOGY
from .vocab import EU_REPO_ACCESS_LABEL, FBBI_NAME, is_fbbi, is_ncbitaxon, obo_curie

SCHEMA_CONTEXT_URLS = ("https://schema.org/", "https://schema.org", "http://schema.org/")

# The record fields the JSON-LD carries, read back unchanged by dataset_from_jsonld
# (``[]``: each item's part). created, modified and issued are dates (the schema.org context
# types dateCreated/dateModified/datePublished as Date, and the profile checks the format):
# they read back at midnight UTC. Creators carry no role (contributors do, through schema.org
# Roles). A record without keywords, subjects, methods or organisms gets the keyword
# 'microscopy' (the profile requires keywords); one without description gets a summary.
SCHEMAORG_FIELDS: tuple[str, ...] = (
    "id",
    "identifier",
    "title",
    "description",
    "keywords",
    "subjects",
    "organisms",
    "imaging_methods",
    "creators[].name",
    "creators[].orcid",
    "creators[].affiliation",
    "contributors",
    "license",
    "created",
    "modified",
    "issued",
    "publisher",
    "funding",
    "related_publications",
    "version",
    "data_location.url",
    "formats",
    "provenance.origin_node",
    "image_summary.acquired_from",
    "image_summary.acquired_to",
)


def dataset_jsonld(
    ds: Dataset, images: list[Image] | None = None, *, base_url: str, node: NodeInfo
) -> dict[str, Any]:
    """The schema.org Dataset of ``ds`` as a JSON-LD document (a dict ready for json.dumps)."""
    iri = dataset_iri(base_url, ds.id)
    doc: dict[str, Any] = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": iri,
        # Bioschemas asks every page to say which profile it follows, with dct:conformsTo.
        "dct:conformsTo": {"@id": str(BIOSCHEMAS_DATASET)},
        "identifier": pid_url(ds.identifier, base_url) if ds.identifier else iri,
        "url": iri,
        "name": ds.title,
        "description": ds.description or summary(ds),
        "keywords": _keywords(ds),
        "dateModified": ds.modified.date().isoformat(),
        "isAccessibleForFree": ds.data_access == DataAccess.open,
        "includedInDataCatalog": _catalog(node, base_url),
        "publisher": _publisher(ds, node, base_url),
    }
    if ds.identifier:
        doc["sameAs"] = pid_url(ds.identifier, base_url)
    if ds.license:
        doc["license"] = resolve_license(ds.license).iri
    if ds.creators:
        doc["creator"] = [_person(p) for p in ds.creators]
    if ds.contributors:
        doc["contributor"] = [_contributor(p) for p in ds.contributors]
    if ds.imaging_methods:
        doc["measurementTechnique"] = [_defined_term(t) for t in ds.imaging_methods]
    if ds.organisms or ds.subjects:
        # Organisms as Taxa, other subject terms as DefinedTerms: what the dataset is about.
        doc["about"] = [_taxon(t) for t in ds.organisms] + [_defined_term(t) for t in ds.subjects]
    if ds.issued:
        doc["datePublished"] = ds.issued.date().isoformat()
    if ds.created:
        doc["dateCreated"] = ds.created.date().isoformat()
    if ds.version:
        doc["version"] = ds.version
    if ds.related_publications:
        doc["citation"] = [
            {"@type": "CreativeWork", "@id": publication_iri(p), "url": publication_iri(p)}
            for p in ds.related_publications
        ]
    if ds.funding:
        doc["funding"] = [_grant(f) for f in ds.funding]
    distributions = _distributions(ds, images)
    if distributions:
        doc["distribution"] = distributions
    if ds.data_access != DataAccess.open:
        doc["conditionsOfAccess"] = _conditions(ds, node)
    coverage = _temporal(ds.image_summary)
    if coverage:
        doc["temporalCoverage"] = coverage
    measured = ds.image_summary.fluors or ds.image_summary.channel_names
    if measured:
        doc["variableMeasured"] = list(measured)
    thumb = thumbnail_url(base_url, ds.thumbnail)
    if thumb:
        doc["thumbnailUrl"] = thumb
    return doc


def _keywords(ds: Dataset) -> list[Any]:
    """The keywords; the profile requires some, and arrays of one kind (strings or terms), so a
    record without keywords offers its terms instead (the reader ignores those copies)."""
    if ds.keywords:
        return list(ds.keywords)
    terms = [_defined_term(t) for t in (*ds.subjects, *ds.imaging_methods, *ds.organisms)]
    return terms or ["microscopy"]


def _defined_term(term: Term) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "DefinedTerm", "name": term.label}
    if term.iri:
        out["@id"] = term.iri
        out["url"] = term.iri
        code = obo_curie(term.iri)
        if code:
            out["termCode"] = code
        if is_fbbi(term):
            out["inDefinedTermSet"] = {
                "@type": "DefinedTermSet",
                "@id": str(FBBI_ONTOLOGY),
                "name": FBBI_NAME,
                "url": str(FBBI_ONTOLOGY),
            }
    return out


def _taxon(term: Term) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "Taxon", "name": term.label}
    if term.iri:
        out["@id"] = term.iri
        out["url"] = term.iri
        if is_ncbitaxon(term):
            out["identifier"] = obo_curie(term.iri)
    return out


def _organisation(name: str | None, iri: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "Organization"}
    if iri:
        if iri.startswith(("http://", "https://")):
            out["@id"] = iri
        out["identifier"] = iri
    if name:
        out["name"] = name
    return out


def _person(p: Person) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "Person", "name": p.name}
    if p.orcid_iri:
        out["@id"] = p.orcid_iri
        out["identifier"] = p.orcid_iri
    if p.affiliation:
        ror = p.affiliation.startswith("https://ror.org/")
        out["affiliation"] = _organisation(
            None if ror else p.affiliation, p.affiliation if ror else None
        )
    return out


def _contributor(p: Person) -> dict[str, Any]:
    # schema.org's Role pattern: a Role node between the dataset and the person holds roleName.
    if not p.role:
        return _person(p)
    return {"@type": "Role", "roleName": p.role, "contributor": _person(p)}


def _grant(f: Funding) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "Grant", "funder": _organisation(f.funder, f.funder_id)}
    if f.award:
        out["identifier"] = f.award
    return out


def _catalog(node: NodeInfo, base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@type": "DataCatalog",
        "@id": catalog_iri(base_url),
        "name": node.name,
        "url": f"{base_url}/",
    }
    if node.ror:
        out["provider"] = _organisation(None, node.ror)
    return out


def _publisher(ds: Dataset, node: NodeInfo, base_url: str) -> dict[str, Any]:
    """The origin node of the record; ``identifier`` is its node id (the provenance)."""
    origin = ds.provenance.origin_node
    name = ds.publisher or (node.name if origin == node.id else origin)
    out = _organisation(name)
    if origin == node.id and name == node.name:
        out["@id"] = node_iri(base_url)  # the same agent as the DCAT publisher
    out["identifier"] = origin
    return out


def _distributions(ds: Dataset, images: list[Image] | None) -> list[dict[str, Any]]:
    media: dict[str, str] = {}
    sizes: dict[str, int] = {}
    counted: set[str] = set()
    for im in images or []:
        if im.media_type:
            media.setdefault(im.format, im.media_type)
        if im.file_size and im.path not in counted:
            counted.add(im.path)
            sizes[im.format] = sizes.get(im.format, 0) + im.file_size
    if len(ds.formats) == 1 and ds.total_size and not sizes:
        sizes[ds.formats[0]] = ds.total_size
    out = []
    for fmt in ds.formats:
        # name is the format exactly: the reader takes the record's formats from it.
        item: dict[str, Any] = {"@type": "DataDownload", "name": fmt, "encodingFormat": fmt}
        if fmt in media:
            item["encodingFormat"] = media[fmt]
        if fmt in sizes:
            item["contentSize"] = f"{sizes[fmt]} B"
        if ds.data_location.url:
            item["url"] = ds.data_location.url
        out.append(item)
    return out


def _conditions(ds: Dataset, node: NodeInfo) -> str:
    text = f"{EU_REPO_ACCESS_LABEL[ds.data_access]}."
    if ds.data_access == DataAccess.embargoed and ds.embargo_end:
        text += f" Embargoed until {ds.embargo_end.date().isoformat()}."
    contact = ds.access_contact or node.contact_email
    if ds.data_access == DataAccess.restricted and contact:
        text += f" Access on request: {contact}."
    return text


def _temporal(summary: ImageSummary) -> str | None:
    start, end = summary.acquired_from, summary.acquired_to
    if start is None and end is None:
        return None
    # ISO 8601 interval; '..' marks an open end, as schema.org's temporalCoverage allows.
    return f"{start.isoformat() if start else '..'}/{end.isoformat() if end else '..'}"


# --------------------------------------------------------------------------- reading


def dataset_from_jsonld(doc: dict[str, Any] | str, *, origin_node: str | None = None) -> Dataset:
    """The Dataset of a schema.org Dataset document (as written by ``dataset_jsonld``; a
    document with an ``@graph`` is searched for its Dataset node). ``origin_node`` is used when
    the publisher carries no node id."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    node = _dataset_node(doc)
    iri = node.get("@id") or node.get("url")
    ds_id = dataset_id_from_iri(iri) if isinstance(iri, str) else None
    if not ds_id:
        raise ValueError(f"schema.org Dataset @id {iri!r} is not a .../datasets/{{id}} IRI")
    name = _first(node.get("name"))
    if not isinstance(name, str) or not name:
        raise ValueError(f"schema.org Dataset {iri} has no name")
    publisher = _first(node.get("publisher")) or {}
    origin = (publisher.get("identifier") if isinstance(publisher, dict) else None) or origin_node
    if not origin:
        raise ValueError(
            f"schema.org Dataset {iri} names no origin node: expected publisher.identifier "
            "(the node id), or pass origin_node"
        )
    start, end = _parse_temporal(node.get("temporalCoverage"))
    identifier = _first(node.get("identifier"))
    words = list(_items(node.get("keywords")))
    fields: dict[str, Any] = {
        "id": ds_id,
        "identifier": pid_from_url(identifier) if isinstance(identifier, str) else None,
        "title": name,
        "description": _first(node.get("description")),
        "keywords": [w for w in words if isinstance(w, str)],
        "subjects": [_term(t) for t in _items(node.get("about")) if _is_type(t, "DefinedTerm")],
        "imaging_methods": [_term(t) for t in _items(node.get("measurementTechnique"))],
        "organisms": [_term(t) for t in _items(node.get("about")) if _is_type(t, "Taxon")],
        "creators": [_read_person(p) for p in _items(node.get("creator"))],
        "contributors": [_read_contributor(p) for p in _items(node.get("contributor"))],
        "license": _read_licence(node.get("license")),
        "created": _datetime(node.get("dateCreated")),
        "modified": _datetime(node.get("dateModified")),
        "issued": _datetime(node.get("datePublished")),
        "publisher": publisher.get("name") if isinstance(publisher, dict) else None,
        "funding": [_read_grant(g) for g in _items(node.get("funding"))],
        "related_publications": [_read_citation(c) for c in _items(node.get("citation"))],
        "version": _first(node.get("version")),
        "formats": [d.get("name") for d in _items(node.get("distribution")) if d.get("name")],
        "provenance": Provenance(origin_node=origin),
        "image_summary": ImageSummary(acquired_from=start, acquired_to=end),
    }
    url = next((d.get("url") for d in _items(node.get("distribution")) if d.get("url")), None)
    fields["data_location"] = DataLocation(url=url)
    if node.get("isAccessibleForFree") is True:
        fields["data_access"] = DataAccess.open
    if fields["version"] is not None:
        fields["version"] = str(fields["version"])
    return Dataset(**{k: v for k, v in fields.items() if v is not None})


def _dataset_node(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict) and _is_type(doc, "Dataset"):
        return doc
    nodes = doc.get("@graph", []) if isinstance(doc, dict) else doc
    found = [n for n in _items(nodes) if isinstance(n, dict) and _is_type(n, "Dataset")]
    if len(found) != 1:
        raise ValueError(
            f'expected one schema.org Dataset node ("@type": "Dataset"), found {len(found)}'
        )
    return found[0]


def _is_type(node: Any, name: str) -> bool:
    if not isinstance(node, dict):
        return False
    types = [t.rsplit("/", 1)[-1].removeprefix("schema:") for t in _items(node.get("@type"))]
    return name in types


def _items(value: Any) -> Iterator[Any]:
    if value is None:
        return
    yield from (value if isinstance(value, list) else [value])


def _first(value: Any) -> Any:
    return next(_items(value), None)


def _term(node: Any) -> Term:
    if isinstance(node, str):
        return Term(label=node, iri=node if node.startswith(("http://", "https://")) else None)
    iri = node.get("@id") or node.get("url")
    label = node.get("name") or (term_label(iri) if iri else None)
    return Term(label=label or iri or "unnamed", iri=iri)


def _read_person(node: dict[str, Any]) -> Person:
    orcid = node.get("@id") or node.get("identifier")
    affiliation = _first(node.get("affiliation"))
    aff = None
    if isinstance(affiliation, dict):
        aff = affiliation.get("@id") or affiliation.get("identifier") or affiliation.get("name")
    elif isinstance(affiliation, str):
        aff = affiliation
    is_orcid = isinstance(orcid, str) and "orcid.org/" in orcid
    return Person(
        name=node.get("name") or "unnamed", orcid=orcid if is_orcid else None, affiliation=aff
    )


def _read_contributor(node: dict[str, Any]) -> Person:
    if _is_type(node, "Role"):
        person = _read_person(_first(node.get("contributor")) or {})
        return person.model_copy(update={"role": node.get("roleName")})
    return _read_person(node)


def _read_licence(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    return resolve_license(value).id if isinstance(value, str) else None


def _read_grant(node: dict[str, Any]) -> Funding:
    funder = _first(node.get("funder")) or {}
    return Funding(
        funder=funder.get("name") or funder.get("@id") or "unknown funder",
        funder_id=funder.get("@id") or funder.get("identifier"),
        award=node.get("identifier"),
    )


def _read_citation(node: Any) -> str:
    if isinstance(node, dict):
        node = node.get("@id") or node.get("url") or node.get("identifier") or ""
    return publication_value(str(node))


def _datetime(value: Any) -> datetime | None:
    value = _first(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            d = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_temporal(value: Any) -> tuple[datetime | None, datetime | None]:
    value = _first(value)
    if not isinstance(value, str) or "/" not in value:
        return None, None
    start, _, end = value.partition("/")
    return (
        _datetime(start) if start != ".." else None,
        _datetime(end) if end != ".." else None,
    )


# --------------------------------------------------------------------------- RDF


def schema_contexts(context_document: dict[str, Any]) -> dict[str, Any]:
    """The URL → context map for the schema.org context file (``schemaorgcontext.jsonld``)."""
    inner = context_document["@context"]
    return dict.fromkeys(SCHEMA_CONTEXT_URLS, inner)


def graph_from_jsonld(doc: dict[str, Any] | str, *, contexts: dict[str, Any]) -> Graph:
    """Parse a JSON-LD document into a graph, with every ``@context`` URL resolved from
    ``contexts`` (see ``schema_contexts``); nothing is fetched over the network."""
    data = doc if isinstance(doc, str) else json.dumps(doc)
    return parse(data, "application/ld+json", contexts=contexts)
