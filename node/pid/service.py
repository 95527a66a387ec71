"""PidService: mints a dataset's PID in the caller's transaction, and looks PIDs up.

Every PID ever minted is a row of the ``pids`` table (never deleted), so a name is never given
twice: random candidates are checked against that table (and against the identifiers records
already carry) before one is taken, and the table's primary key turns the rare race between two
processes into a failed transaction rather than a duplicate. A dataset that already had a PID of
the configured scheme gets that one back (a re-harvest, or a dataset removed and found again),
so one dataset never collects a second PID.

``scheme = "ark"`` mints locally (node/pid/ark.py). ``scheme = "datacite"`` mints a DOI
``{prefix}/{shoulder}{blade}{check}`` and registers it with DataCite before returning; a DOI
DataCite refuses as taken is dropped and another drawn. Registration happens inside the caller's
transaction: if that transaction then fails, the DOI exists at DataCite but not here (DataCite
DOIs cannot be deleted); publishing again mints a new one. See docs/identifiers.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from node.catalog.models import DatasetRow, PidRow
from node.config import Config
from node.pid import ark
from node.pid.errors import DataCiteRejectedError, PidError
from node.records import Dataset

if TYPE_CHECKING:
    from node.pid.datacite_client import DataCiteClient

log = logging.getLogger(__name__)

CANDIDATES_PER_ROUND = 16
ROUNDS = 64  # 1024 random names looked at before a shoulder is called full
DOI_ATTEMPTS = 3  # DOIs DataCite calls taken before giving up

ACTIVE = "active"
WITHDRAWN = "withdrawn"


class PidService:
    """Mints and finds the node's persistent identifiers."""

    def __init__(
        self,
        config: Config,
        engine: Engine | None = None,
        *,
        datacite: DataCiteClient | None = None,
    ):
        self.config = config
        self.settings = config.pid
        self.engine = engine
        self._datacite = datacite

    @property
    def scheme(self) -> str:
        return self.settings.scheme

    # ------------------------------------------------------------------ minting

    def mint(self, s: Session, ds: Dataset) -> str:
        """The PID of ``ds``: its earlier one of this scheme, else a new one (row in ``pids``,
        in the caller's transaction ``s``). PidError when none can be had."""
        earlier = s.scalar(
            select(PidRow.pid)
            .where(PidRow.dataset_id == ds.id, PidRow.scheme == self.scheme)
            .order_by(PidRow.minted_at)
            .limit(1)
        )
        if earlier is not None:
            return earlier
        if self.scheme == "datacite":
            return self._mint_doi(s, ds)
        return self._mint_ark(s, ds)

    def _mint_ark(self, s: Session, ds: Dataset) -> str:
        p = self.settings
        self._refuse_if_full(s, f"{ark.LABEL}{p.naan}/{p.shoulder}", p.blade_length)
        for _ in range(ROUNDS):
            candidates = list(
                dict.fromkeys(
                    ark.mint_candidate(p.naan, p.shoulder, p.blade_length)
                    for _ in range(CANDIDATES_PER_ROUND)
                )
            )
            free = [c for c in candidates if c not in self._taken(s, candidates)]
            if free:
                return self._record(s, free[0], ds.id)
        raise PidError(
            f"no free ARK under {ark.LABEL}{p.naan}/{p.shoulder} after "
            f"{ROUNDS * CANDIDATES_PER_ROUND} random names: the shoulder is (nearly) full at "
            f"blade_length {p.blade_length}; raise [pid] blade_length"
        )

    def _mint_doi(self, s: Session, ds: Dataset) -> str:
        from node.linkeddata.context import NodeInfo, dataset_iri
        from node.linkeddata.datacite import to_datacite_xml

        p = self.settings
        client = self.datacite_client()
        base_url = self.config.node.base_url
        landing = dataset_iri(base_url, ds.id)
        for _ in range(DOI_ATTEMPTS):
            doi = self._free_doi(s)
            row = PidRow(
                pid=doi,
                dataset_id=ds.id,
                minted_at=datetime.now(UTC),
                scheme=self.scheme,
                status=ACTIVE,
            )
            s.add(row)
            s.flush()  # the name is ours in this transaction before DataCite hears of it
            xml = to_datacite_xml(
                ds.model_copy(update={"identifier": doi}),
                base_url=base_url,
                node=NodeInfo.from_config(self.config),
            )
            try:
                return client.register(doi, url=landing, xml=xml)
            except DataCiteRejectedError as e:
                s.delete(row)
                s.flush()
                if not e.taken:
                    raise
                log.warning("DataCite: %s is taken elsewhere; drawing another suffix", doi)
            except BaseException:
                s.delete(row)
                s.flush()
                raise
        raise PidError(
            f"DataCite called {DOI_ATTEMPTS} new DOIs under {p.datacite_prefix}/{p.shoulder} "
            "taken in a row; check that no other system mints on that shoulder"
        )

    def _free_doi(self, s: Session) -> str:
        p = self.settings
        for _ in range(ROUNDS):
            names = [
                p.shoulder + ark.random_blade(p.blade_length) for _ in range(CANDIDATES_PER_ROUND)
            ]
            candidates = list(
                dict.fromkeys(
                    f"{p.datacite_prefix}/{ark.with_check(p.datacite_prefix, name)}"
                    for name in names
                )
            )
            free = [c for c in candidates if c not in self._taken(s, candidates)]
            if free:
                return free[0]
        raise PidError(
            f"no free DOI under {p.datacite_prefix}/{p.shoulder}; raise [pid] blade_length"
        )

    def datacite_client(self) -> DataCiteClient:
        """The DataCite client (made on first use, from the environment's credentials)."""
        if self._datacite is None:
            from node.pid.datacite_client import DataCiteClient

            self._datacite = DataCiteClient.from_env(self.settings.datacite_url)
        return self._datacite

    @staticmethod
    def _taken(s: Session, candidates: list[str]) -> set[str]:
        taken = set(s.scalars(select(PidRow.pid).where(PidRow.pid.in_(candidates))))
        taken |= set(
            s.scalars(select(DatasetRow.identifier).where(DatasetRow.identifier.in_(candidates)))
        )
        return taken

    @staticmethod
    def _refuse_if_full(s: Session, prefix: str, blade_length: int) -> None:
        """A shoulder whose every name is taken is refused at once (small blades only)."""
        capacity = ark.RADIX**blade_length
        if capacity > 100_000:
            return
        length = len(prefix) + blade_length + 1
        used = s.scalar(
            select(func.count())
            .select_from(PidRow)
            .where(PidRow.pid.startswith(prefix, autoescape=True))
            .where(func.length(PidRow.pid) == length)
        )
        if (used or 0) >= capacity:
            raise PidError(
                f"every one of the {capacity} ARKs under {prefix} with blade_length "
                f"{blade_length} is taken; raise [pid] blade_length"
            )

    def _record(self, s: Session, pid: str, dataset_id: str) -> str:
        s.add(
            PidRow(
                pid=pid,
                dataset_id=dataset_id,
                minted_at=datetime.now(UTC),
                scheme=self.scheme,
                status=ACTIVE,
            )
        )
        s.flush()
        return pid

    # ------------------------------------------------------------------ status and lookup

    @staticmethod
    def set_status(s: Session, pid: str | None, status: str) -> None:
        """Mark ``pid`` active or withdrawn (its row stays either way: names are never reused)."""
        if not pid:
            return
        row = s.get(PidRow, pid)
        if row is not None:
            row.status = status

    def lookup(self, pid: str) -> str | None:
        """The id of the dataset ``pid`` names (ARKs are normalised first), or None."""
        if self.engine is None:
            raise RuntimeError("PidService.lookup needs an engine")
        with Session(self.engine) as s:
            return lookup_in(s, pid)


def lookup_in(s: Session, pid: str) -> str | None:
    """``PidService.lookup`` in an open session."""
    key = pid.strip()
    try:
        key = ark.normalise(key)
    except ValueError:
        key = key.lower() if key.startswith("10.") else key  # DOIs are case-insensitive
    found = s.scalar(select(PidRow.dataset_id).where(PidRow.pid == key))
    if found is None:
        found = s.scalar(select(DatasetRow.id).where(DatasetRow.identifier == key))
    return found
