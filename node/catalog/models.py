"""Database tables of the catalog.

Records are stored whole as JSON (``doc``) beside the few columns that queries
filter, sort or join on; the JSON is the canonical record, the columns are
derived from it on every write (``RecordService``), never edited alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the catalog; use UTC")
        return (
            value.astimezone(UTC)
            if dialect.name != "sqlite"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(64), index=True)
    folder: Mapped[str | None] = mapped_column(Text)
    identifier: Mapped[str | None] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(Text)
    lifecycle: Mapped[str] = mapped_column(String(16), index=True)
    visibility: Mapped[str] = mapped_column(String(16), index=True)
    data_access: Mapped[str] = mapped_column(String(16))
    origin_node: Mapped[str] = mapped_column(String(64), index=True)
    modified: Mapped[datetime] = mapped_column(UTCDateTime())
    dirty: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    doc: Mapped[dict] = mapped_column(JsonDoc)

    # OAI-PMH lists and /catalog page by the key (modified, id): one index walk per page.
    # It also serves every query on `modified` alone (0004 dropped the single-column index).
    __table_args__ = (Index("ix_datasets_modified_id", "modified", "id"),)


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)  # the fileset's main file
    series: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    thumb_state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    doc: Mapped[dict] = mapped_column(JsonDoc)

    __table_args__ = (Index("ix_images_source_path", "source", "path"),)


class FileRow(Base):
    """What the walker last saw of one file: the basis of incremental harvests."""

    __tablename__ = "files"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    dir: Mapped[str] = mapped_column(Text, primary_key=True)  # "" for the source root
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    fileset: Mapped[str | None] = mapped_column(
        Text
    )  # main file of its fileset; None: not an image
    dataset_id: Mapped[str | None] = mapped_column(String(64))


class HarvestRunRow(Base):
    __tablename__ = "harvest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="files")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # running, completed, failed, interrupted
    counts: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    message: Mapped[str | None] = mapped_column(Text)


class HarvestErrorRow(Base):
    __tablename__ = "harvest_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16), default="error")


class SourceLockRow(Base):
    """A lease that keeps two runs of one source from overlapping, across processes and hosts."""

    __tablename__ = "source_locks"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SearchQueueRow(Base):
    """Datasets whose search document is stale: written in the same transaction as the record,
    so the index can never miss a change the catalog committed (drained by node.search.indexer).
    """

    __tablename__ = "search_queue"

    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class PidRow(Base):
    """Every persistent identifier the node ever minted: the reason one is never minted twice.

    Rows are never deleted, so a PID whose dataset is gone still blocks its name (node/pid/).
    """

    __tablename__ = "pids"

    pid: Mapped[str] = mapped_column(String(255), primary_key=True)  # ark:/99999/fk4… or 10.…
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    minted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scheme: Mapped[str] = mapped_column(String(16))  # "ark" or "datacite"
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, withdrawn


class PeerRow(Base):
    """A peer added with `fairnode peers add` (peers from [[federation.peers]] are not stored:
    the config file is their source; an id may not be in both)."""

    __tablename__ = "peers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    protocol: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[str] = mapped_column(String(64), default="")
    metadata_prefix: Mapped[str] = mapped_column(String(64), default="")
    set_spec: Mapped[str] = mapped_column(Text, default="")
    token_env: Mapped[str] = mapped_column(String(64), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PeerStateRow(Base):
    """What the node knows of harvesting one peer: where the next incremental run starts, the
    last success and the last error (the admin page and GET /api/v1/peers show it)."""

    __tablename__ = "peer_state"

    peer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # the peer's clock at the start of the last successful run: the next run's `from`
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_counts: Mapped[dict] = mapped_column(JsonDoc, default=dict)


class FederatedRecordRow(Base):
    """Which catalog record a peer's record became: a deletion names the record only by the
    peer's identifier (an OAI header has no metadata), so the mapping is kept."""

    __tablename__ = "federated_records"

    peer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    datestamp: Mapped[datetime] = mapped_column(UTCDateTime())


class FederationNodeRow(Base):
    """A node of the federation this node has heard of, from a peer's descriptor (its own, or
    one it lists): its place (level, parents, country) decides the search scopes."""

    __tablename__ = "federation_nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    parents: Mapped[list] = mapped_column(JsonDoc, default=list)
    ror: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    learnt_from: Mapped[str] = mapped_column(String(64))  # the peer whose descriptor said so
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
