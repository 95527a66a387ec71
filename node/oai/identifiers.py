"""OAI identifiers of dataset records: ``oai:{host of base_url}:{dataset id}``.

The form follows the OAI identifier guidelines (scheme ``oai``, the repository's domain name as
namespace identifier, ``:`` as delimiter). Dataset ids are percent-encoded where they hold a
character the guidelines do not allow in the local part (harvested ids are ``ds-`` and base32,
which never need it). The identifier of a record never changes: withdrawn records keep theirs.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

SCHEME = "oai"
DELIMITER = ":"
# The characters of the guidelines' local-identifier, besides letters and digits.
_LOCAL_SAFE = "-_.!~*'();/?:@&=+$,"
# The guidelines' repositoryIdentifier: a domain name (an IP address or "localhost" is not one;
# such a node still answers with these identifiers, but does not describe them in Identify).
DOMAIN_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+$")


def repository_identifier(base_url: str) -> str:
    """The namespace part of this node's identifiers: the host of ``base_url``, no port."""
    host = urlsplit(base_url).hostname
    if not host:
        raise ValueError(f"base_url {base_url!r} has no host")
    return host


def oai_identifier(base_url: str, dataset_id: str) -> str:
    return f"{SCHEME}:{repository_identifier(base_url)}:{quote(dataset_id, safe=_LOCAL_SAFE)}"


def dataset_id_of(base_url: str, identifier: str) -> str | None:
    """The dataset id an identifier of this node names, or None for any other identifier."""
    prefix = f"{SCHEME}:{repository_identifier(base_url)}:"
    if not identifier.startswith(prefix) or len(identifier) == len(prefix):
        return None
    return unquote(identifier[len(prefix) :])


def describes_itself(base_url: str) -> bool:
    """Whether the host is a domain name, so Identify may carry an ``oai-identifier``
    description (its XSD requires one)."""
    return bool(DOMAIN_RE.match(repository_identifier(base_url)))
