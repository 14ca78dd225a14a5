"""Print what loading an extract found: counts per table, then the commonest reject reasons.

Only counts, table names and reason strings are printed, never row contents.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from records.loader import Extract

TOP_REASONS = 10


def print_validation(extract: Extract, console: Console) -> None:
    """Print per-table read/loaded/rejected counts, then the top reject reasons overall."""
    manifest = extract.manifest
    console.print(f"Extract {extract.path} (extract_date {manifest.extract_date})")

    counts = Table(title="Rows per table")
    counts.add_column("table")
    counts.add_column("file")
    for name in ("read", "loaded", "rejected"):
        counts.add_column(name, justify="right")
    counts.add_column("complete to")
    for report in extract.reports.values():
        counts.add_row(
            report.table,
            report.source.name if report.source else "",
            f"{report.read:,}",
            f"{report.loaded:,}",
            f"[red]{report.rejected:,}[/]" if report.rejected else "0",
            str(manifest.complete_to_for(report.table)),
        )
    reports = extract.reports.values()
    counts.add_section()
    counts.add_row(
        "total",
        "",
        f"{sum(r.read for r in reports):,}",
        f"{sum(r.loaded for r in reports):,}",
        f"{extract.n_rejected:,}",
        "",
    )
    console.print(counts)

    if not extract.n_rejected:
        console.print("[green]No rows rejected.[/]")
        return
    reasons: Counter[tuple[str, str]] = Counter()
    for report in reports:
        reasons.update({(report.table, reason): n for reason, n in report.reasons.items()})
    top = Table(title=f"Top reject reasons ({len(reasons)} distinct)")
    top.add_column("table")
    top.add_column("reason")
    top.add_column("rows", justify="right")
    for (table, reason), n in reasons.most_common(TOP_REASONS):
        top.add_row(table, reason, f"{n:,}")
    console.print(top)
