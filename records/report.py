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
    formats = sorted({r.source.suffix.lstrip(".") for r in extract.reports.values() if r.source})
    console.print(
        f"Extract {extract.path} (extract_date {manifest.extract_date}, {'/'.join(formats)} files)"
    )

    counts = Table(title="Rows per table")
    # Table names in full even on an 80-column terminal.
    counts.add_column("table", no_wrap=True, min_width=max(map(len, extract.reports), default=5))
    for name in ("read", "loaded", "rejected"):
        counts.add_column(name, justify="right", no_wrap=True)
    counts.add_column("complete to", no_wrap=True)
    for report in extract.reports.values():
        counts.add_row(
            report.table,
            f"{report.read:,}",
            f"{report.loaded:,}",
            f"[red]{report.rejected:,}[/]" if report.rejected else "0",
            str(manifest.complete_to_for(report.table)),
        )
    reports = extract.reports.values()
    counts.add_section()
    counts.add_row(
        "total",
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
    top.add_column("table", no_wrap=True)
    top.add_column("reason")
    top.add_column("rows", justify="right", no_wrap=True)
    for (table, reason), n in reasons.most_common(TOP_REASONS):
        top.add_row(table, reason, f"{n:,}")
    console.print(top)
