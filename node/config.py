"""Node configuration: every setting declared once, with its default and help.

The declarations are the dataclasses below; each field's ``metadata`` carries
the help text (and choices). ``load_config`` reads one TOML file, applies
``FAIRNODE_<SECTION>_<KEY>`` environment overrides, and collects *every*
problem (file, key, why) instead of stopping at the first, so that
``fairnode check-config`` can explain them all. Secrets come only from the
environment (see ``SECRET_ENV``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SOURCE_NAME_RE = NODE_ID_RE
LEVELS = ("institute", "university", "national", "international")
VISIBILITIES = ("public", "federation", "institution", "private")
DATA_ACCESS = ("open", "embargoed", "restricted", "closed")

# Environment variables that carry secrets; they are never read from the file.
SECRET_ENV = {
    "FAIRNODE_DATABASE_URL": "database URL, when it holds a password",
    "FAIRNODE_SEARCH_API_KEY": "Elasticsearch API key (base64 'id:key' form)",
    "FAIRNODE_SEARCH_USERNAME": "Elasticsearch user name (basic authentication)",
    "FAIRNODE_SEARCH_PASSWORD": "Elasticsearch password (basic authentication)",
    "FAIRNODE_SECRET_KEY": "Flask session signing key (a random one is made per process if unset)",
    "FAIRNODE_DATACITE_USERNAME": "DataCite repository account id ([pid] scheme = datacite)",
    "FAIRNODE_DATACITE_PASSWORD": "DataCite repository account password",
    "FAIRNODE_FEDERATION_TOKEN": "bearer token peers present to be served `federation` records",
}


def setting(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:  # noqa: A002
    """Declare one setting: its default, help text and optional ``choices``."""
    md = {"help": help, **meta}
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata=md)
    if default is dataclasses.MISSING:
        return field(metadata=md)
    return field(default=default, metadata=md)


@dataclass
class NodeSettings:
    """[node]: who this node is."""

    id: str = setting(help="Short slug, unique in a federation (a-z, 0-9, '-').")
    name: str = setting(help="Human name of the node, shown in the portal and in metadata.")
    base_url: str = setting(
        "http://127.0.0.1:5000",
        help="Public URL of the node; record URIs are built from it. No trailing slash.",
    )
    level: str = setting("institute", help="Place in the federation.", choices=LEVELS)
    data_dir: str = setting(
        "var",
        help="Folder for the database, search index and thumbnails; relative to the config file.",
    )
    description: str = setting("", help="One paragraph about the node, shown on the home page.")
    contact_email: str = setting("", help="Contact address published in the node's metadata.")
    country: str = setting(
        "", help="ISO 3166-1 alpha-2 country code, e.g. `FR`; national search scope uses it."
    )
    parents: list = setting(
        [], help='Ids of the nodes this node reports to, e.g. `["amu"]` (its university).'
    )
    ror: str = setting("", help="ROR id of the institution running the node (https://ror.org/…).")


@dataclass
class DatabaseSettings:
    """[database]: the catalog database."""

    url: str = setting(
        "",
        help="SQLAlchemy URL. Empty: SQLite file <data_dir>/catalog.sqlite3. "
        "PostgreSQL: postgresql+psycopg://user@host/db (passwords only via FAIRNODE_DATABASE_URL).",
    )
    echo: bool = setting(False, help="Log every SQL statement (debugging).")


@dataclass
class WebSettings:
    """[web]: the web process."""

    host: str = setting("127.0.0.1", help="Address `fairnode serve` listens on.")
    port: int = setting(5000, help="Port `fairnode serve` listens on (env PORT also overrides).")
    page_size: int = setting(50, help="Default page size of lists in the API and portal.")
    max_page_size: int = setting(500, help="Largest `limit` the API accepts.")


@dataclass
class SourceSettings:
    """[[harvest.sources]]: one folder tree to harvest."""

    name: str = setting(help="Short slug naming the source; part of every record id.")
    path: str = setting(help="Root folder of the image storage; relative to the config file.")
    schedule: str = setting(
        "0 2 * * *", help="Cron expression (5 fields) for `fairnode worker`; empty: manual only."
    )
    visibility: str = setting(
        "public", help="Default metadata visibility of datasets found here.", choices=VISIBILITIES
    )
    data_access: str = setting(
        "restricted", help="Default data access of datasets found here.", choices=DATA_ACCESS
    )
    publish: str = setting(
        "draft",
        help='"auto": publish what is harvested; "draft": curators publish.',
        choices=("auto", "draft"),
    )
    license: str = setting("", help="Default SPDX licence id for datasets without a sidecar one.")
    dataset_depth: int = setting(
        3,
        help="Folder depth below the root that makes a dataset when no sidecar marks one "
        "(3 = group/project/dataset/). Files above that depth belong to their own folder.",
    )
    follow_symlinks: bool = setting(
        True, help="Follow symbolic links (loops are detected and skipped)."
    )
    exclude: list = setting(
        [".*", "@eaDir", "#recycle", "$RECYCLE.BIN"],
        help="Glob patterns of file or folder names that are never walked.",
    )


@dataclass
class HarvestSettings:
    """[harvest]: how files are harvested."""

    batch_size: int = setting(
        200, help="Datasets' worth of changes committed per transaction (resume granularity)."
    )
    thumbnails: bool = setting(True, help="Make thumbnails after each harvest run.")
    thumbnail_size: int = setting(256, help="Longest side of thumbnails, in pixels.")
    lease_seconds: int = setting(
        600,
        help="A run holds its source's lock this long between heartbeats; a crashed run's "
        "lock expires after it.",
    )
    sources: list = setting([], help="The [[harvest.sources]] tables.")


@dataclass
class WorkerSettings:
    """[worker]: the `fairnode worker` scheduler process."""

    timezone: str = setting("UTC", help="Time zone the cron schedules are read in.")


SEARCH_BACKENDS = ("tantivy", "elasticsearch")


@dataclass
class SearchSettings:
    """[search]: the search index (DESIGN §5)."""

    backend: str = setting(
        "tantivy",
        help="`tantivy`: embedded index in `data_dir/search` (default); `elasticsearch`: a cluster "
        "at `url`.",
        choices=SEARCH_BACKENDS,
    )
    url: str = setting(
        "http://127.0.0.1:9200",
        help="Elasticsearch URL (credentials from FAIRNODE_SEARCH_API_KEY or "
        "FAIRNODE_SEARCH_USERNAME/PASSWORD, never here).",
    )
    index: str = setting(
        "",
        help="Elasticsearch alias the node searches (its indices are `<alias>-<timestamp>`); "
        "empty: `fairnode-<node.id>`.",
    )
    ca_certs: str = setting("", help="CA bundle to verify an https Elasticsearch URL with.")
    timeout_seconds: float = setting(10.0, help="Elasticsearch request timeout.")
    max_retries: int = setting(
        5, help="Retries of a failed Elasticsearch request or bulk chunk (exponential backoff)."
    )
    batch_size: int = setting(1000, help="Records per indexing batch (queue drain and reindex).")
    writer_memory_mb: int = setting(
        1024,
        help="tantivy writer memory budget of `fairnode reindex`, in MB, used only as the index "
        "grows. Under ~1 MB per 1,000 records a reindex writes small segments and merges them "
        "again (at 1M records, 256 MB made it 20 % slower).",
    )
    index_interval_seconds: int = setting(
        5, help="How often `fairnode worker` drains the indexing queue, in seconds."
    )
    facet_size: int = setting(20, help="Values shown per facet.")


PID_SCHEMES = ("ark", "datacite")
NAAN_RE = re.compile(r"^\d{5}$")
# A primordinal ARK shoulder: betanumeric letters, then one digit ("first-digit convention").
SHOULDER_RE = re.compile(r"^[bcdfghjkmnpqrstvwxz]+[0-9]$")
DOI_PREFIX_RE = re.compile(r"^10\.\d{4,9}$")
# The NOID check character detects every single-character and adjacent-transposition error
# in strings shorter than its prime radix 29: the check zone is kept to 27 characters so that,
# with the check character, an ARK's NAAN/name stays within 28.
MAX_CHECK_ZONE = 27


@dataclass
class PidSettings:
    """[pid]: persistent identifiers minted at publication (docs/identifiers.md)."""

    scheme: str = setting(
        "ark",
        help="`ark`: ARKs minted and resolved by the node; `datacite`: DataCite DOIs registered "
        "through DataCite's REST API (credentials FAIRNODE_DATACITE_USERNAME/PASSWORD).",
        choices=PID_SCHEMES,
    )
    naan: str = setting(
        "99999",
        help="Name Assigning Authority Number of the node's ARKs (5 digits); 99999 is the test "
        "NAAN, whose ARKs promise no persistence.",
    )
    shoulder: str = setting(
        "fk4",
        help="Shoulder of every minted name (ARK, and DOI suffix): betanumeric letters then one "
        "digit, e.g. `fk4`.",
    )
    blade_length: int = setting(
        8, help="Random betanumeric characters after the shoulder; a NOID check character follows."
    )
    datacite_url: str = setting(
        "https://api.test.datacite.org",
        help="DataCite REST API (the test API by default; production: https://api.datacite.org).",
    )
    datacite_prefix: str = setting(
        "", help="DOI prefix of the DataCite repository account, e.g. 10.80000 (scheme datacite)."
    )


PEER_PROTOCOLS = ("fairnode", "oai-pmh", "dcat")


@dataclass
class PeerSettings:
    """[[federation.peers]]: one node or repository this node harvests (docs/federation.md)."""

    id: str = setting(help="Short slug naming the peer (its node id, for a fairnode peer).")
    url: str = setting(
        help="Base URL: the node's (fairnode), the OAI-PMH endpoint (oai-pmh) or the DCAT "
        "catalog's first page (dcat)."
    )
    protocol: str = setting("fairnode", help="How the peer is read.", choices=PEER_PROTOCOLS)
    schedule: str = setting(
        "*/30 * * * *", help="Cron expression for `fairnode worker`; empty: only by hand."
    )
    metadata_prefix: str = setting(
        "",
        help="OAI-PMH format to harvest. Empty picks from what the peer lists: for `oai-pmh` "
        "peers oai_datacite, else oai_dc; for `fairnode` peers the native `fairnode` record, "
        "else dcat_ap.",
    )
    set_spec: str = setting("", help="OAI-PMH set to harvest (empty: the whole repository).")
    token_env: str = setting(
        "",
        help="Name of the environment variable holding the bearer token this node presents to "
        "the peer (to be served its `federation` records).",
    )


@dataclass
class FederationSettings:
    """[federation]: harvesting peers (docs/federation.md)."""

    timeout_seconds: float = setting(30.0, help="Connect and read timeout of each request.")
    max_response_mb: int = setting(
        64, help="Largest response body read from a peer; a bigger one fails the request."
    )
    max_retries: int = setting(
        3, help="Retries of a request that failed with 429, 5xx or a network error."
    )
    max_retry_after_seconds: int = setting(
        120, help="Longest Retry-After honoured; a peer asking for more fails the run."
    )
    overlap_seconds: int = setting(
        300,
        help="An incremental harvest asks for records changed since the last successful "
        "harvest began, minus this much (clock skew and slow commits on the peer).",
    )
    max_pages: int = setting(
        100000, help="Most resumption pages in one run: an endless list fails the run."
    )
    peers: list = setting([], help="The [[federation.peers]] tables.")


@dataclass
class Config:
    """The whole configuration of one node."""

    node: NodeSettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    web: WebSettings = field(default_factory=WebSettings)
    harvest: HarvestSettings = field(default_factory=HarvestSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    pid: PidSettings = field(default_factory=PidSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    path: Path | None = None  # the file it was read from
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def sources(self) -> list[SourceSettings]:
        return self.harvest.sources

    def source(self, name: str) -> SourceSettings:
        for s in self.harvest.sources:
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self.harvest.sources) or "none configured"
        raise ConfigError(
            [Problem(self._where, "harvest.sources", f"no source {name!r} ({names})")]
        )

    @property
    def _where(self) -> str:
        return str(self.path) if self.path else "<config>"

    def resolve(self, p: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.node.data_dir)

    @property
    def database_url(self) -> str:
        env = os.environ.get("FAIRNODE_DATABASE_URL")
        if env:
            return env
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"

    @property
    def thumbnail_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def search_dir(self) -> Path:
        return self.data_dir / "search"

    @property
    def search_index(self) -> str:
        return self.search.index or f"fairnode-{self.node.id}"


SECTIONS: dict[str, type] = {
    "node": NodeSettings,
    "database": DatabaseSettings,
    "web": WebSettings,
    "harvest": HarvestSettings,
    "worker": WorkerSettings,
    "search": SearchSettings,
    "pid": PidSettings,
    "federation": FederationSettings,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where, which key, why."""

    file: str
    key: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.why}"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def declared_settings() -> list[tuple[str, dataclasses.Field]]:
    """Every declared setting as (dotted key, field): used by docs, init and tests."""
    out: list[tuple[str, dataclasses.Field]] = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if section == "harvest" and f.name == "sources":
                for sf in dataclasses.fields(SourceSettings):
                    out.append((f"harvest.sources[].{sf.name}", sf))
                continue
            if section == "federation" and f.name == "peers":
                for pf in dataclasses.fields(PeerSettings):
                    out.append((f"federation.peers[].{pf.name}", pf))
                continue
            out.append((f"{section}.{f.name}", f))
    return out


