"""Build a harvested dataset record from its sidecar, its source's defaults and its images."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from node.config import NodeSettings, SourceSettings
from node.harvest.sidecars import SidecarProblem, embargo_datetime, load_sidecar
from node.ontologies import method_for_acquisition_mode
from node.pid.errors import PidError
from node.records import (
    DataAccess,
    DataLocation,
    Dataset,
    Image,
    Lifecycle,
    Provenance,
    Term,
    Visibility,
    aggregate_images,
)

__all__ = ["build", "placeholder"]

# Fields that change on every harvest without the record changing.
_VOLATILE = ("modified",)


def _title_from_folder(folder: str, source: SourceSettings) -> str:
    last = folder.rstrip("/").rsplit("/", 1)[-1] if folder else source.name
    return last.replace("_", " ").strip() or source.name


def placeholder(ds_id: str, folder: str, source: SourceSettings, node_id: str) -> Dataset:
    """A draft stand-in written with the first images of a dataset, until it is finalised."""
    return Dataset(
        id=ds_id,
        title=_title_from_folder(folder, source),
        lifecycle=Lifecycle.draft,
        visibility=Visibility(source.visibility),
        data_access=DataAccess(source.data_access),
        data_location=DataLocation(path=folder),
        provenance=Provenance(origin_node=node_id, source=source.name),
    )


def _methods_from_images(images: list[Image]) -> list[Term]:
    seen: dict[str, Term] = {}
    for im in images:
        for ch in im.channels:
            if ch.acquisition_mode:
                term = method_for_acquisition_mode(ch.acquisition_mode)
                if term is not None:
                    seen.setdefault(term.iri or term.label, term)
    return list(seen.values())


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    d = {k: v for k, v in doc.items() if k not in _VOLATILE}
    d["provenance"] = {
        k: v for k, v in (doc.get("provenance") or {}).items() if k != "last_harvested"
    }
    return d


# The reason the harvester gives when it withdraws a published dataset whose files are gone
# (runner._remove). Only withdrawals with this reason are undone when the files come back; a
# curator's withdrawal stays.
FILES_GONE = "its files are no longer in the storage"


def files_gone_reason(source: str, folder: str) -> str:
    return f"{FILES_GONE} ({source}: {folder or '.'})"


def is_files_gone(ds: Dataset) -> bool:
    """Whether ``ds`` was withdrawn by the harvester because its files vanished."""
    reason = ds.withdrawn_reason or ""
    return ds.lifecycle is Lifecycle.withdrawn and reason.startswith(f"{FILES_GONE} (")


def build(
    ds_id: str,
    folder: str,
    source: SourceSettings,
    node: NodeSettings,
    images: list[Image],
    existing_doc: dict[str, Any] | None,
    sidecar_abs: str | None,
    sidecar_rel: str | None,
    mint: Callable[[Dataset], str] | None = None,
) -> tuple[Dataset, list[SidecarProblem]]:
    """The dataset record for ``folder``, and the sidecar's problems (if any).

    ``mint`` (the runner's ``PidService.mint`` bound to its transaction) gives a dataset that is
    published here without a PID its PID; when it fails, a dataset published for the first time
    stays a draft (published records are never without a PID by accident) and the failure is
    reported as a problem of the folder."""
    now = datetime.now(UTC)
    existing = Dataset.model_validate(existing_doc) if existing_doc else None
    sc, problems = load_sidecar(sidecar_abs, sidecar_rel) if sidecar_abs else (None, [])
    lifecycle = Lifecycle.published if source.publish == "auto" else Lifecycle.draft
    returned = existing is not None and is_files_gone(existing)
    if returned:
        lifecycle = Lifecycle.published  # the harvester withdrew it; its files are back
    elif existing and existing.lifecycle is Lifecycle.withdrawn:
        lifecycle = Lifecycle.withdrawn  # a curator's withdrawal outlives re-harvests
    elif existing and existing.lifecycle is Lifecycle.published:
        lifecycle = Lifecycle.published
    acquired = [im.acquired_at for im in images if im.acquired_at]
    first_seen = (
        existing.provenance.first_seen if existing and existing.provenance.first_seen else now
    )

    def pick(attr: str, default: Any) -> Any:
        value = getattr(sc, attr, None) if sc else None
        return default if value is None else value

    ds = Dataset(
        id=ds_id,
        identifier=existing.identifier if existing else None,
        title=pick("title", _title_from_folder(folder, source)),
        description=pick("description", None),
        creators=pick("creators", []),
        contributors=pick("contributors", []),
        keywords=pick("keywords", []),
        organisms=pick("organisms", []),
        imaging_methods=pick("imaging_methods", None) or _methods_from_images(images),
        sample=pick("sample", None),
        instruments=pick("instruments", []),
        license=pick("license", source.license or None),
        created=min(acquired) if acquired else (existing.created if existing else None),
        issued=(
            existing.issued
            if existing and existing.issued
            else (now if lifecycle is Lifecycle.published else None)
        ),
        embargo_end=embargo_datetime(pick("embargo_end", None)),
        publisher=node.name,
        funding=pick("funding", []),
        related_publications=pick("related_publications", []),
        version=pick("version", None),
        data_location=DataLocation(path=folder),
        visibility=Visibility(pick("visibility", Visibility(source.visibility))),
        data_access=DataAccess(pick("data_access", DataAccess(source.data_access))),
        access_contact=pick("access_contact", node.contact_email or None),
        lifecycle=lifecycle,
        withdrawn_reason=existing.withdrawn_reason if existing and not returned else None,
        key_values=pick("key_values", {}),
        provenance=Provenance(
            origin_node=node.id, source=source.name, first_seen=first_seen, last_harvested=now
        ),
        modified=now,
    )
    ds = aggregate_images(ds, images)
    if mint is not None and ds.lifecycle is Lifecycle.published and not ds.identifier:
        ds, problems = _with_pid(ds, existing, mint, list(problems), sidecar_rel or folder)
    if existing and _comparable(ds.to_json()) == _comparable(existing.to_json()):
        ds = ds.model_copy(update={"modified": existing.modified})
    return ds, problems


def _with_pid(
    ds: Dataset,
    existing: Dataset | None,
    mint: Callable[[Dataset], str],
    problems: list[SidecarProblem],
    where: str,
) -> tuple[Dataset, list[SidecarProblem]]:
    try:
        return ds.model_copy(update={"identifier": mint(ds)}), problems
    except PidError as e:
        if existing and existing.lifecycle is Lifecycle.published:
            why = f"published without a PID: {e.message} (`fairnode publish {ds.id}` retries)"
        else:
            ds = ds.model_copy(update={"lifecycle": Lifecycle.draft, "issued": None})
            why = (
                f"kept as a draft, no PID could be minted: {e.message} "
                f"(`fairnode publish {ds.id}` publishes it once that is fixed)"
            )
        problems.append(SidecarProblem(where or ".", None, "identifier", why))
        return ds, problems
