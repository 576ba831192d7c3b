"""Small plots for Dagster metadata, drawn as plain SVG so the pipeline needs no plotting library.

The SVG is self-contained (no fonts, scripts or links to fetch) and goes into Markdown metadata as
a base64 ``data:`` image, which the Dagster UI's Markdown sanitiser lets through for ``img``.
"""

from __future__ import annotations

import base64

import polars as pl

from lnb_pipeline.rules.stock import (
    STATUS_CHANGED,
    STATUS_MISSING_FROM_SHOPIFY,
    STATUS_NEW_TO_LNB,
    STATUS_UNCHANGED,
)

CHANGE_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("100+", None, -100),
    ("50–99", -99, -50),
    ("10–49", -49, -10),
    ("1–9", -9, -1),
    ("1–9", 1, 9),
    ("10–49", 10, 49),
    ("50–99", 50, 99),
    ("100+", 100, None),
)
"""(label, lowest, highest change) left to right; the first half are decreases, labelled by magnitude."""

WIDTH, HEIGHT = 480, 220
_PLOT_LEFT, _PLOT_RIGHT = 44, WIDTH - 12
_PLOT_TOP, _BASELINE = 40, 150
_BAR_MAX = _BASELINE - _PLOT_TOP - 16
"""Room above the tallest bar for its count."""
_SLOT = (_PLOT_RIGHT - _PLOT_LEFT) / len(CHANGE_BUCKETS)
_BAR_WIDTH = 34
DECREASE_COLOUR, INCREASE_COLOUR = "#d55e00", "#0072b2"
"""Okabe–Ito vermillion and blue: told apart with the common colour-vision deficiencies too."""
_INK, _MUTED = "#222", "#555"


def _text(x: float, y: float, content: str, *, size: float = 11, fill: str = _INK, anchor: str = "middle",
          extra: str = "") -> str:
    """One ``<text>`` element; every string drawn here is our own, so nothing needs escaping."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}"{extra}>'
            f"{content}</text>")


def _bucket_counts(preview: pl.DataFrame) -> list[int]:
    """Keys per ``CHANGE_BUCKETS`` entry, counting only changes with a number on both sides."""
    change = pl.col("change")
    conditions = [
        (change >= low if low is not None else pl.lit(True)) & (change <= high if high is not None else pl.lit(True))
        for _, low, high in CHANGE_BUCKETS
    ]
    counts = preview.filter((pl.col("status") == STATUS_CHANGED) & change.is_not_null()).select(
        condition.sum().alias(str(index)) for index, condition in enumerate(conditions))
    return [int(count) for count in counts.row(0)]


def change_histogram_svg(preview: pl.DataFrame) -> str:
    """Keys per change magnitude in a ``build_preview`` frame, as a ~480×220 SVG bar chart.

    A histogram shows at a glance whether a push is routine (many small moves) or suspicious (a
    wall of drops by 100 or more); the largest-changes table cannot. Keys without a change to
    measure (new to LNB, missing from Shopify, LNB quantity blank) are counted in the caption
    rather than plotted.
    """
    counts = _bucket_counts(preview)
    statuses = dict(preview.group_by("status").len().iter_rows())
    changed = int(statuses.get(STATUS_CHANGED, 0))
    blank = changed - sum(counts)
    middle = (_PLOT_LEFT + _PLOT_RIGHT) / 2
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
         f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" role="img">'),
        "<title>Stock changes by magnitude</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        _text(12, 22, "Stock changes by magnitude", size=14, anchor="start", extra=' font-weight="bold"'),
        _text(16, (_PLOT_TOP + _BASELINE) / 2, "keys", fill=_MUTED,
              extra=f' transform="rotate(-90 16 {(_PLOT_TOP + _BASELINE) / 2:.1f})"'),
        f'<line x1="{_PLOT_LEFT}" y1="{_BASELINE}" x2="{_PLOT_RIGHT}" y2="{_BASELINE}" stroke="{_MUTED}"/>',
    ]
    tallest = max(counts)
    if tallest:
        parts.append(f'<line x1="{middle:.1f}" y1="{_PLOT_TOP}" x2="{middle:.1f}" y2="{_BASELINE}" stroke="#bbb" '
                     'stroke-dasharray="3 3"/>')
    else:
        parts.append(_text(middle, (_PLOT_TOP + _BASELINE) / 2, "no changes", size=13, fill=_MUTED,
                           extra=' font-style="italic"'))
    for index, ((label, _, _), count) in enumerate(zip(CHANGE_BUCKETS, counts)):
        centre = _PLOT_LEFT + _SLOT * (index + 0.5)
        colour = DECREASE_COLOUR if index < len(CHANGE_BUCKETS) // 2 else INCREASE_COLOUR
        if tallest:
            height = max(2, round(count / tallest * _BAR_MAX)) if count else 0
            if count:
                parts.append(f'<rect class="bar" x="{centre - _BAR_WIDTH / 2:.1f}" y="{_BASELINE - height}" '
                             f'width="{_BAR_WIDTH}" height="{height}" fill="{colour}"/>')
            parts.append(_text(centre, _BASELINE - height - 4, f"{count:,}", fill=_INK if count else "#999",
                               extra=' class="count"'))
        parts.append(_text(centre, _BASELINE + 14, label, fill=_MUTED))
    parts += [
        _text((_PLOT_LEFT + middle) / 2, _BASELINE + 30, "− decrease (units)", fill=DECREASE_COLOUR),
        _text((middle + _PLOT_RIGHT) / 2, _BASELINE + 30, "+ increase (units)", fill=INCREASE_COLOUR),
        _text(WIDTH / 2, HEIGHT - 22,
              f"{sum(counts):,} changed · {int(statuses.get(STATUS_UNCHANGED, 0)):,} unchanged"
              + (f" · {blank:,} changed from a blank LNB quantity" if blank else ""),
              size=10.5, fill=_MUTED),
        _text(WIDTH / 2, HEIGHT - 8,
              f"{int(statuses.get(STATUS_NEW_TO_LNB, 0)):,} new to LNB · "
              f"{int(statuses.get(STATUS_MISSING_FROM_SHOPIFY, 0)):,} missing from Shopify",
              size=10.5, fill=_MUTED),
        "</svg>",
    ]
    return "\n".join(parts)


def svg_markdown_image(svg: str, alt: str) -> str:
    """``svg`` as an inline Markdown image, for ``dg.MetadataValue.md``: nothing to host or link to."""
    safe_alt = " ".join(alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").split())
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{safe_alt}](data:image/svg+xml;base64,{encoded})"
