"""DataCite Metadata Schema 4.6 XML (valid against 4.6 and 4.7: same namespace), and back.

The identifier is the DOI when the record's PID is a DOI. For an ARK, ``identifierType="ARK"``:
the kernel-4 XSD leaves identifierType free (DataCite itself registers DOIs only, and the OpenAIRE
guidelines for data archives use DataCite XML with ARK, Handle or URL identifiers). A draft
without PID is identified by its landing page URL. The node's dataset id and landing page are
alternate identifiers.

Subjects carry the ontology terms with ``subjectScheme``/``schemeURI``/``valueURI`` (FBbi for
methods, NCBI Taxonomy for organisms); rights carry the SPDX licence and the OpenAIRE access
term (``info:eu-repo/semantics/...Access``), which names all four data-access values.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from node.ontologies import resolve_license
from node.records import (
    DataLocation,
    Dataset,
    Funding,
    ImageSummary,
    Person,
    Provenance,
    Term,
)

from .context import NodeInfo, dataset_id_from_iri, dataset_iri
from .identifiers import PidKind, bare_doi, pid_kind, publication_value
from .namespaces import FBBI_ONTOLOGY, NCBITAXON_ONTOLOGY
from .vocab import (
    EU_REPO_ACCESS,
    EU_REPO_ACCESS_LABEL,
    access_from_eu_repo,
    datacite_contributor_type,
    is_fbbi,
    is_ncbitaxon,
)
from .xmlsafe import parse_xml, text_of

NS = "http://datacite.org/schema/kernel-4"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} http://schema.datacite.org/meta/kernel-4.6/metadata.xsd"
UNAVAILABLE = "(:unav)"  # DataCite's standard value for a mandatory property nobody knows
LOCAL_ID_TYPE = "local"
FBBI_SCHEME = "FBbi"
NCBITAXON_SCHEME = "NCBI Taxonomy"

# The record fields the XML carries, read back unchanged by from_datacite_xml (``[]``: each
# item's part). Contributor roles survive when they are DataCite contributorType names
# (others become "Other", read back as no role); creators have no role in DataCite. Subject
# terms without IRI read back as keywords. issued/created/modified/embargo_end are DataCite
# dates (Issued, Created, Updated, Available); the acquisition period is a Collected date.
DATACITE_FIELDS: tuple[str, ...] = (
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
    "contributors[].name",
    "contributors[].orcid",
    "contributors[].affiliation",
    "contributors[].role",
    "license",
    "created",
    "modified",
    "issued",
    "embargo_end",
    "publisher",
    "funding",
    "related_publications",
    "version",
    "total_size",
    "file_count",
    "image_count",
    "formats",
    "data_access",
    "image_summary.acquired_from",
    "image_summary.acquired_to",
)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> Any:
    child = etree.SubElement(parent, f"{{{NS}}}{tag}", {k: v for k, v in attrs.items() if v})
    if text is not None:
        child.text = text
    return child


def to_datacite_xml(ds: Dataset, *, base_url: str, node: NodeInfo) -> bytes:
    """The DataCite 4.6 XML of ``ds`` (UTF-8, with XML declaration)."""
    root = etree.Element(f"{{{NS}}}resource", nsmap={None: NS, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)
    landing = dataset_iri(base_url, ds.id)
    if ds.identifier:
        _el(root, "identifier", ds.identifier, identifierType=pid_kind(ds.identifier).value)
    else:
        _el(root, "identifier", landing, identifierType="URL")

    creators = _el(root, "creators")
    for p in ds.creators:
        _name(creators, "creator", p)
    if not ds.creators:
        _el(_el(creators, "creator"), "creatorName", UNAVAILABLE)
    _el(_el(root, "titles"), "title", ds.title)
    _publisher(root, ds, node)
    # DataCite: the year the data became public; after an embargo, the year it ended.
    year = ds.embargo_end or ds.issued or ds.created or ds.modified
    _el(root, "publicationYear", f"{year.year:04d}")
    _el(root, "resourceType", "Microscopy images", resourceTypeGeneral="Dataset")
    _subjects(root, ds)
    if ds.contributors:
        contributors = _el(root, "contributors")
        for p in ds.contributors:
            _name(contributors, "contributor", p, datacite_contributor_type(p.role))
    _dates(root, ds)
    alternates = _el(root, "alternateIdentifiers")
    _el(alternates, "alternateIdentifier", ds.id, alternateIdentifierType=LOCAL_ID_TYPE)
    if ds.identifier:
        _el(alternates, "alternateIdentifier", landing, alternateIdentifierType="URL")
    if ds.related_publications:
        related = _el(root, "relatedIdentifiers")
        for pub in ds.related_publications:
            doi = bare_doi(pub)
            kind = "DOI" if doi else "URL"
            _el(
                related,
                "relatedIdentifier",
                doi or pub,
                relatedIdentifierType=kind,
                relationType="IsReferencedBy",
            )
    sizes = _el(root, "sizes")
    _el(sizes, "size", f"{ds.total_size} bytes")
    _el(sizes, "size", f"{ds.file_count} files")
    _el(sizes, "size", f"{ds.image_count} images")
    if ds.formats:
        formats = _el(root, "formats")
        for fmt in ds.formats:
            _el(formats, "format", fmt)
    if ds.version:
        _el(root, "version", ds.version)
    _rights(root, ds)
    if ds.description:
        _el(_el(root, "descriptions"), "description", ds.description, descriptionType="Abstract")
    if ds.funding:
        refs = _el(root, "fundingReferences")
        for f in ds.funding:
            _funding(refs, f)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _name(parent: Any, tag: str, p: Person, contributor_type: str | None = None) -> None:
    item = _el(parent, tag, contributorType=contributor_type or "")
    _el(item, f"{tag}Name", p.name, nameType="Personal")
    if p.orcid_iri:
        _el(
            item,
            "nameIdentifier",
            p.orcid_iri,
            nameIdentifierScheme="ORCID",
            schemeURI="https://orcid.org",
        )
    if p.affiliation:
        if p.affiliation.startswith("https://ror.org/"):
            # The ROR name is not in the record; the IRI stands in for it (content is required).
            _el(
                item,
                "affiliation",
                p.affiliation,
                affiliationIdentifier=p.affiliation,
                affiliationIdentifierScheme="ROR",
                schemeURI="https://ror.org",
            )
        else:
            _el(item, "affiliation", p.affiliation)


def _publisher(root: Any, ds: Dataset, node: NodeInfo) -> None:
    origin = ds.provenance.origin_node
    name = ds.publisher or (node.name if origin == node.id else origin)
    ror = node.ror if origin == node.id and name == node.name else None
    if ror:
        _el(
            root,
            "publisher",
            name,
            publisherIdentifier=ror,
            publisherIdentifierScheme="ROR",
            schemeURI="https://ror.org/",
        )
    else:
        _el(root, "publisher", name)


def _subjects(root: Any, ds: Dataset) -> None:
    subjects = _el(root, "subjects")
    for kw in ds.keywords:
        _el(subjects, "subject", kw)
    for term in ds.subjects:
        _el(subjects, "subject", term.label, valueURI=term.iri or "")
    for term in ds.imaging_methods:
        _el(
            subjects,
            "subject",
            term.label,
            subjectScheme=FBBI_SCHEME,
            schemeURI=str(FBBI_ONTOLOGY) if is_fbbi(term) else "",
            valueURI=term.iri or "",
        )
    for term in ds.organisms:
        _el(
            subjects,
            "subject",
            term.label,
            subjectScheme=NCBITAXON_SCHEME,
            schemeURI=str(NCBITAXON_ONTOLOGY) if is_ncbitaxon(term) else "",
            valueURI=term.iri or "",
        )


def _dates(root: Any, ds: Dataset) -> None:
    dates = _el(root, "dates")
    for kind, value in (
        ("Created", ds.created),
        ("Issued", ds.issued),
        ("Updated", ds.modified),
        ("Available", ds.embargo_end),  # the embargo ends: the data becomes available
    ):
        if value is not None:
            _el(dates, "date", value.isoformat(), dateType=kind)
    start, end = ds.image_summary.acquired_from, ds.image_summary.acquired_to
    if start or end:
        # RKMS-ISO8601 range; an open end is left empty, as DataCite's examples do.
        span = f"{start.isoformat() if start else ''}/{end.isoformat() if end else ''}"
        _el(
            dates,
            "date",
            span,
            dateType="Collected",
            dateInformation="Acquisition dates of the images",
        )


def _rights(root: Any, ds: Dataset) -> None:
    rights = _el(root, "rightsList")
    if ds.license:
        lic = resolve_license(ds.license)
        _el(
            rights,
            "rights",
            lic.name,
            rightsURI=lic.iri,
            rightsIdentifier=lic.id,
            rightsIdentifierScheme="SPDX",
            schemeURI="https://spdx.org/licenses/",
        )
    access = EU_REPO_ACCESS[ds.data_access]
    _el(rights, "rights", EU_REPO_ACCESS_LABEL[ds.data_access], rightsURI=access)


def _funding(parent: Any, f: Funding) -> None:
    ref = _el(parent, "fundingReference")
    _el(ref, "funderName", f.funder)
    if f.funder_id:
        if "ror.org/" in f.funder_id:
            kind = "ROR"
        elif "10.13039/" in f.funder_id:
            kind = "Crossref Funder ID"
        else:
            kind = "Other"
        _el(ref, "funderIdentifier", f.funder_id, funderIdentifierType=kind)
    if f.award:
        _el(ref, "awardNumber", f.award)


# --------------------------------------------------------------------------- reading


def _all(root: Any, path: str) -> list[Any]:
    return root.findall(path, namespaces={"d": NS})


def _one(root: Any, path: str) -> str | None:
    return text_of(root.find(path, namespaces={"d": NS}))


def from_datacite_xml(
    data: bytes | str, *, origin_node: str, dataset_id: str | None = None
) -> Dataset:
    """The Dataset of a DataCite kernel-4 document. DataCite has no place for the node a
    record was born on: ``origin_node`` says it (the peer it was harvested from, usually).
    ``dataset_id`` is used when the document names no local id (a foreign repository's)."""
    root = parse_xml(data, "DataCite XML")
    if root.tag != f"{{{NS}}}resource":
        raise ValueError(f"DataCite XML: root element is {root.tag!r}, expected {{{NS}}}resource")
    identifier = root.find("d:identifier", namespaces={"d": NS})
    pid = None
    if identifier is not None and identifier.get("identifierType") in (
        PidKind.doi.value,
        PidKind.ark.value,
    ):
        pid = text_of(identifier)
    ds_id = None
    urls = []
    for alt in _all(root, "d:alternateIdentifiers/d:alternateIdentifier"):
        if alt.get("alternateIdentifierType") == LOCAL_ID_TYPE:
            ds_id = text_of(alt)
        elif alt.get("alternateIdentifierType") == "URL":
            urls.append(text_of(alt) or "")
    if identifier is not None and identifier.get("identifierType") == "URL":
        urls.append(text_of(identifier) or "")
    ds_id = ds_id or next((i for u in urls if (i := dataset_id_from_iri(u))), None)
    ds_id = ds_id or dataset_id
    if not ds_id:
        raise ValueError(
            "DataCite XML: no dataset id (expected an alternateIdentifier of type "
            f"{LOCAL_ID_TYPE!r} or a .../datasets/{{id}} URL)"
        )
    title = _one(root, "d:titles/d:title")
    if not title:
        raise ValueError("DataCite XML: no title")
    keywords, subjects, methods, organisms = _read_subjects(root)
    dates = {d.get("dateType"): text_of(d) for d in _all(root, "d:dates/d:date")}
    start, end = _span(dates.get("Collected"))
    sizes = _read_sizes(root)
    creators = [
        _read_name(c, "creator")
        for c in _all(root, "d:creators/d:creator")
        if _one(c, "d:creatorName") != UNAVAILABLE
    ]
    fields: dict[str, Any] = {
        "id": ds_id,
        "identifier": pid,
        "title": title,
        "description": _one(root, "d:descriptions/d:description"),
        "keywords": keywords,
        "subjects": subjects,
        "imaging_methods": methods,
        "organisms": organisms,
        "creators": creators,
        "contributors": [
            _read_name(c, "contributor") for c in _all(root, "d:contributors/d:contributor")
        ],
        "created": dates.get("Created"),
        "issued": dates.get("Issued"),
        "modified": dates.get("Updated"),
        "embargo_end": dates.get("Available"),
        "publisher": _one(root, "d:publisher"),
        "funding": [_read_funding(f) for f in _all(root, "d:fundingReferences/d:fundingReference")],
        "related_publications": [
            publication_value(text_of(r) or "")
            for r in _all(root, "d:relatedIdentifiers/d:relatedIdentifier")
            if r.get("relationType") == "IsReferencedBy"
        ],
        "version": _one(root, "d:version"),
        "formats": [text_of(f) for f in _all(root, "d:formats/d:format") if text_of(f)],
        "data_location": DataLocation(),
        "provenance": Provenance(origin_node=origin_node),
        "image_summary": ImageSummary(acquired_from=start, acquired_to=end),
        **sizes,
    }
    for rights in _all(root, "d:rightsList/d:rights"):
        if rights.get("rightsIdentifierScheme") == "SPDX" and rights.get("rightsIdentifier"):
            fields["license"] = resolve_license(rights.get("rightsIdentifier")).id
        elif rights.get("rightsURI") and (access := access_from_eu_repo(rights.get("rightsURI"))):
            fields["data_access"] = access
    return Dataset(**{k: v for k, v in fields.items() if v is not None})


def _read_subjects(root: Any) -> tuple[list[str], list[Term], list[Term], list[Term]]:
    keywords, subjects, methods, organisms = [], [], [], []
    for s in _all(root, "d:subjects/d:subject"):
        label = text_of(s)
        if not label:
            continue
        term = Term(label=label, iri=s.get("valueURI") or None)
        scheme = s.get("subjectScheme")
        if scheme == FBBI_SCHEME:
            methods.append(term)
        elif scheme == NCBITAXON_SCHEME:
            organisms.append(term)
        elif term.iri or scheme:
            subjects.append(term)
        else:
            keywords.append(label)
    return keywords, subjects, methods, organisms


def _read_name(item: Any, tag: str) -> Person:
    orcid = None
    for ident in _all(item, "d:nameIdentifier"):
        if (ident.get("nameIdentifierScheme") or "").upper() == "ORCID":
            orcid = text_of(ident)
    affiliation = None
    aff = item.find("d:affiliation", namespaces={"d": NS})
    if aff is not None:
        affiliation = aff.get("affiliationIdentifier") or text_of(aff)
    kind = item.get("contributorType")
    return Person(
        name=_one(item, f"d:{tag}Name") or "unnamed",
        orcid=orcid,
        affiliation=affiliation,
        role=kind if kind and kind != "Other" else None,
    )


def _read_funding(ref: Any) -> Funding:
    return Funding(
        funder=_one(ref, "d:funderName") or "unknown funder",
        funder_id=_one(ref, "d:funderIdentifier"),
        award=_one(ref, "d:awardNumber"),
    )


_SIZE_RE = re.compile(r"^(\d+) (bytes|files|images)$")
_SIZE_FIELDS = {"bytes": "total_size", "files": "file_count", "images": "image_count"}


def _read_sizes(root: Any) -> dict[str, int]:
    out = {}
    for size in _all(root, "d:sizes/d:size"):
        m = _SIZE_RE.match(text_of(size) or "")
        if m:
            out[_SIZE_FIELDS[m.group(2)]] = int(m.group(1))
    return out


def _span(value: str | None) -> tuple[str | None, str | None]:
    if not value or "/" not in value:
        return None, None
    start, _, end = value.partition("/")
    return start or None, end or None