def _type_of(cls: type, f: dataclasses.Field) -> type:
    hints = typing.get_type_hints(cls)
    t = hints[f.name]
    if isinstance(t, types.UnionType):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return typing.get_origin(t) or t


def _coerce(value: Any, want: type, key: str, where: str, problems: list[Problem]) -> Any:
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
    elif want is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    elif want is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif want is str:
        if isinstance(value, str):
            return value
    elif want is list:
        if isinstance(value, list):
            return value
    else:  # pragma: no cover - declarations only use the types above
        return value
    problems.append(Problem(where, key, f"expected {want.__name__}, got {value!r}"))
    return None


def _build(
    cls: type, table: dict[str, Any], prefix: str, where: str, problems: list[Problem], env: bool
) -> Any:
    kwargs: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            near = [k for k in known if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(sorted(near))}?)" if near else ""
            problems.append(Problem(where, f"{prefix}{key}", f"unknown setting{hint}"))
    for f in dataclasses.fields(cls):
        if (cls, f.name) in ((HarvestSettings, "sources"), (FederationSettings, "peers")):
            continue
        key = f"{prefix}{f.name}"
        raw = table.get(f.name, dataclasses.MISSING)
        env_name = "FAIRNODE_" + key.replace(".", "_").upper()
        if env and env_name in os.environ and env_name not in SECRET_ENV:
            raw = os.environ[env_name]
            src = f"environment {env_name}"
        else:
            src = where
        if raw is dataclasses.MISSING:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(Problem(where, key, "required setting is missing"))
            continue
        value = _coerce(raw, _type_of(cls, f), key, src, problems)
        if value is None:
            continue
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            problems.append(Problem(src, key, f"{value!r} is not one of {', '.join(choices)}"))
            continue
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError:
        return None  # a required field is missing; already reported


