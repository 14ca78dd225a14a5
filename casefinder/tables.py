"""Tables for the terminal that fit its width without cutting a word: every column is at least
as wide as its longest word (header or cell), text wraps between words, numbers carry thousands
separators, and a table too wide for the terminal is printed as several, each repeating the
first (name) column."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

# Per column: its padding (one space on the right) and the space between columns.
_COLUMN_EXTRA = 2
# Columns up to this wide are kept on one line when the table can be split instead.
SHORT = 16


def cell(value: Any, digits: int = 3) -> str:
    """A value as a table cell: integers with thousands separators, floats to `digits`
    decimals (also with separators), missing as blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer() and abs(number) >= 1000:
            return f"{number:,.0f}"
        return f"{number:,.{digits}f}"
    return str(value)


def _longest_word(text: str) -> int:
    return max((len(word) for word in str(text).split()), default=0)


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("+", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def print_table(
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    keep: int = 1,
) -> None:
    """Print `rows` under `headers` fitted to the console's width (see the module docstring).
    Numeric columns are right-aligned; `keep` leading columns repeat in every part."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [
        max([_longest_word(h), *(_longest_word(r[i]) for r in texts)])
        for i, h in enumerate(headers)
    ]
    natural = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    # Short columns are packed at their full width (a table splits rather than wrap them);
    # long text wraps between words.
    packed = [n if n <= SHORT else w for n, w in zip(natural, widths, strict=True)]
    numeric = [bool(texts) and all(_is_number(r[i]) or not r[i] for r in texts)
               for i in range(len(headers))]  # fmt: skip
    room = max(console.width - 1, 20)
    kept = list(range(min(keep, len(headers))))
    parts: list[list[int]] = []
    current = list(kept)
    used = sum(packed[i] + _COLUMN_EXTRA for i in kept)
    for i in range(len(kept), len(headers)):
        need = packed[i] + _COLUMN_EXTRA
        if used + need > room and len(current) > len(kept):
            parts.append(current)
            current, used = list(kept), sum(packed[k] + _COLUMN_EXTRA for k in kept)
        current.append(i)
        used += need
    parts.append(current)
    for n, columns in enumerate(parts):
        label = title if n == 0 else (f"{title} (continued)" if title else None)
        # Each column gets its longest word, then the room left goes to the columns whose text
        # would otherwise wrap, narrowest first, up to their full width.
        width = {i: widths[i] for i in columns}
        spare = room - sum(width[i] + _COLUMN_EXTRA for i in columns)
        for i in sorted(columns, key=lambda c: (natural[c] > SHORT, natural[c] - widths[c])):
            extra = min(max(spare, 0), natural[i] - width[i])
            width[i] += extra
            spare -= extra
        table = Table(
            title=label,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            header_style="bold",
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        for i in columns:
            table.add_column(
                headers[i],
                width=width[i],
                justify="right" if numeric[i] else "left",
                overflow="fold",
            )
        for row in texts:
            table.add_row(*(row[i] for i in columns))
        console.print(table)


def _markdown_row(line: str) -> list[str]:
    return [part.strip() for part in line.strip().strip("|").split("|")]


def print_markdown(console: Console, text: str) -> None:
    """Print Markdown with its tables as `print_table`s (fitted, no cut words) and the rest
    through rich's Markdown."""
    from rich.markdown import Markdown

    lines = text.splitlines()
    prose: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and "---" in lines[i + 1]:
            if prose:
                console.print(Markdown("\n".join(prose)))
                prose = []
            headers = _markdown_row(lines[i])
            i += 2
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_markdown_row(lines[i]))
                i += 1
            print_table(console, headers, rows)
            continue
        prose.append(lines[i])
        i += 1
    if prose:
        console.print(Markdown("\n".join(prose)))
