"""OAI-PMH 2.0 requests: the verbs, their arguments, dates, and the protocol's error conditions.

``parse_request`` checks a request's arguments the way the specification (section 3.6) asks:
a missing, repeated or unknown verb is ``badVerb``; a missing required, unknown, repeated or
illegal argument, or a resumptionToken with other arguments, is ``badArgument`` (every such
problem is reported, each in its own ``error`` element). What only the repository can judge
(an unknown identifier or format, an empty list, a stale token) is decided by the views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OAI_SCHEMA_LOCATION = f"{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_IDENTIFIER_NS = "http://www.openarchives.org/OAI/2.0/oai-identifier"
OAI_IDENTIFIER_SCHEMA_LOCATION = (
    f"{OAI_IDENTIFIER_NS} http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"
)
PROTOCOL_VERSION = "2.0"
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
DELETED_RECORD = "persistent"

# The error codes of section 3.6. noSetHierarchy is never sent: this repository has sets.
BAD_ARGUMENT = "badArgument"
BAD_RESUMPTION_TOKEN = "badResumptionToken"
BAD_VERB = "badVerb"
CANNOT_DISSEMINATE_FORMAT = "cannotDisseminateFormat"
ID_DOES_NOT_EXIST = "idDoesNotExist"
NO_RECORDS_MATCH = "noRecordsMatch"
NO_METADATA_FORMATS = "noMetadataFormats"
NO_SET_HIERARCHY = "noSetHierarchy"

# verb → (required arguments, optional arguments); ``resumptionToken`` is handled apart.
VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Identify": ((), ()),
    "ListMetadataFormats": ((), ("identifier",)),
    "ListSets": ((), ()),
    "GetRecord": (("identifier", "metadataPrefix"), ()),
    "ListIdentifiers": (("metadataPrefix",), ("from", "until", "set")),
    "ListRecords": (("metadataPrefix",), ("from", "until", "set")),
}
# Verbs whose lists may be split: they accept a resumptionToken, as their only argument.
RESUMABLE = frozenset({"ListSets", "ListIdentifiers", "ListRecords"})

# The lexical forms of the OAI-PMH XSD (metadataPrefixType, setSpecType).
_TOKEN_CHARS = r"[A-Za-z0-9\-_.!~*'()]"
PREFIX_RE = re.compile(rf"^{_TOKEN_CHARS}+$")
SET_SPEC_RE = re.compile(rf"^{_TOKEN_CHARS}+(?::{_TOKEN_CHARS}+)*$")
# RFC 2396 "uric" characters with well-formed escapes, and a URI scheme.
_URIC_RE = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,]|%[0-9A-Fa-f]{2})+$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECONDS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Characters XML 1.0 cannot carry at all; request values holding them are shown escaped.
NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class OAIError:
    """One ``error`` element: a code of section 3.6 and a message for people."""

    code: str
    message: str


class OAIErrors(Exception):
    """Raised by the views with the errors of a request; ``echo`` says whether the request
    element may repeat the arguments (not after badVerb or badArgument, section 3.2)."""

    def __init__(self, *errors: OAIError, echo: bool = True):
        super().__init__("; ".join(f"{e.code}: {e.message}" for e in errors))
        self.errors = list(errors)
        self.echo = echo


@dataclass(frozen=True)
class DateArg:
    """A ``from``/``until`` value: the instant it names and its granularity."""

    value: datetime
    day: bool  # YYYY-MM-DD (else YYYY-MM-DDThh:mm:ssZ)

    @property
    def start(self) -> datetime:
        """The first instant the value covers (``from`` is inclusive from here)."""
        return self.value

    @property
    def end(self) -> datetime:
        """The first instant after the value (``until`` is inclusive, so exclusive from here):
        the next day for a date, the next second for a date-time."""
        return self.value + (timedelta(days=1) if self.day else timedelta(seconds=1))


@dataclass
class OAIRequest:
    """A request whose arguments passed ``parse_request``."""

    verb: str
    args: dict[str, str] = field(default_factory=dict)
    from_: DateArg | None = None
    until: DateArg | None = None

    @property
    def token(self) -> str | None:
        return self.args.get("resumptionToken")


def xml_text(value: str, limit: int = 200) -> str:
    """``value`` shortened and with characters XML cannot hold escaped, for error messages."""
    short = value if len(value) <= limit else value[:limit] + "…"
    return NOT_XML_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", short)


def is_uri(value: str) -> bool:
    """Whether ``value`` is a URI or relative reference of "uric" characters, so it may be
    echoed as the request's identifier attribute (XSD type anyURI)."""
    if not _URIC_RE.match(value) or "//" in value:  # authorities: left out, not checked
        return False
    head = re.split(r"[/?#]", value, maxsplit=1)[0]
    return ":" not in head or bool(_SCHEME_RE.match(head.split(":", 1)[0]))