def _check_node(node: NodeSettings, where: str, problems: list[Problem]) -> None:
    if node.id and not NODE_ID_RE.match(node.id):
        problems.append(
            Problem(where, "node.id", f"{node.id!r} must be a slug: a-z, 0-9 and '-', at most 63")
        )
    parts = urlsplit(node.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(Problem(where, "node.base_url", f"{node.base_url!r} is not an http(s) URL"))
    elif node.base_url.endswith("/"):
        problems.append(
            Problem(where, "node.base_url", f"{node.base_url!r}: drop the trailing '/'")
        )
    if node.country and not re.fullmatch(r"[A-Z]{2}", node.country):
        problems.append(
            Problem(where, "node.country", f"{node.country!r} is not an ISO 3166-1 code like FR")
        )
    for i, parent in enumerate(node.parents):
        if not isinstance(parent, str) or not NODE_ID_RE.match(parent):
            problems.append(Problem(where, f"node.parents[{i}]", f"{parent!r} is not a node id"))
        elif parent == node.id:
            problems.append(Problem(where, f"node.parents[{i}]", "a node cannot report to itself"))
    if node.ror and not re.fullmatch(r"https://ror\.org/0[a-z0-9]{6}\d{2}", node.ror):
        problems.append(
            Problem(where, "node.ror", f"{node.ror!r} is not a ROR id (https://ror.org/0xxxxxx00)")
        )


def _check_cron(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr)
    except ValueError as e:
        return str(e)
    return None


def _check_source(
    src: SourceSettings, i: int, cfg_dir: Path, where: str, problems: list[Problem]
) -> None:
    key = f"harvest.sources[{i}]"
    if not SOURCE_NAME_RE.match(src.name):
        problems.append(
            Problem(where, f"{key}.name", f"{src.name!r} must be a slug (a-z, 0-9, '-')")
        )
    root = Path(os.path.expanduser(src.path))
    root = root if root.is_absolute() else cfg_dir / root
    if not root.is_dir():
        problems.append(Problem(where, f"{key}.path", f"{str(root)!r} is not a readable folder"))
    if src.schedule and (err := _check_cron(src.schedule)):
        problems.append(Problem(where, f"{key}.schedule", f"{src.schedule!r}: {err}"))
    if src.dataset_depth < 0:
        problems.append(Problem(where, f"{key}.dataset_depth", f"{src.dataset_depth} must be ≥ 0"))
    if src.license:
        from node.ontologies import UnknownTermError, resolve_license

        try:
            src.license = resolve_license(src.license).id
        except UnknownTermError as e:
            problems.append(Problem(where, f"{key}.license", str(e)))


def _check_search(search: SearchSettings, where: str, problems: list[Problem]) -> None:
    for key in ("batch_size", "writer_memory_mb", "index_interval_seconds", "facet_size"):
        if getattr(search, key) < 1:
            problems.append(Problem(where, f"search.{key}", f"{getattr(search, key)} must be ≥ 1"))
    if search.max_retries < 0:
        problems.append(Problem(where, "search.max_retries", "must be ≥ 0"))
    if search.timeout_seconds <= 0:
        problems.append(Problem(where, "search.timeout_seconds", "must be > 0"))
    if search.writer_memory_mb < 16:
        problems.append(
            Problem(where, "search.writer_memory_mb", "tantivy needs at least 16 MB per writer")
        )
    url = urlsplit(search.url)
    bad_url = url.scheme not in ("http", "https") or not url.netloc
    if search.backend == "elasticsearch" and bad_url:
        problems.append(Problem(where, "search.url", f"{search.url!r} is not an http(s) URL"))
    if url.password:
        problems.append(
            Problem(
                where,
                "search.url",
                "holds a password: use FAIRNODE_SEARCH_USERNAME/FAIRNODE_SEARCH_PASSWORD",
            )
        )
    if search.index and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,200}", search.index):
        problems.append(
            Problem(where, "search.index", f"{search.index!r} is not a valid index name")
        )


