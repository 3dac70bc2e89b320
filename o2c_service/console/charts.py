"""Small bar charts drawn on the server as SVG: no script, no charting library, and
the figures stay readable without the picture (each chart has a title and its values
as text, and the page shows the same figures in a table)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 150
BAR_WIDTH = 220
VALUE_WIDTH = 90


def bars(title: str, rows: Sequence[tuple[str, Decimal | int]], unit: str = "") -> Markup:
    """A horizontal bar per row, scaled to the largest; `unit` follows each value."""
    largest = max((Decimal(value) for _, value in rows), default=Decimal(0))
    height = max(len(rows), 1) * (BAR_HEIGHT + GAP)
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(rows):
        y = index * (BAR_HEIGHT + GAP)
        share = Decimal(value) / largest if largest > 0 else Decimal(0)
        length = int(share * BAR_WIDTH)
        text_y = y + BAR_HEIGHT - 6
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{max(length, 1)}" height="{BAR_HEIGHT}" '
            f'class="bar"></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{text_y}">'
            f"{escape(str(value))}{escape(unit)}</text>"
        )
    if not rows:
        parts.append(f'<text x="0" y="{BAR_HEIGHT - 6}">nothing to show</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