def parse_date(value: str) -> DateArg | None:
    """A ``from``/``until`` value in either granularity the protocol allows, or None."""
    try:
        if _DAY_RE.match(value):
            d = date.fromisoformat(value)
            return DateArg(datetime(d.year, d.month, d.day, tzinfo=UTC), day=True)
        if _SECONDS_RE.match(value):
            t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            return DateArg(t, day=False)
    except ValueError:
        return None
    return None


def datestamp(value: datetime) -> str:
    """A UTC datestamp at the repository's granularity (seconds): ``YYYY-MM-DDThh:mm:ssZ``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_request(args: MultiDict[str, str]) -> OAIRequest:
    """The checked request, or OAIErrors with every badVerb/badArgument problem found."""
    verbs = args.getlist("verb")
    if not verbs:
        raise OAIErrors(OAIError(BAD_VERB, "the verb argument is missing"), echo=False)
    if len(verbs) > 1:
        raise OAIErrors(
            OAIError(BAD_VERB, f"the verb argument is repeated ({len(verbs)} times)"), echo=False
        )
    verb = verbs[0]
    if verb not in VERBS:
        known = ", ".join(VERBS)
        raise OAIErrors(
            OAIError(BAD_VERB, f"'{xml_text(verb)}' is not an OAI-PMH verb ({known})"),
            echo=False,
        )
    required, optional = VERBS[verb]
    allowed = {*required, *optional}
    if verb in RESUMABLE:
        allowed.add("resumptionToken")
    problems: list[str] = []
    values: dict[str, str] = {}
    for name in args:
        if name == "verb":
            continue
        given = args.getlist(name)
        if name not in allowed:
            problems.append(f"'{xml_text(name)}' is not an argument of {verb}")
        elif len(given) > 1:
            problems.append(f"the {name} argument is repeated ({len(given)} times)")
        elif not given[0]:
            problems.append(f"the {name} argument is empty")
        else:
            values[name] = given[0]
    if verb in RESUMABLE and "resumptionToken" in args:
        others = sorted(n for n in args if n not in ("verb", "resumptionToken"))
        if others:
            problems.append(
                "resumptionToken is an exclusive argument: it cannot be combined with "
                + ", ".join(xml_text(n) for n in others)
            )
    else:
        problems.extend(
            f"the required argument {name} is missing"
            for name in required
            if name not in values and name not in args
        )
    req = OAIRequest(verb, values)
    if "metadataPrefix" in values and not PREFIX_RE.match(values["metadataPrefix"]):
        problems.append(
            f"metadataPrefix '{xml_text(values['metadataPrefix'])}' is not a metadata prefix"
        )
    if "set" in values and not SET_SPEC_RE.match(values["set"]):
        problems.append(f"set '{xml_text(values['set'])}' is not a setSpec")
    for name in ("from", "until"):
        if name in values:
            parsed = parse_date(values[name])
            if parsed is None:
                problems.append(
                    f"{name} '{xml_text(values[name])}' is not a UTC date (YYYY-MM-DD) or "
                    "date-time at seconds granularity (YYYY-MM-DDThh:mm:ssZ)"
                )
            elif name == "from":
                req.from_ = parsed
            else:
                req.until = parsed
    if req.from_ and req.until:
        if req.from_.day != req.until.day:
            problems.append("from and until must have the same granularity")
        elif req.from_.start > req.until.start:
            problems.append(f"from ({values['from']}) is later than until ({values['until']})")
    if problems:
        raise OAIErrors(*(OAIError(BAD_ARGUMENT, p) for p in problems), echo=False)
    return req
