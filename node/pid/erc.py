"""The ``?info`` answer: an ERC record (Kernel metadata, ANVL syntax) with a commitment statement.

The ARK specification (draft-kunze-ark) has an ARK followed by ``?info`` return "a metadata record
and a commitment statement that is both human- and machine-readable"; older revisions used ``?``
(brief record) and ``??`` (record and commitment). The record is an ERC in ANVL ("Kernel Metadata
and Electronic Resource Citations"): ``erc:`` then the four kernel elements who, what, when,
where, one ``label: value`` per line, ``(:unav)`` for a value nobody knows, a blank line at the
end. Further elements follow the kernel: the publisher, the landing page (``target``), the
record's status, a withdrawal's reason and the node's persistence commitment.
"""

from __future__ import annotations

from node.records import Dataset, Lifecycle

UNAVAILABLE = "(:unav)"
TEST_NAAN = "99999"


def _value(text: str | None) -> str:
    """One ANVL value on one line: whitespace (line breaks included) collapsed."""
    cleaned = " ".join((text or "").split())
    return cleaned or UNAVAILABLE


def commitment(naan: str, node_name: str) -> str:
    """The persistence statement of ARKs under ``naan`` served by ``node_name``."""
    if naan == TEST_NAAN:
        return (
            "none: NAAN 99999 is reserved for testing, so this ARK may stop resolving at any "
            "time; do not cite it"
        )
    return (
        f"{node_name} keeps this ARK resolving to the dataset's landing page, or to a tombstone "
        "keeping its citation if the dataset is withdrawn; the name is never reassigned"
    )


def erc_record(
    ds: Dataset, *, pid: str, pid_url: str, target: str, naan: str, node_name: str
) -> str:
    """The ERC/ANVL text of ``ds`` for the ``?info`` inflection of ``pid``."""
    who = "; ".join(_value(p.name) for p in ds.creators) if ds.creators else UNAVAILABLE
    when = ds.issued or ds.created
    lines = [
        ("erc", ""),
        ("who", who),
        ("what", _value(ds.title)),
        ("when", when.date().isoformat() if when else UNAVAILABLE),
        ("where", pid_url),
        ("id", pid),
        ("publisher", _value(ds.publisher or node_name)),
        ("target", target),
        ("status", ds.lifecycle.value),
    ]
    if ds.lifecycle is Lifecycle.withdrawn:
        lines.append(("withdrawn-reason", _value(ds.withdrawn_reason)))
    lines.append(("persistence", commitment(naan, node_name)))
    return "".join(f"{k}: {v}\n" if v else f"{k}:\n" for k, v in lines) + "\n"
