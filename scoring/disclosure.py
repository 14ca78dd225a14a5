"""Small-number suppression for aggregate outputs (counts that leave the service as tables).

NHS statistical publications do not show small counts, which could identify people: NHS England's
HES Analysis Guide suppresses counts from 1 to 7 and rounds others to the nearest 5 (its
"disclosure control" rules), and many ICS dashboards use a threshold of 5. casefinder shows a count
from 1 to `below - 1` as "<below" (`[serving] suppress_below`, default 5; 0 shows every count).
Zero stays visible: it discloses nobody. Where the cells of a group add up to a total that is
also shown (a neighbourhood's bands add up to its scored people), a single suppressed cell could
be worked out by subtraction, so the next smallest cell is suppressed with it (secondary
suppression).
"""

from __future__ import annotations

from collections.abc import Mapping

Count = int | str


def suppressed(count: int, below: int) -> Count:
    """`count`, or "<below" when it is from 1 to below - 1."""
    count = int(count)
    return f"<{below}" if 0 < count < below else count


def suppressed_group(counts: Mapping[str, int], below: int) -> dict[str, Count]:
    """The cells of a group whose total is shown elsewhere: small cells suppressed, and when just
    one is, the next smallest non-zero cell too, so neither can be worked out from the total."""
    out: dict[str, Count] = {k: suppressed(v, below) for k, v in counts.items()}
    hidden = [k for k, v in out.items() if isinstance(v, str)]
    if len(hidden) == 1:
        shown = sorted((int(v), k) for k, v in counts.items() if k not in hidden and int(v) > 0)
        if shown:
            out[shown[0][1]] = f"<{below}" if shown[0][0] < below else "suppressed"
    return out
