"""The admin console's SVG charts: well-formed, to scale, described in words, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from printsrv.web.admin.charts import bar_chart, hbar_chart, level_meter

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (the helper's own output, not untrusted data)


def bars(svg: ET.Element) -> list[ET.Element]:
    return [rect for rect in svg.iter(f"{SVG}rect")]


def test_a_bar_chart_is_an_image_with_a_title_and_a_description_of_its_figures() -> None:
    svg = parse(bar_chart("c", "Pages per day", ["1 Dec", "2 Dec", "3 Dec"], [4, 10, 0]))

    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c-title c-desc"
    assert svg.find(f"{SVG}title").text == "Pages per day"
    assert svg.find(f"{SVG}desc").text == "3 values, 14 in total; the largest is 10 (2 Dec)."
    heights = [float(rect.get("height")) for rect in bars(svg)]
    # The axis tops at 10, so the bars stand 40 %, 100 % and 0 % of the plot's height.
    assert heights[1] > 0 and heights[0] == round(heights[1] * 0.4, 1) and heights[2] == 0
    assert [rect.find(f"{SVG}title").text for rect in bars(svg)] == [
        "1 Dec: 4",
        "2 Dec: 10",
        "3 Dec: 0",
    ]


def test_money_bars_label_their_axis_in_money_and_all_zero_says_so() -> None:
    money = bar_chart("m", "Spent", ["a", "b"], [Decimal("0.40"), Decimal("1.20")], fmt=str)
    zero = bar_chart("z", "Spent", ["a", "b"], [0, 0])

    axis = [t.text for t in parse(money).iter(f"{SVG}text")]
    assert axis[:3] == ["0.00", "1.00", "2.00"]
    assert parse(zero).find(f"{SVG}desc").text == "All values are zero."


def test_horizontal_bars_are_to_scale_and_labels_are_escaped() -> None:
    svg = parse(hbar_chart("h", "Top <groups>", [("a&b", 100), ("<c>", 50)]))

    widths = [float(rect.get("width")) for rect in bars(svg)]
    assert widths[1] == widths[0] / 2
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "a&b" in texts and "<c>" in texts
    assert svg.find(f"{SVG}title").text == "Top <groups>"


def test_a_low_level_meter_has_a_stronger_outline_and_an_accessible_name() -> None:
    low = parse(level_meter(8, "#00FFFF", low=True, label="Cyan: 8%"))
    full = parse(level_meter(100, "#000000", low=False, label="Black: 100%"))

    assert low.get("aria-label") == "Cyan: 8%"
    assert bars(low)[0].get("stroke-width") == "2"
    assert bars(full)[0].get("stroke-width") == "1"
    assert float(bars(full)[1].get("width")) > float(bars(low)[1].get("width"))
