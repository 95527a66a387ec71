"""The one canonical record: datasets, images and their parts (DESIGN §3).

Harvesters and federation produce these; the catalog stores them; every other
representation (REST JSON, search documents, RDF, OAI-PMH, DataCite) is derived
from them by one mapping each. This module imports nothing else from ``node``.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AXES = ("x", "y", "z")


class Lifecycle(StrEnum):
    """Where a dataset stands: drafts are for curators, withdrawn ones keep a tombstone."""

    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"


class Visibility(StrEnum):
    """Who may see the *metadata* of a record."""

    public = "public"
    federation = "federation"  # signed-in users and authenticated peer nodes
    institution = "institution"  # this node's own users; never leaves the node
    private = "private"  # owners and curators


class DataAccess(StrEnum):
    """Who may get the *data* (FAIR A2: metadata can be public while data is closed)."""

    open = "open"
    embargoed = "embargoed"
    restricted = "restricted"
    closed = "closed"


class ReadStatus(StrEnum):
    """How far reading an image got."""

    ok = "ok"  # metadata and pixels readable
    metadata_only = "metadata_only"  # metadata read, pixels missing or unreadable
    failed = "failed"  # nothing usable; ``error`` says why


class Level(StrEnum):
    """A node's place in the federation."""

    institute = "institute"
    university = "university"
    national = "national"
    international = "international"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, use_enum_values=False)


# --------------------------------------------------------------------------- people and terms

_ORCID_RE = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_ROR_RE = re.compile(r"^(?:https?://ror\.org/)?(0[a-hj-km-np-tv-z0-9]{6}\d{2})$")


def orcid_checksum_ok(orcid: str) -> bool:
    """ISO 7064 11,2 check of a bare ORCID iD (``0000-0002-1825-0097``)."""
    digits = orcid.replace("-", "")
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    return digits[-1] == expected


# Records repeat their people: a harvest validates the same iDs again and again. Both functions
# are pure (a bad value raises, and exceptions are not cached).
@functools.lru_cache(maxsize=65536)
def normalise_orcid(value: str) -> str:
    """Return the bare ORCID iD, or raise ValueError naming the bad value."""
    m = _ORCID_RE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not an ORCID iD (expected 0000-0000-0000-000X)")
    bare = m.group(1)
    if not orcid_checksum_ok(bare):
        raise ValueError(f"{value!r} fails the ORCID check digit")
    return bare