def _check_pid(pid: PidSettings, where: str, problems: list[Problem]) -> None:
    if not NAAN_RE.match(pid.naan):
        problems.append(
            Problem(where, "pid.naan", f"{pid.naan!r} must be 5 digits (99999 is the test NAAN)")
        )
    if not SHOULDER_RE.match(pid.shoulder):
        problems.append(
            Problem(
                where,
                "pid.shoulder",
                f"{pid.shoulder!r} must be betanumeric letters (bcdfghjkmnpqrstvwxz) followed "
                "by one digit, e.g. 'fk4' (the ARK first-digit shoulder convention)",
            )
        )
    zone = len(pid.naan) + 1 + len(pid.shoulder) + pid.blade_length
    if pid.blade_length < 1:
        problems.append(Problem(where, "pid.blade_length", f"{pid.blade_length} must be ≥ 1"))
    elif zone > MAX_CHECK_ZONE:
        problems.append(
            Problem(
                where,
                "pid.blade_length",
                f"NAAN/shoulder plus {pid.blade_length} blade characters make {zone}; the NOID "
                f"check character guarantees its error detection only up to {MAX_CHECK_ZONE}",
            )
        )
    url = urlsplit(pid.datacite_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        problems.append(
            Problem(where, "pid.datacite_url", f"{pid.datacite_url!r} is not an http(s) URL")
        )
    elif url.password or url.username:
        problems.append(
            Problem(
                where,
                "pid.datacite_url",
                "holds credentials: use FAIRNODE_DATACITE_USERNAME/FAIRNODE_DATACITE_PASSWORD",
            )
        )
    if pid.datacite_prefix and not DOI_PREFIX_RE.match(pid.datacite_prefix):
        problems.append(
            Problem(
                where,
                "pid.datacite_prefix",
                f"{pid.datacite_prefix!r} is not a DOI prefix (10.NNNN, e.g. 10.80000)",
            )
        )
    if pid.scheme == "datacite" and not pid.datacite_prefix:
        problems.append(Problem(where, "pid.datacite_prefix", 'required when scheme = "datacite"'))


def _check_federation(fed: FederationSettings, where: str, problems: list[Problem]) -> None:
    for key in ("timeout_seconds", "max_response_mb", "max_pages"):
        if getattr(fed, key) <= 0:
            problems.append(Problem(where, f"federation.{key}", f"{getattr(fed, key)} must be > 0"))
    for key in ("max_retries", "max_retry_after_seconds", "overlap_seconds"):
        if getattr(fed, key) < 0:
            problems.append(Problem(where, f"federation.{key}", f"{getattr(fed, key)} must be ≥ 0"))


def check_peer(peer: PeerSettings, key: str, where: str, node_id: str | None) -> list[Problem]:
    """What is wrong with one peer (also used by `fairnode peers add`)."""
    problems: list[Problem] = []
    if not NODE_ID_RE.match(peer.id):
        problems.append(Problem(where, f"{key}.id", f"{peer.id!r} must be a slug (a-z, 0-9, '-')"))
    elif peer.id == node_id:
        problems.append(Problem(where, f"{key}.id", f"{peer.id!r} is this node's own id"))
    url = urlsplit(peer.url)
    if url.scheme not in ("http", "https") or not url.netloc:
        problems.append(Problem(where, f"{key}.url", f"{peer.url!r} is not an http(s) URL"))
    elif url.password or url.username:
        problems.append(
            Problem(where, f"{key}.url", "holds credentials: give a token through token_env")
        )
    if peer.schedule and (err := _check_cron(peer.schedule)):
        problems.append(Problem(where, f"{key}.schedule", f"{peer.schedule!r}: {err}"))
    if peer.token_env and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", peer.token_env):
        problems.append(
            Problem(
                where, f"{key}.token_env", f"{peer.token_env!r} is not an environment variable name"
            )
        )
    return problems


def _build_peers(
    data: dict[str, Any], where: str, problems: list[Problem], node_id: str | None
) -> list[PeerSettings]:
    section = data.get("federation", {})
    raw = section.get("peers", []) if isinstance(section, dict) else []
    if not isinstance(raw, list):
        problems.append(
            Problem(where, "federation.peers", "must be an array of tables [[federation.peers]]")
        )
        return []
    peers: list[PeerSettings] = []
    seen: set[str] = set()
    for i, table in enumerate(raw):
        key = f"federation.peers[{i}]"
        peer = _build(PeerSettings, table, f"{key}.", where, problems, env=False)
        if peer is None:
            continue
        if peer.id in seen:
            problems.append(Problem(where, f"{key}.id", f"duplicate peer {peer.id!r}"))
        seen.add(peer.id)
        problems.extend(check_peer(peer, key, where, node_id))
        peers.append(peer)
    return peers


def parse_config(data: dict[str, Any], *, path: Path | None = None, env: bool = True) -> Config:
    """Build a Config from a parsed TOML mapping, or raise ConfigError listing every problem."""
    where = str(path) if path else "<config>"
    problems: list[Problem] = []
    base_dir = path.parent.resolve() if path else Path.cwd()
    for section in data:
        if section not in SECTIONS:
            problems.append(Problem(where, section, f"unknown section [{section}]"))
    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.append(Problem(where, section, f"[{section}] must be a table"))
            table = {}
        built[section] = _build(cls, table, f"{section}.", where, problems, env)
    harvest: HarvestSettings | None = built["harvest"]
    raw_sources = (
        data.get("harvest", {}).get("sources", []) if isinstance(data.get("harvest"), dict) else []
    )
    sources: list[SourceSettings] = []
    if not isinstance(raw_sources, list):
        problems.append(
            Problem(where, "harvest.sources", "must be an array of tables [[harvest.sources]]")
        )
        raw_sources = []
    seen: set[str] = set()
    for i, table in enumerate(raw_sources):
        src = _build(SourceSettings, table, f"harvest.sources[{i}].", where, problems, env=False)
        if src is None:
            continue
        if src.name in seen:
            problems.append(
                Problem(where, f"harvest.sources[{i}].name", f"duplicate source {src.name!r}")
            )
        seen.add(src.name)
        _check_source(src, i, base_dir, where, problems)
        sources.append(src)
    if built["node"] is not None:
        _check_node(built["node"], where, problems)
    url = data.get("database", {}).get("url", "") if isinstance(data.get("database"), dict) else ""
    if isinstance(url, str) and urlsplit(url).password:
        problems.append(
            Problem(
                where,
                "database.url",
                "holds a password: put the URL in FAIRNODE_DATABASE_URL instead",
            )
        )
    if built["search"] is not None:
        _check_search(built["search"], where, problems)
    if built["pid"] is not None:
        _check_pid(built["pid"], where, problems)
    web = built["web"]
    if web is not None and not (1 <= web.page_size <= web.max_page_size):
        problems.append(
            Problem(
                where, "web.page_size", f"{web.page_size} must be between 1 and web.max_page_size"
            )
        )
    federation: FederationSettings | None = built["federation"]
    peers = _build_peers(data, where, problems, node_id=getattr(built["node"], "id", None))
    if federation is not None:
        _check_federation(federation, where, problems)
    if problems:
        raise ConfigError(problems)
    assert harvest is not None
    assert federation is not None
    harvest.sources = sources
    federation.peers = peers
    if os.environ.get("PORT", "").isdigit():
        built["web"].port = int(os.environ["PORT"])
    return Config(
        node=built["node"],
        database=built["database"],
        web=built["web"],
        harvest=harvest,
        worker=built["worker"],
        search=built["search"],
        pid=built["pid"],
        federation=federation,
        path=path,
        base_dir=base_dir,
    )


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a node.toml file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [Problem(str(p), "-", "file not found (create one with `fairnode init DIR`)")]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(str(p), "-", f"cannot read: {e}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem(str(p), "-", f"not valid TOML: {e}")]) from None
    return parse_config(data, path=p.resolve())


def starter_toml(
    node_id: str = "my-node",
    name: str = "My imaging facility",
    source_path: str = "/data/microscopy",
) -> str:
    """A commented starter node.toml, generated from the declarations so it never goes stale."""
    lines = [
        "# fairnode node configuration. Every setting is documented in docs/configuration.md.",
        "",
    ]
    values = {"node.id": node_id, "node.name": name}
    for section, cls in SECTIONS.items():
        lines.append(f"[{section}]")
        for f in dataclasses.fields(cls):
            if (section, f.name) in (("harvest", "sources"), ("federation", "peers")):
                continue
            key = f"{section}.{f.name}"
            lines.append(f"# {f.metadata['help']}")
            if key in values:
                lines.append(f"{f.name} = {_toml_value(values[key])}")
            else:
                default = _default(f)
                lines.append(
                    f"# {f.name} = {_toml_value(default)}" if default != "" else f'# {f.name} = ""'
                )
        lines.append("")
    lines.append("[[harvest.sources]]")
    src_values = {"name": "microscopy", "path": source_path}
    for f in dataclasses.fields(SourceSettings):
        lines.append(f"# {f.metadata['help']}")
        if f.name in src_values:
            lines.append(f"{f.name} = {_toml_value(src_values[f.name])}")
        else:
            lines.append(f"# {f.name} = {_toml_value(_default(f))}")
    lines.append("")
    lines.append("# A peer to harvest (docs/federation.md); uncomment and repeat per peer.")
    lines.append("# [[federation.peers]]")
    peer_values = {"id": "inst-a", "url": "https://inst-a.example.org"}
    for f in dataclasses.fields(PeerSettings):
        lines.append(f"# {f.metadata['help']}")
        lines.append(f"# {f.name} = {_toml_value(peer_values.get(f.name, _default(f)))}")
    lines.append("")
    return "\n".join(lines)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return ""


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def settings_markdown() -> str:
    """The settings table of docs/configuration.md, generated from the declarations."""
    rows = ["| setting | default | allowed | what it does |", "| --- | --- | --- | --- |"]
    for key, f in declared_settings():
        if key == "harvest.sources":
            continue
        default = _default(f)
        shown = (
            "(required)"
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            else f"`{_toml_value(default)}`"
        )
        choices = ", ".join(f"`{c}`" for c in f.metadata.get("choices", ())) or ""
        rows.append(f"| `{key}` | {shown} | {choices} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m node.config > table: regenerate the docs table
    print(settings_markdown(), end="")
