"""Persistent identifiers and the URLs they resolve at, shared by every profile.

A record's PID (``Dataset.identifier``) is an ARK (``ark:/99999/fk4...``, resolved by the node
at ``{base_url}/ark:/...``) or a DOI (``10.1234/abc``, resolved at ``https://doi.org/...``).
Related publications are DOIs or URLs; a DOI is always written in its bare form in records and
as a ``https://doi.org/`` IRI in RDF, so every profile reads it back the same way.
"""

from __future__ import annotations

import re
from enum import StrEnum
from urllib.parse import quote, unquote

DOI_RESOLVER = "https://doi.org/"

_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
# ARK: 'ark:/NAAN/name' (classic) or 'ark:NAAN/name' (ARK spec 2023); NAAN is 5+ digits/letters.
_ARK_RE = re.compile(r"^ark:/?[0-9a-z]{5,}/\S+$", re.I)
_DOI_PREFIX_RE = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)", re.I)


class PidKind(StrEnum):
    doi = "DOI"
    ark = "ARK"


def pid_kind(pid: str) -> PidKind:
    """DOI or ARK, or ValueError naming the value."""
    if _DOI_RE.match(pid):
        return PidKind.doi
    if _ARK_RE.match(pid):
        return PidKind.ark
    raise ValueError(
        f"{pid!r} is not a PID this node knows (expected a DOI '10.1234/abc' or an ARK "
        "'ark:/99999/fk4...')"
    )


def pid_url(pid: str, base_url: str) -> str:
    """Where ``pid`` resolves: https://doi.org/... for a DOI, the node's /ark:/... for an ARK."""
    if pid_kind(pid) is PidKind.doi:
        return DOI_RESOLVER + quote(pid, safe="/;:@&=+$,()")
    return f"{base_url}/{pid}"


def pid_from_url(url: str) -> str | None:
    """The PID a resolver URL stands for (doi.org → DOI, ``.../ark:/...`` → ARK), else None."""
    doi = bare_doi(url)
    if doi:
        return doi
    at = url.find("/ark:")
    if at >= 0:
        ark = unquote(url[at + 1 :])
        return ark if _ARK_RE.match(ark) else None
    return None


def bare_doi(value: str) -> str | None:
    """``10.1234/x`` from '10.1234/x', 'doi:10.1234/x' or a doi.org URL; None if not a DOI."""
    text = _DOI_PREFIX_RE.sub("", value.strip())
    if text != value.strip():
        text = unquote(text)
    return text if _DOI_RE.match(text) else None


def publication_iri(value: str) -> str:
    """The IRI of a related publication: a DOI becomes its https://doi.org/ IRI."""
    doi = bare_doi(value)
    return DOI_RESOLVER + quote(doi, safe="/;:@&=+$,()") if doi else value


def publication_value(iri: str) -> str:
    """Back from ``publication_iri``: doi.org IRIs give the bare DOI, other URLs stay."""
    return bare_doi(iri) or iri