@functools.lru_cache(maxsize=65536)
def normalise_ror(value: str) -> str:
    """Return the ROR IRI ``https://ror.org/0xxxxxxNN``, or raise ValueError."""
    m = _ROR_RE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a ROR identifier (expected https://ror.org/0xxxxxxNN)")
    return f"https://ror.org/{m.group(1)}"


class Term(_Model):
    """A value from a controlled vocabulary: the IRI when known, always a label."""

    label: str = Field(min_length=1)
    iri: str | None = None


class Person(_Model):
    """A creator or contributor."""

    name: str = Field(min_length=1)
    orcid: str | None = None
    affiliation: str | None = None  # ROR IRI when it is one, else a free-text name
    role: str | None = None

    @field_validator("orcid")
    @classmethod
    def _orcid(cls, v: str | None) -> str | None:
        return normalise_orcid(v) if v else None

    @field_validator("affiliation")
    @classmethod
    def _affiliation(cls, v: str | None) -> str | None:
        if not v:
            return None
        v = v.strip()
        if "ror.org" in v or _ROR_RE.match(v):
            return normalise_ror(v)
        return v

    @property
    def orcid_iri(self) -> str | None:
        return f"https://orcid.org/{self.orcid}" if self.orcid else None


class Funding(_Model):
    funder: str
    funder_id: str | None = None  # ROR or Crossref Funder IRI
    award: str | None = None


def as_utc(v: datetime | None) -> datetime | None:
    """Datetimes in records are aware; a file's zone-less time is taken as UTC (OME says so)."""
    if v is None:
        return None
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


# --------------------------------------------------------------------------- image parts


class Size5D(_Model):
    x: int = Field(ge=1)
    y: int = Field(ge=1)
    z: int = Field(default=1, ge=1)
    c: int = Field(default=1, ge=1)
    t: int = Field(default=1, ge=1)


class PhysicalSize(_Model):
    """One axis' pixel size: the trusted µm value, and where it came from.

    ``value_um`` is None when the size is unknown *or* suspicious; the original
    value and unit are kept either way so that a curator can judge.
    """

    value_um: float | None = None
    original_value: float | None = None
    original_unit: str | None = None
    source: str | None = None  # "ome-xml", "imagej", "tiff-resolution", "ome-zarr", "bioio"
    suspicious: str | None = None  # why the value is not trusted


class Channel(_Model):
    name: str | None = None  # only a real name: synthetic ids such as Channel:0:0 are dropped
    fluor: str | None = None
    excitation_nm: float | None = None
    emission_nm: float | None = None
    acquisition_mode: str | None = None
    contrast_method: str | None = None
    illumination: str | None = None
    color: str | None = None  # "#rrggbb"


class Objective(_Model):
    model: str | None = None
    manufacturer: str | None = None
    magnification: float | None = None
    na: float | None = None
    immersion: str | None = None


class Instrument(_Model):
    """A microscope or detector."""

    manufacturer: str | None = None
    model: str | None = None
    type: str | None = None


class Image(_Model):
    """One scene/series of one fileset, as read from the files."""

    id: str
    dataset_id: str | None = None
    name: str | None = None
    path: str  # the fileset's main file, relative to the source root (POSIX separators)
    files: list[str] = Field(default_factory=list)  # every member of the fileset, relative
    series: int = Field(default=0, ge=0)
    format: str  # "OME-TIFF", "TIFF", "OME-Zarr", "OME-XML", "CZI", "ND2", "LIF", "DV", ...
    media_type: str | None = None
    file_size: int | None = Field(default=None, ge=0)  # bytes of all files of the fileset
    size: Size5D | None = None
    dimension_order: str | None = None  # e.g. "XYZCT"
    pixel_type: str | None = None  # OME names: uint8, uint16, int8, float, ...
    physical_size: dict[str, PhysicalSize] = Field(default_factory=dict)  # keys x, y, z
    time_increment_s: float | None = None
    channels: list[Channel] = Field(default_factory=list)
    objective: Objective | None = None
    microscope: Instrument | None = None
    detectors: list[Instrument] = Field(default_factory=list)
    acquired_at: datetime | None = None
    plate: str | None = None
    well: str | None = None  # "A01"
    key_values: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    pyramid_levels: int = Field(default=1, ge=1)
    thumbnail: str | None = None  # file name inside the node's thumbnail folder
    status: ReadStatus = ReadStatus.ok
    error: str | None = None
    notes: list[str] = Field(default_factory=list)  # data-quality remarks (repaired ids, ...)

    @field_validator("acquired_at")
    @classmethod
    def _acquired_utc(cls, v: datetime | None) -> datetime | None:
        return as_utc(v)

    @model_validator(mode="after")
    def _failed_has_reason(self) -> Image:
        if self.status is ReadStatus.failed and not self.error:
            raise ValueError("an image with status 'failed' must say why in 'error'")
        return self

    @property
    def physical_size_um(self) -> dict[str, float | None]:
        """The trusted µm sizes per axis (None where unknown or suspicious)."""
        return {
            a: (self.physical_size[a].value_um if a in self.physical_size else None) for a in AXES
        }


# --------------------------------------------------------------------------- dataset


class Provenance(_Model):
    origin_node: str  # the node id where the record was born
    source: str | None = None  # harvest source name on the origin node
    harvested_via: list[str] = Field(default_factory=list)  # node ids it came through
    source_record_url: str | None = None
    first_seen: datetime | None = None
    last_harvested: datetime | None = None


class DataLocation(_Model):
    path: str | None = None  # folder relative to the source root
    url: str | None = None  # OMERO, download or landing URL


def utcnow() -> datetime:
    return datetime.now(UTC)


NonEmptyStr = Annotated[str, Field(min_length=1)]


class ImageSummary(_Model):
    """What a dataset's images hold, summed up on the dataset so that search, facets and the
    linked-data profiles read one record instead of every image (computed by aggregate_images)."""

    channel_names: list[str] = Field(default_factory=list)
    fluors: list[str] = Field(default_factory=list)
    magnifications: list[float] = Field(default_factory=list)  # objective magnifications
    max_channels: int = Field(default=0, ge=0)
    has_z: bool = False  # an image with more than one Z plane
    has_t: bool = False  # an image with more than one time point
    acquired_from: datetime | None = None
    acquired_to: datetime | None = None

    @field_validator("acquired_from", "acquired_to")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return as_utc(v)


class Dataset(_Model):
    """The unit of publication and citation."""

    id: str
    identifier: str | None = None  # the PID (ARK or DOI) once published
    title: NonEmptyStr
    description: str | None = None
    creators: list[Person] = Field(default_factory=list)
    contributors: list[Person] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    subjects: list[Term] = Field(default_factory=list)
    organisms: list[Term] = Field(default_factory=list)
    imaging_methods: list[Term] = Field(default_factory=list)
    sample: str | None = None
    instruments: list[str] = Field(default_factory=list)
    license: str | None = None  # SPDX id
    created: datetime | None = None
    modified: datetime = Field(default_factory=utcnow)
    issued: datetime | None = None
    embargo_end: datetime | None = None
    publisher: str | None = None
    funding: list[Funding] = Field(default_factory=list)
    related_publications: list[str] = Field(default_factory=list)  # DOIs or URLs
    version: str | None = None
    data_location: DataLocation = Field(default_factory=DataLocation)
    total_size: int = Field(default=0, ge=0)
    file_count: int = Field(default=0, ge=0)
    image_count: int = Field(default=0, ge=0)
    formats: list[str] = Field(default_factory=list)
    visibility: Visibility = Visibility.public
    data_access: DataAccess = DataAccess.restricted
    access_contact: str | None = None
    lifecycle: Lifecycle = Lifecycle.draft
    withdrawn_reason: str | None = None
    key_values: dict[str, str] = Field(default_factory=dict)
    provenance: Provenance
    thumbnail: str | None = None
    image_summary: ImageSummary = Field(default_factory=ImageSummary)

    @field_validator("created", "modified", "issued", "embargo_end")
    @classmethod
    def _dates_utc(cls, v: datetime | None) -> datetime | None:
        return as_utc(v)

    @property
    def license_iri(self) -> str | None:
        return f"https://spdx.org/licenses/{self.license}" if self.license else None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def aggregate_images(dataset: Dataset, images: list[Image]) -> Dataset:
    """Return ``dataset`` with its totals, formats and instruments computed from ``images``."""
    files: set[str] = set()
    total = 0
    formats: list[str] = []
    instruments: list[str] = []
    sized: set[str] = set()
    thumb = None
    for im in images:
        for f in im.files or [im.path]:
            files.add(f)
        if im.path not in sized and im.file_size:
            sized.add(im.path)
            total += im.file_size
        if im.format not in formats:
            formats.append(im.format)
        if im.microscope and (im.microscope.model or im.microscope.manufacturer):
            label = " ".join(p for p in (im.microscope.manufacturer, im.microscope.model) if p)
            if label not in instruments:
                instruments.append(label)
        if thumb is None and im.thumbnail:
            thumb = im.thumbnail
    return dataset.model_copy(
        update={
            "file_count": len(files),
            "total_size": total,
            "image_count": len(images),
            "formats": sorted(formats),
            "instruments": sorted(set(dataset.instruments) | set(instruments)),
            "thumbnail": thumb,
            "image_summary": summarise_images(images),
        }
    )


def _add(values: list, value: object) -> None:
    if value is not None and value != "" and value not in values:
        values.append(value)


def summarise_images(images: list[Image]) -> ImageSummary:
    """The ImageSummary of ``images``: channels, fluors, objectives, dimensions, dates."""
    names: list[str] = []
    fluors: list[str] = []
    mags: list[float] = []
    max_c = 0
    has_z = has_t = False
    dates: list[datetime] = []
    for im in images:
        for ch in im.channels:
            _add(names, ch.name)
            _add(fluors, ch.fluor)
        if im.objective is not None:
            _add(mags, im.objective.magnification)
        if im.size is not None:
            max_c = max(max_c, im.size.c)
            has_z = has_z or im.size.z > 1
            has_t = has_t or im.size.t > 1
        max_c = max(max_c, len(im.channels))
        if im.acquired_at is not None:
            dates.append(im.acquired_at)
    return ImageSummary(
        channel_names=names,
        fluors=fluors,
        magnifications=sorted(mags),
        max_channels=max_c,
        has_z=has_z,
        has_t=has_t,
        acquired_from=min(dates) if dates else None,
        acquired_to=max(dates) if dates else None,
    )
