"""The ``fairnode`` command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from node.config import Config, ConfigError, load_config, starter_toml

log = logging.getLogger("fairnode")


def _load(ctx: click.Context) -> Config:
    path = ctx.obj.get("config_path")
    if not path:
        raise click.UsageError(
            "no configuration: pass --config FILE or set FAIRNODE_CONFIG (see `fairnode init`)"
        )
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(f"The configuration has {len(e.problems)} problem(s):", err=True)
        for p in e.problems:
            click.echo(f"  {p}", err=True)
        ctx.exit(2)
        raise  # unreachable; keeps type checkers calm


def _engine(config: Config):
    from node.catalog.db import open_catalog

    return open_catalog(config.database_url, echo=config.database.echo)


@click.group()
@click.option(
    "--config",
    "config_path",
    envvar="FAIRNODE_CONFIG",
    type=click.Path(dir_okay=False),
    help="The node's TOML configuration (env FAIRNODE_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """fairnode: a federated FAIR catalog node for microscopy images."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--id", "node_id", default="my-node", help="The node id to write.")
@click.option("--name", default="My imaging facility", help="The node name to write.")
@click.option(
    "--source",
    "source_path",
    default="/data/microscopy",
    help="Folder of the first harvest source.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing node.toml.")
def init(directory: str, node_id: str, name: str, source_path: str, force: bool) -> None:
    """Write a commented starter DIRECTORY/node.toml."""
    target = Path(directory) / "node.toml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_toml(node_id, name, source_path), encoding="utf-8")
    click.echo(f"wrote {target}; check it with: fairnode --config {target} check-config")


@main.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the configuration and explain every problem (file, key, why)."""
    cfg = _load(ctx)
    click.echo(
        f"{cfg.path}: OK — node {cfg.node.id!r} ({cfg.node.level}), {len(cfg.sources)} source(s)"
    )
    for s in cfg.sources:
        click.echo(
            f"  source {s.name!r}: {cfg.resolve(s.path)} "
            f"schedule={s.schedule or 'manual'} publish={s.publish}"
        )
    click.echo(f"  database: {_redact(cfg.database_url)}")
    click.echo(f"  data_dir: {cfg.data_dir}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command()
@click.option("--host", default=None, help="Listen address (default: [web] host).")
@click.option("--port", type=int, default=None, help="Port (default: [web] port, or env PORT).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the portal and APIs (development server; use gunicorn in production)."""
    cfg = _load(ctx)
    _serve(cfg, host, port)


