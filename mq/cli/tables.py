"""Tables that fit a terminal of 80 columns: numbers are shortened (12.3k), and text columns
(names, bodies) are cut with `~` when the line would not fit."""

from __future__ import annotations

from mq.cli.common import WIDTH

GAP = "  "
MIN_NAME = 8  # a text column is never cut shorter than this


def count(n: int) -> str:
    """`n` in at most 5 characters up to a trillion: 9999, 12.3k, 4.5M, 120G."""
    if n < 10_000:
        return str(n)
    size, suffix = (10**9, "G") if n >= 10**9 else (10**6, "M") if n >= 10**6 else (10**3, "k")
    scaled = n / size
    return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def table(headers: list[str], rows: list[list[str]], text: tuple[int, ...] = (0,),
          width: int = WIDTH) -> list[str]:
    """Aligned columns within `width`: those in `text` (names, bodies) left-aligned, and cut,
    the widest first, when the line would be too long; the others (numbers) right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    while excess > 0:
        widest = max(text, key=lambda i: widths[i])
        if widths[widest] <= MIN_NAME:
            break  # numbers alone are wider than the terminal: nothing left to cut
        widths[widest] -= 1
        excess -= 1

    def fmt(cells: list[str]) -> str:
        return GAP.join(cut(c, w).ljust(w) if i in text else c.rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [fmt(headers)] + [fmt(r) for r in rows]
