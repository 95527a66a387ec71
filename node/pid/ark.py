"""ARKs: the NOID check character, validation, normalisation and random names. Pure functions.

An ARK minted by the node is ``ark:/{naan}/{shoulder}{blade}{check}``:

- ``naan``: the Name Assigning Authority Number (5 digits; 99999 is the test NAAN);
- ``shoulder``: a primordinal shoulder, betanumeric letters then one digit (``fk4``);
- ``blade``: random betanumeric characters (``secrets``), never reused (node/pid/service.py);
- ``check``: the NOID check character over the whole check zone ``{naan}/{shoulder}{blade}``.

The check character follows the Noid Check Digit Algorithm (NCDA) of John Kunze's NOID
(https://metacpan.org/dist/Noid/view/noid#NOID-CHECK-DIGIT-ALGORITHM): each character of the
check zone has an ordinal, its index in the "betanumeric" repertoire
``0123456789bcdfghjkmnpqrstvwxz`` (any other character, ``/`` included, counts 0); the ordinals
are multiplied by their 1-based position and summed, and the sum modulo 29 (the prime size of
the repertoire) indexes the check character. EZID's minter computes it the same way over
``{naan}/{shoulder}{blade}`` (CDLUC3/ezid impl/nog/minter.py ``_get_check_char``). The NOID
documentation's worked example ``13030/xf93gt2`` gives ``q``; tests/pid/test_ark.py checks that
and other published ARKs.

Normalisation follows the ARK specification (draft-kunze-ark, "Normalization and Lexical
Equivalence"): the label ``ark:``/``ark:/`` is case-insensitive, the NAAN is compared in lower
case, hyphens are identity-inert and removed, initial and final structural characters (``/``
and ``.``) are dropped and a run of them collapses to its first; everything else, the name
included, is case-sensitive.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

BETANUMERIC = "0123456789bcdfghjkmnpqrstvwxz"
RADIX = len(BETANUMERIC)  # 29, a prime
_ORDINAL = {c: i for i, c in enumerate(BETANUMERIC)}
LABEL = "ark:/"  # the (classic) label the node writes its ARKs with

_LABEL_RE = re.compile(r"^ark:/?", re.IGNORECASE)
_STRUCTURAL_RUN = re.compile(r"([/.])[/.]+")


def check_char(zone: str) -> str:
    """The NOID check character of ``zone`` (e.g. ``13030/xf93gt2`` → ``q``)."""
    total = sum(pos * _ORDINAL.get(c, 0) for pos, c in enumerate(zone, start=1))
    return BETANUMERIC[total % RADIX]


def is_betanumeric(text: str) -> bool:
    return bool(text) and all(c in _ORDINAL for c in text)


def random_blade(length: int) -> str:
    """``length`` betanumeric characters from the operating system's CSPRNG."""
    if length < 1:
        raise ValueError(f"a blade needs at least one character, not {length}")
    return "".join(secrets.choice(BETANUMERIC) for _ in range(length))


def mint_candidate(naan: str, shoulder: str, blade_length: int) -> str:
    """A random ARK ``ark:/{naan}/{shoulder}{blade}{check}``; the caller checks it is free."""
    zone = f"{naan}/{shoulder}{random_blade(blade_length)}"
    return f"{LABEL}{zone}{check_char(zone)}"


def with_check(prefix: str, name: str) -> str:
    """``name`` followed by the check character of ``{prefix}/{name}`` (also for DOI suffixes)."""
    return name + check_char(f"{prefix}/{name}")


@dataclass(frozen=True)
class ArkParts:
    """A normalised ARK: NAAN, base name (shoulder + blade + check) and any qualifier."""

    naan: str
    name: str
    qualifier: str = ""

    @property
    def base(self) -> str:
        """The ARK of the whole object, as the node writes it: ``ark:/{naan}/{name}``."""
        return f"{LABEL}{self.naan}/{self.name}"

    @property
    def check_ok(self) -> bool:
        """Whether the name ends in the NOID check character of its check zone."""
        zone = f"{self.naan}/{self.name[:-1]}"
        return len(self.name) > 1 and check_char(zone) == self.name[-1]


def normalise_parts(naan: str, rest: str) -> ArkParts:
    """Normalise a NAAN and what follows it (``name[/qualifier][.variant]``) per the ARK spec."""
    naan = naan.replace("-", "").lower()
    rest = rest.replace("-", "")
    rest = _STRUCTURAL_RUN.sub(r"\1", rest).strip("/.")
    cut = min((i for i in (rest.find("/"), rest.find(".")) if i >= 0), default=len(rest))
    return ArkParts(naan=naan, name=rest[:cut], qualifier=rest[cut:])


def parse(text: str) -> ArkParts:
    """Parse and normalise an ARK (``ark:/99999/fk4…``, ``ark:99999/fk4…``, or a URL holding one);
    ValueError when ``text`` is not an ARK."""
    at = text.lower().find("ark:")
    if at < 0:
        raise ValueError(f"{text!r} is not an ARK (no 'ark:' label)")
    core = _LABEL_RE.sub("", text[at:].strip(), count=1)
    naan, sep, rest = core.partition("/")
    parts = normalise_parts(naan, rest) if sep else None
    if parts is None or not parts.naan or not parts.name:
        raise ValueError(f"{text!r} is not an ARK (expected ark:/NAAN/name)")
    return parts


def normalise(text: str) -> str:
    """The normalised form of an ARK, as stored and compared: ``ark:/{naan}/{name}{qualifier}``."""
    p = parse(text)
    return p.base + p.qualifier


def is_valid(text: str, *, naan: str | None = None, shoulder: str | None = None) -> bool:
    """Whether ``text`` is an ARK of the node's layout: betanumeric name with a correct check
    character, and (when given) the expected NAAN and shoulder."""
    try:
        p = parse(text)
    except ValueError:
        return False
    if p.qualifier or not is_betanumeric(p.name) or not p.check_ok:
        return False
    if naan is not None and p.naan != naan:
        return False
    return shoulder is None or p.name.startswith(shoulder)
