"""Tables that fit a terminal of 80 columns: numbers are shortened (12.3k), and the first
column, a name, is cut with `~` when the rest would not fit."""

from __future__ import annotations

from mq.cli.common import WIDTH

GAP = "  "
MIN_NAME = 8  # a name column is never cut shorter than this


def count(n: int) -> str:
    """`n` in at most 5 characters up to a trillion: 9999, 12.3k, 4.5M, 120G."""
    if n < 10_000:
        return str(n)
    size, suffix = (10**9, "G") if n >= 10**9 else (10**6, "M") if n >= 10**6 else (10**3, "k")
    scaled = n / size
    return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def table(headers: list[str], rows: list[list[str]], width: int = WIDTH,
          last_free: bool = False) -> list[str]:
    """Aligned columns, the first (a name) left and the others right, within `width`.

    The first column gives up characters when the line would be too long; with `last_free`
    the last column (a message body) is left-aligned and cut instead.
    """
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    victim = len(widths) - 1 if last_free else 0
    if excess > 0:
        widths[victim] = max(MIN_NAME, widths[victim] - excess)

    def fmt(cells: list[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            c = cut(c, w)
            out.append(c.ljust(w) if i in (0, victim) else c.rjust(w))
        return GAP.join(out).rstrip()

    return [fmt(headers)] + [fmt(r) for r in rows]