def _serve(cfg: Config, host: str | None, port: int | None) -> None:
    from node.app import create_app
    from node.search.lineage import warm_up_in_background

    app = create_app(cfg)
    warm_up_in_background()
    host = host or cfg.web.host
    port = port or cfg.web.port
    click.echo(f"fairnode {cfg.node.id!r} serving on http://{host}:{port}/ (Ctrl-C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)


@main.command()
@click.option("--source", "source_name", default=None, help="Only this source (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def harvest(ctx: click.Context, source_name: str | None, quiet: bool) -> None:
    """Harvest the configured source folders now, with a progress bar and a summary."""
    cfg = _load(ctx)
    names = [source_name] if source_name else [s.name for s in cfg.sources]
    if source_name:
        try:
            cfg.source(source_name)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    if not names:
        raise click.ClickException("no [[harvest.sources]] configured")
    failed = _harvest(cfg, names, quiet=quiet)
    ctx.exit(1 if failed else 0)


def _index(cfg: Config, engine, *, quiet: bool = False) -> None:
    """Bring the search index up to date after CLI writes (the worker does it on a timer)."""
    from node.search.factory import open_backend
    from node.search.indexer import drain

    backend = open_backend(cfg)
    try:
        report = drain(engine, backend, batch_size=cfg.search.batch_size)
    except Exception as e:  # the catalog is safe; the queue keeps the work for later
        click.echo(f"search index not updated ({e}); `fairnode reindex` will catch up", err=True)
        return
    finally:
        backend.close()
    if report.skipped:
        click.echo("search index: another process is writing it; it will catch up", err=True)
    elif not quiet and (report.indexed or report.deleted or report.failed):
        click.echo(
            f"search index: {report.indexed} indexed, {report.deleted} removed"
            + (f", {report.failed} failed (kept in the queue)" if report.failed else "")
        )


@main.command()
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def reindex(ctx: click.Context, quiet: bool) -> None:
    """Rebuild the search index from the catalog and swap it in without downtime."""
    from tqdm import tqdm

    from node.search.factory import open_backend
    from node.search.indexer import IndexBusyError, count_records
    from node.search.indexer import reindex as rebuild

    cfg = _load(ctx)
    engine = _engine(cfg)
    backend = open_backend(cfg)
    total = count_records(engine)
    with tqdm(
        total=total,
        desc=f"reindex ({backend.name})",
        unit=" records",
        disable=quiet,
        dynamic_ncols=True,
        file=sys.stderr,
    ) as bar:
        try:
            n = rebuild(engine, backend, batch_size=cfg.search.batch_size, progress=bar.update)
        except IndexBusyError as e:
            raise click.ClickException(f"{e}; try again when it is done") from None
        finally:
            backend.close()
    click.echo(f"reindexed {n} records ({backend.name}): {backend.health().detail}")


def _harvest(cfg: Config, names: list[str], *, quiet: bool = False) -> bool:
    engine = _engine(cfg)
    failed = False
    try:
        failed = _harvest_sources(cfg, engine, names, quiet=quiet)
    finally:
        _index(cfg, engine, quiet=quiet)
    return failed


def _harvest_sources(cfg: Config, engine, names: list[str], *, quiet: bool) -> bool:
    from tqdm import tqdm

    from node.errors import ConflictError
    from node.harvest.runner import Harvester

    failed = False
    for name in names:
        bar = tqdm(
            desc=f"harvest {name}",
            unit=" files",
            disable=quiet,
            dynamic_ncols=True,
            file=sys.stderr,
        )

        def progress(files: int, errors: int, folder: str, bar: tqdm = bar) -> None:
            bar.update(files - bar.n)
            bar.set_postfix(errors=errors, refresh=False)

        thumbs: list[tqdm] = []

        def thumbnail_progress(
            done: int, total: int, thumbs: list[tqdm] = thumbs, bar: tqdm = bar, name: str = name
        ) -> None:
            if not thumbs:  # the file walk is over: its bar gives way to this one
                bar.close()
                thumbs.append(
                    tqdm(
                        total=total,
                        desc=f"thumbnails {name}",
                        unit=" images",
                        disable=quiet,
                        dynamic_ncols=True,
                        file=sys.stderr,
                    )
                )
            thumbs[0].update(done - thumbs[0].n)

        try:
            run = Harvester(
                cfg, engine, progress=progress, thumbnail_progress=thumbnail_progress
            ).run(name)
        except ConflictError as e:
            bar.close()
            click.echo(f"{name}: {e}", err=True)
            failed = True
            continue
        bar.close()
        for t in thumbs:
            t.close()
        c = run.counts
        took = (run.ended_at - run.started_at).total_seconds() if run.ended_at else 0.0
        click.echo(
            f"{name}: {run.status} in {took:.1f}s — {c.get('files_seen', 0)} files "
            f"({c.get('files_new', 0)} new, {c.get('files_changed', 0)} changed, "
            f"{c.get('files_removed', 0)} removed), {c.get('images_written', 0)} images written, "
            f"{c.get('datasets_updated', 0)} datasets updated, {c.get('errors', 0)} errors, "
            f"{c.get('warnings', 0)} warnings (run {run.id})"
        )
        for e in run.errors[:20]:
            click.echo(f"  {e.level}: {e.path}: {e.reason}", err=True)
        if run.error_total > 20:
            click.echo(
                f"  … {run.error_total - 20} more: GET /api/v1/harvest/runs/{run.id}", err=True
            )
    return failed


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run every source on its schedule until stopped (the node's one background process)."""
    from node.worker import run_worker

    cfg = _load(ctx)
    run_worker(cfg, _engine(cfg))


@main.command()
@click.option(
    "--dir", "directory", default="var/demo", show_default=True, help="Where the demo node lives."
)
@click.option(
    "--samples",
    default=None,
    help="Folder of sample files (default: the repository's tests/data/samples).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Port (default 5000, or env PORT).")
@click.option("--no-serve", is_flag=True, help="Set up and harvest, but do not serve.")
def demo(directory: str, samples: str | None, host: str, port: int | None, no_serve: bool) -> None:
    """Create a demo node with real sample images, harvest them and serve the portal."""
    from node.demo import build_demo

    cfg_path = build_demo(Path(directory), Path(samples) if samples else None)
    cfg = load_config(cfg_path)
    _harvest(cfg, [s.name for s in cfg.sources], quiet=False)
    if not no_serve:
        _serve(cfg, host, port or int(os.environ.get("PORT", cfg.web.port)))


@main.command()
@click.argument("dataset_id")
@click.option(
    "--reinstate", is_flag=True, help="Publish a withdrawn dataset again, under the same PID."
)
@click.pass_context
def publish(ctx: click.Context, dataset_id: str, reinstate: bool) -> None:
    """Publish DATASET_ID: lifecycle published, issued date, a PID minted if it has none."""
    from node.catalog import publishing

    _lifecycle_change(
        ctx,
        lambda cfg, engine: publishing.publish(engine, dataset_id, config=cfg, reinstate=reinstate),
    )


@main.command()
@click.argument("dataset_id")
@click.option("--reason", default=None, help="Why (shown on the tombstone); required.")
@click.pass_context
def withdraw(ctx: click.Context, dataset_id: str, reason: str | None) -> None:
    """Withdraw DATASET_ID: its PID keeps resolving, to a tombstone with the citation and REASON."""
    from node.catalog import publishing

    _lifecycle_change(
        ctx,
        lambda cfg, engine: publishing.withdraw(
            engine, dataset_id, reason=reason or "", config=cfg
        ),
    )


def _lifecycle_change(ctx: click.Context, change) -> None:
    """Run a publish/withdraw, print its message (errors to stderr, exit 1), then index."""
    from node.errors import NodeError

    cfg = _load(ctx)
    engine = _engine(cfg)
    try:
        outcome = change(cfg, engine)
    except NodeError as e:
        click.echo(f"error: {e.message}", err=True)
        for detail in e.errors:
            click.echo(f"  {detail}", err=True)
        ctx.exit(1)
    click.echo(outcome.message)
    if outcome.changed:
        _index(cfg, engine, quiet=True)


# --------------------------------------------------------------------------- federation


@main.command()
@click.option(
    "--peer", "peer_ids", multiple=True, help="Only this peer (repeatable; default: all)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def federate(ctx: click.Context, peer_ids: tuple[str, ...], quiet: bool) -> None:
    """Harvest the federation peers now (incrementally), with a progress bar and a summary."""
    from tqdm import tqdm

    from node.errors import NodeError
    from node.federation.peers import PeerStore
    from node.federation.runner import federate as run_federation

    cfg = _load(ctx)
    engine = _engine(cfg)
    try:
        peers = [p.id for p in PeerStore(cfg, engine).list()] if not peer_ids else list(peer_ids)
        for pid in peer_ids:
            PeerStore(cfg, engine).get(pid)
    except NodeError as e:
        engine.dispose()
        raise click.ClickException(e.message) from None
    if not peers:
        engine.dispose()
        raise click.ClickException(
            "no peers: add [[federation.peers]] to the configuration or run `fairnode peers add`"
        )
    bars: dict[str, tqdm] = {}

    def progress(peer_id: str, counts) -> None:
        bar = bars.get(peer_id)
        if bar is None:
            bar = bars[peer_id] = tqdm(
                desc=f"federate {peer_id}",
                unit=" records",
                disable=quiet,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        bar.update(counts.read - bar.n)
        bar.set_postfix(skipped=counts.skipped, refresh=False)

    try:
        # Each batch is indexed as it commits (the drain below then finds little or nothing).
        results = run_federation(cfg, engine, peers, progress=progress, index=True)
    finally:
        for bar in bars.values():
            bar.close()
        _index(cfg, engine, quiet=quiet)
        engine.dispose()
    failed = False
    for peer_id, run in results.items():
        c = run.counts
        line = (
            f"{peer_id}: {run.status} in {run.seconds:.1f}s — {c.read} read, {c.added} added, "
            f"{c.updated} updated, {c.withdrawn} withdrawn, {c.unchanged} unchanged, "
            f"{c.own} own, {c.skipped} skipped" + (f" (run {run.run_id})" if run.run_id else "")
        )
        click.echo(line)
        if run.message:
            click.echo(f"  {run.message}", err=True)
        for p in c.problems[:20]:
            click.echo(f"  skipped {p.remote_id or '(no identifier)'}: {p.reason}", err=True)
        if len(c.problems) > 20 and run.run_id:
            click.echo(
                f"  … {len(c.problems) - 20} more: GET /api/v1/harvest/runs/{run.run_id}",
                err=True,
            )
        failed = failed or not run.ok
    ctx.exit(1 if failed else 0)


@main.group()
def peers() -> None:
    """List, add, remove and check the peers this node harvests."""


@contextmanager
def _peer_store(ctx: click.Context) -> Iterator[tuple]:
    """(config, engine, PeerStore); the engine's connections are closed at the end."""
    from node.federation.peers import PeerStore

    cfg = _load(ctx)
    engine = _engine(cfg)
    try:
        yield cfg, engine, PeerStore(cfg, engine)
    finally:
        engine.dispose()


def _node_error(e) -> click.ClickException:
    return click.ClickException("\n  ".join([e.message, *e.errors]))


@peers.command("add")
@click.argument("peer_id")
@click.argument("url")
@click.option(
    "--protocol",
    type=click.Choice(["fairnode", "oai-pmh", "dcat"]),
    default="fairnode",
    show_default=True,
)
@click.option("--schedule", default="*/30 * * * *", show_default=True, help="Cron; '' = manual.")
@click.option("--metadata-prefix", default="", help="OAI-PMH format (oai-pmh peers).")
@click.option("--set", "set_spec", default="", help="OAI-PMH set (oai-pmh peers).")
@click.option("--token-env", default="", help="Environment variable holding the bearer token.")
@click.pass_context
def peers_add(
    ctx: click.Context,
    peer_id: str,
    url: str,
    protocol: str,
    schedule: str,
    metadata_prefix: str,
    set_spec: str,
    token_env: str,
) -> None:
    """Add peer PEER_ID served at URL (validated like the configuration's peers)."""
    from node.config import PeerSettings
    from node.errors import NodeError

    settings = PeerSettings(
        id=peer_id,
        url=url,
        protocol=protocol,
        schedule=schedule,
        metadata_prefix=metadata_prefix,
        set_spec=set_spec,
        token_env=token_env,
    )
    with _peer_store(ctx) as (_cfg, _engine_, store):
        try:
            store.add(settings)
        except NodeError as e:
            raise _node_error(e) from None
    click.echo(
        f"added peer {peer_id!r} ({protocol}, {url}); "
        f"schedule {schedule or 'manual'}. Harvest it now: fairnode federate --peer {peer_id}"
    )


@peers.command("list")
@click.pass_context
def peers_list(ctx: click.Context) -> None:
    """Every peer: protocol, URL, schedule, where it is set, last success and error, records."""
    from node.auth.policy import Identity, read_scope
    from node.errors import NodeError
    from node.federation.state import PeerStateStore

    with _peer_store(ctx) as (_cfg, engine, store):
        try:
            peers_ = store.list()
        except NodeError as e:
            raise _node_error(e) from None
        if not peers_:
            click.echo("no peers (add one with `fairnode peers add ID URL`)")
            return
        states = PeerStateStore(engine).all()
        admin = read_scope(Identity(roles=frozenset({"admin"})))
        counts = PeerStateStore(engine).record_counts(admin)
        header = (
            "ID",
            "PROTOCOL",
            "URL",
            "SCHEDULE",
            "SOURCE",
            "LAST SUCCESS",
            "LAST ERROR",
            "RECORDS",
        )
        table = [header]
        for p in peers_:
            st = states.get(p.id)
            success = (
                st.last_success.strftime("%Y-%m-%d %H:%M") if st and st.last_success else "never"
            )
            error = "-"
            if st and st.last_error and (not st.last_success or st.last_error_at > st.last_success):
                error = st.last_error if len(st.last_error) <= 60 else st.last_error[:59] + "…"
            table.append(
                (
                    p.id,
                    p.protocol,
                    p.url,
                    p.schedule or "manual",
                    p.origin,
                    success,
                    error,
                    str(counts.get(p.id, 0)),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            click.echo(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )


@peers.command("remove")
@click.argument("peer_id")
@click.pass_context
def peers_remove(ctx: click.Context, peer_id: str) -> None:
    """Remove a peer added with `fairnode peers add` (its harvested records stay)."""
    from node.errors import NodeError
    from node.federation.state import PeerStateStore

    with _peer_store(ctx) as (_cfg, engine, store):
        try:
            store.remove(peer_id)
        except NodeError as e:
            raise _node_error(e) from None
        PeerStateStore(engine).forget(peer_id)
    click.echo(
        f"removed peer {peer_id!r}; the records harvested from it stay in the catalog, no "
        "longer updated (they belong to their origin node, which alone can withdraw them; add "
        "the peer again to resume)"
    )


@peers.command("check")
@click.argument("peer_id")
@click.pass_context
def peers_check(ctx: click.Context, peer_id: str) -> None:
    """Ask PEER_ID who it is (descriptor, OAI-PMH Identify or the DCAT catalog) and say what
    was found, or why it failed."""
    from node.errors import NodeError
    from node.federation.peers import check as check_peer

    with _peer_store(ctx) as (cfg, _engine_, store):
        try:
            lines = check_peer(cfg, store.get(peer_id))
        except NodeError as e:
            click.echo(f"{peer_id}: FAILED — {e.message}", err=True)
            ctx.exit(1)
    click.echo(f"{peer_id}: OK")
    for line in lines:
        click.echo(f"  {line}")


if __name__ == "__main__":
    main()
