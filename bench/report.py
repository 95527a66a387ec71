"""Output helpers shared by the benchmark scripts: aligned tables, progress lines, load average,
and what the machine did during a phase (iowait, steal, disk traffic)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def table(title: str, header: list[str], rows: list[list[str]], note: str = "") -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            c = str(c)
            numeric = i > 0 and c[:1].isdigit()
            out.append(c.rjust(widths[i]) if numeric else c.ljust(widths[i]))
        return " | ".join(out).rstrip()

    sep = "-+-".join("-" * w for w in widths)
    text = [title, "=" * len(title), line(header), sep, *(line(r) for r in rows)]
    if note:
        text += ["", note]
    return "\n".join(text) + "\n"


def emit(text: str) -> None:
    print(text, flush=True)


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def versions(packages: tuple[str, ...], *, tools: dict[str, str] | None = None) -> str:
    """The machine, the versions of ``packages`` (and SQLite, and ``tools``: name -> version)
    and the code's git revision: the header every benchmark prints above its tables."""
    import platform
    import sqlite3
    import subprocess
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    libs = []
    for pkg in packages:
        try:
            libs.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            libs.append(f"{pkg} -")
    libs.append(f"SQLite {sqlite3.sqlite_version}")
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:
        ram = "? RAM"
    try:
        git = subprocess.run(
            [
                "git",
                "-C",
                str(Path(__file__).resolve().parents[1]),
                "describe",
                "--always",
                "--dirty",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = "?"
    extra = "".join(f"; {name} {v}" for name, v in (tools or {}).items())
    return (
        f"machine: {os.cpu_count()} CPUs, {ram}, {platform.platform()}; Python "
        f"{platform.python_version()}{extra}\nlibraries: {', '.join(libs)}\ncode: git {git or '?'}"
    )


def machine_snapshot() -> dict[str, Any]:
    """CPU time by kind (/proc/stat, clock ticks) and sectors read and written by the block
    devices (/proc/diskstats), for ``machine_delta``: a run that waited on the disk (iowait)
    or lost its CPU to the hypervisor (steal) says so beside its figures. Empty where /proc is
    not Linux's."""
    snap: dict[str, Any] = {"t": time.monotonic()}
    try:
        with open("/proc/stat") as f:
            snap["cpu"] = [int(x) for x in f.readline().split()[1:]]
        read = written = 0
        with open("/proc/diskstats") as f:
            for line in f:
                parts = line.split()
                name = parts[2]
                # whole disks only (a partition's sectors are counted in its disk too)
                if name.startswith(("loop", "ram", "dm-", "zram")) or os.path.exists(
                    f"/sys/class/block/{name}/partition"
                ):
                    continue
                read += int(parts[5])
                written += int(parts[9])
        snap["disk"] = (read, written)
    except (OSError, ValueError, IndexError):
        pass
    return snap


def machine_delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """What the machine did between two snapshots: cores busy, idle, waiting on I/O and
    stolen (averages over the interval), and MB read and written."""
    out: dict[str, float] = {"seconds": b["t"] - a["t"]}
    if "cpu" in a and "cpu" in b:
        d = [y - x for x, y in zip(a["cpu"], b["cpu"], strict=False)]
        total = sum(d) or 1
        cores = os.cpu_count() or 1
        # user nice system idle iowait irq softirq steal
        share = {"busy": d[0] + d[1] + d[2] + d[5] + d[6], "idle": d[3], "iowait": d[4]}
        share["steal"] = d[7] if len(d) > 7 else 0
        out.update({f"{k}_cores": v / total * cores for k, v in share.items()})
    if "disk" in a and "disk" in b:
        out["read_mb"] = (b["disk"][0] - a["disk"][0]) * 512 / 1e6
        out["write_mb"] = (b["disk"][1] - a["disk"][1]) * 512 / 1e6
    return out


def describe_machine(d: dict[str, float]) -> str:
    """One line of ``machine_delta``."""
    if "busy_cores" not in d:
        return "machine activity unknown"
    text = (
        f"busy {d['busy_cores']:.2f} / iowait {d['iowait_cores']:.2f} / steal "
        f"{d['steal_cores']:.2f} cores"
    )
    if "read_mb" in d:
        text += f", disk {d['read_mb']:,.0f} MB read, {d['write_mb']:,.0f} MB written"
    return text
