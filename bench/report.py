"""Output helpers shared by the benchmark scripts: aligned tables, progress lines, load average."""

from __future__ import annotations

import os
import sys
import time


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
