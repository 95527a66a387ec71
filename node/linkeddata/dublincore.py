"""Simple Dublin Core as OAI-PMH ``oai_dc``, the format every OAI harvester reads, and back.

Fifteen unqualified elements hold little: names without ORCID, subjects without IRIs. Dates
and access follow the OpenAIRE conventions most DC harvesters understand: ``dc:date`` is the
issue date, ``info:eu-repo/date/embargoEnd/...`` the end of an embargo, and ``dc:rights`` holds
the licence IRI and an ``info:eu-repo/semantics/...Access`` term.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from node.ontologies import resolve_license
from node.records import DataLocation, Dataset, Person, Provenance

from .context import dataset_id_from_iri, dataset_iri
from .identifiers import pid_from_url, pid_url, publication_iri, publication_value
from .vocab import EU_REPO_ACCESS, EU_REPO_EMBARGO_PREFIX, access_from_eu_repo
from .xmlsafe import parse_xml, text_of

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DCMI_TYPE = "Dataset"

# The record fields oai_dc carries, read back unchanged by from_oai_dc. issued and
# embargo_end are dates (day precision). dc:subject holds the keywords and the labels of
# subjects, organisms and imaging methods; all of them read back as keywords.
DC_FIELDS: tuple[str, ...] = (
    "id",
    "identifier",
    "title",
    "description",
    "creators[].name",
    "contributors[].name",
    "publisher",
    "issued",
    "embargo_end",
    "formats",
    "license",
    "data_access",
    "related_publications",
)


def oai_dc_element(ds: Dataset, *, base_url: str) -> etree._Element:
    """The ``oai_dc:dc`` element of ``ds`` (to embed in an OAI-PMH ``metadata`` element)."""
    root = etree.Element(f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": DC, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", SCHEMA_LOCATION)

    def add(name: str, text: str) -> None:
        etree.SubElement(root, f"{{{DC}}}{name}").text = text

    add("title", ds.title)
    for p in ds.creators:
        add("creator", p.name)
    terms = (*ds.subjects, *ds.imaging_methods, *ds.organisms)
    for word in [*ds.keywords, *(t.label for t in terms)]:
        add("subject", word)
    if ds.description:
        add("description", ds.description)
    if ds.publisher:
        add("publisher", ds.publisher)
    for p in ds.contributors:
        add("contributor", p.name)
    if ds.issued:
        add("date", ds.issued.date().isoformat())
    if ds.embargo_end:
        add("date", EU_REPO_EMBARGO_PREFIX + ds.embargo_end.date().isoformat())
    add("type", DCMI_TYPE)
    for fmt in ds.formats:
        add("format", fmt)
    if ds.identifier:
        add("identifier", pid_url(ds.identifier, base_url))
    add("identifier", dataset_iri(base_url, ds.id))
    for pub in ds.related_publications:
        add("relation", publication_iri(pub))
    if ds.license:
        add("rights", resolve_license(ds.license).iri)
    add("rights", EU_REPO_ACCESS[ds.data_access])
    return root


def to_oai_dc(ds: Dataset, *, base_url: str) -> bytes:
    """``oai_dc_element`` as a standalone UTF-8 document."""
    return etree.tostring(
        oai_dc_element(ds, base_url=base_url),
        xml_declaration=True,
        encoding="UTF-8",
        pretty_print=True,
    )


def from_oai_dc(
    data: bytes | str | etree._Element, *, origin_node: str, dataset_id: str | None = None
) -> Dataset:
    """The Dataset of an ``oai_dc:dc`` document or element. Dublin Core names no origin node:
    ``origin_node`` says it. ``dataset_id`` is used when no dc:identifier holds a local id
    (a foreign repository's record)."""
    root = data if isinstance(data, etree._Element) else parse_xml(data, "oai_dc XML")
    if root.tag != f"{{{OAI_DC}}}dc":
        raise ValueError(f"oai_dc XML: root element is {root.tag!r}, expected {{{OAI_DC}}}dc")

    def values(name: str) -> list[str]:
        return [t for e in root.findall(f"{{{DC}}}{name}") if (t := text_of(e))]

    title = next(iter(values("title")), None)
    if not title:
        raise ValueError("oai_dc XML: no dc:title")
    identifiers = values("identifier")
    ds_id = next((i for u in identifiers if (i := dataset_id_from_iri(u))), None) or dataset_id
    if not ds_id:
        raise ValueError("oai_dc XML: no dc:identifier of the form .../datasets/{id}")
    fields: dict[str, Any] = {
        "id": ds_id,
        "identifier": next((p for u in identifiers if (p := pid_from_url(u))), None),
        "title": title,
        "description": next(iter(values("description")), None),
        "creators": [Person(name=n) for n in values("creator")],
        "contributors": [Person(name=n) for n in values("contributor")],
        "keywords": values("subject"),
        "publisher": next(iter(values("publisher")), None),
        "formats": values("format"),
        "related_publications": [publication_value(r) for r in values("relation")],
        "data_location": DataLocation(),
        "provenance": Provenance(origin_node=origin_node),
    }
    for value in values("date"):
        if value.startswith(EU_REPO_EMBARGO_PREFIX):
            fields["embargo_end"] = _day(value.removeprefix(EU_REPO_EMBARGO_PREFIX))
        else:
            fields["issued"] = _day(value)
    for value in values("rights"):
        access = access_from_eu_repo(value)
        if access is not None:
            fields["data_access"] = access
        elif "spdx.org/licenses/" in value or "creativecommons.org/" in value:
            fields["license"] = resolve_license(value).id
    return Dataset(**{k: v for k, v in fields.items() if v is not None})


def _day(value: str) -> datetime:
    """A W3CDTF date (or date-time) as an aware datetime; a year (YYYY) or a month (YYYY-MM),
    which W3CDTF allows and repositories send, is its first day."""
    text = value.strip()
    if len(text) in (4, 7):  # YYYY, YYYY-MM
        text += "-01-01" if len(text) == 4 else "-01"
    try:
        d = date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"oai_dc XML: dc:date {value!r} is not a W3CDTF date") from None
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
