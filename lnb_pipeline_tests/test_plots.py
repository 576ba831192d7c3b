"""The stock-change histogram: valid standalone SVG, the right counts, and a Markdown image Dagster can show."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import polars as pl

from lnb_pipeline.rules.plots import (
    CHANGE_BUCKETS,
    change_histogram_svg,
    svg_markdown_image,
)
from lnb_pipeline.rules.stock import build_preview

SVG = "{http://www.w3.org/2000/svg}"


def known_preview() -> pl.DataFrame:
    """Changes on every bucket edge, plus one key of each status that is not plotted."""
    changes = [-150, -100, -99, -50, -9, -5, -1, 1, 2, 9, 10, 49, 50, 100]
    lnb_keys = [f"C{index:02d}" for index in range(len(changes))] + ["SAME", "BLANK", "GONE", "DUP"]
    lnb_stock = [200] * len(changes) + [7, None, 3, 4]
    new_keys = [f"C{index:02d}" for index in range(len(changes))] + ["SAME", "BLANK", "NEW1", "NEW2"]
    new_stock = [200 + change for change in changes] + [7, 5, 1, 2]
    return build_preview(pl.DataFrame({"key": new_keys, "quantity": new_stock}),
                         pl.DataFrame({"key": lnb_keys, "in_stock": lnb_stock}), excluded_keys=["DUP"])


def texts(svg: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def bar_counts(svg: str) -> list[int]:
    return [int(element.text or "") for element in ET.fromstring(svg).iter(f"{SVG}text")
            if element.get("class") == "count"]


def test_histogram_counts_keys_per_bucket_edges_included() -> None:
    svg = change_histogram_svg(known_preview())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and (root.get("width"), root.get("height")) == ("480", "220")
    assert [label for label, _, _ in CHANGE_BUCKETS] == ["100+", "50–99", "10–49", "1–9", "1–9", "10–49", "50–99",
                                                         "100+"]
    assert bar_counts(svg) == [2, 2, 0, 3, 3, 2, 1, 1]
    assert len([rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]) == 7
    drawn = texts(svg)
    assert "Stock changes by magnitude" in drawn and "keys" in drawn
    assert "− decrease (units)" in drawn and "+ increase (units)" in drawn
    assert "14 changed · 1 unchanged · 1 changed from a blank LNB quantity" in drawn
    assert "2 new to LNB · 1 missing from Shopify" in drawn
    assert "no changes" not in drawn


def test_decreases_and_increases_differ_in_colour() -> None:
    root = ET.fromstring(change_histogram_svg(known_preview()))
    fills = [rect.get("fill") for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]
    assert len(set(fills[:3])) == 1 and len(set(fills[3:])) == 1 and fills[0] != fills[-1]


def test_svg_is_self_contained() -> None:
    svg = change_histogram_svg(known_preview())
    assert not re.search(r"href|<script|<style|@import|url\(|<image|font-face", svg)


def test_no_changes_says_so_instead_of_drawing_bars() -> None:
    empty = known_preview().head(0)
    unchanged_only = build_preview(pl.DataFrame({"key": ["A"], "quantity": [3]}),
                                   pl.DataFrame({"key": ["A"], "in_stock": [3]}))
    for preview in (empty, unchanged_only):
        svg = change_histogram_svg(preview)
        root = ET.fromstring(svg)
        assert "no changes" in texts(svg)
        assert bar_counts(svg) == []
        assert not [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]
    assert "0 changed · 1 unchanged" in texts(change_histogram_svg(unchanged_only))


def test_markdown_image_decodes_back_to_the_svg() -> None:
    svg = change_histogram_svg(known_preview())
    markdown = svg_markdown_image(svg, "Stock changes by magnitude")
    match = re.fullmatch(r"!\[(.*)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match is not None
    assert match.group(1) == "Stock changes by magnitude"
    assert base64.b64decode(match.group(2)).decode("utf-8") == svg


def test_markdown_alt_text_cannot_break_the_image_syntax() -> None:
    markdown = svg_markdown_image("<svg/>", "odd ] alt\nwith [brackets]")
    assert markdown.startswith(r"![odd \] alt with \[brackets\]](data:image/svg+xml;base64,")
