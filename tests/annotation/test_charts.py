"""annotation.charts: pure SVG, parsed back with xml.etree to check marks, positions and titles."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from annotation import charts as c

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    return root


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text") if t.get("class") == cls]


def test_every_chart_has_a_title_and_axis_labels():
    svgs = [
        c.bar_chart([c.Bar("a", 1)], title="Bars", x_label="X bars", y_label="Y bars"),
        c.interval_chart([c.IntervalRow("a", 0.5)], title="Alpha", x_label="X alpha", y_label="Y alpha"),
        c.line_chart([c.Series("s", [c.Point(0, 1)])], title="Lines", x_label="X lines", y_label="Y lines"),
        c.heatmap(["r"], ["c"], [[c.Cell(0.5)]], title="Heat", x_label="X heat", y_label="Y heat"),
        c.spread_chart([c.SpreadRow("Joy", [1, 2])], title="Spread", scale_max=7, x_label="X sp", y_label="Y sp"),
    ]
    for svg, name in zip(svgs, ["bars", "alpha", "lines", "heat", "sp"], strict=True):
        root = parse(svg)
        title = root.find(f"{NS}title")
        assert title is not None and title.text and root.get("aria-labelledby") == title.get("id")
        assert sorted(texts(root, "axis-label")) == sorted([f"X {name}", f"Y {name}"])


def test_bar_chart_heights_are_proportional_and_titled():
    root = parse(c.bar_chart([c.Bar("0", 10), c.Bar("1", 30, "thirty"), c.Bar("2", 0)], title="t", x_label="x",
                             y_label="y", reference=20, reference_label="target"))
    bars = root.findall(f".//{NS}rect[@class='bar']")
    assert [b.get("data-label") for b in bars] == ["0", "1", "2"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == pytest.approx(3 * heights[0], rel=1e-3) and heights[2] == 0
    xs = [float(b.get("x")) for b in bars]
    assert xs == sorted(xs)
    bottoms = {round(float(b.get("y")) + float(b.get("height")), 2) for b in bars}
    assert len(bottoms) == 1  # one baseline
    assert [b.find(f"{NS}title").text for b in bars] == ["0: 10", "thirty", "2: 0"]
    ref = root.find(f".//{NS}line[@class='reference']")
    baseline = bottoms.pop()
    assert baseline - float(ref.get("y1")) == pytest.approx(2 * heights[0], rel=1e-3)


def test_interval_chart_sorts_marks_thresholds_and_intervals():
    rows = [c.IntervalRow("low", 0.1, 0.0, 0.2, share=0.1, key="3"),
            c.IntervalRow("none", None, note="fewer than 2 ratings"),
            c.IntervalRow("high", 0.85, 0.8, 0.9, share=0.4, key="1"),
            c.IntervalRow("neg", -0.1, -0.3, 0.05, share=0.2)]
    root = parse(c.interval_chart(rows, title="alpha", x_label="alpha", y_label="emotion"))
    groups = root.findall(f".//{NS}g[@class='row']")
    assert [g.get("data-label") for g in groups] == ["high", "low", "neg", "none"]
    assert groups[0].get("data-value") == "0.85" and groups[0].get("data-low") == "0.8"
    assert groups[0].get("data-key") == "1" and groups[3].get("data-value") == ""
    assert groups[0].find(f"{NS}title").text == "high: alpha 0.850, 95% CI 0.800 to 0.900, non-zero share 0.40"
    assert "fewer than 2 ratings" in groups[3].find(f"{NS}title").text
    thresholds = {float(t.get("data-value")): float(t.get("x1")) for t in root.findall(f".//{NS}line[@class='threshold']")}
    assert set(thresholds) == {0.0, 0.667, 0.8}
    x0, x8 = thresholds[0.0], thresholds[0.8]

    def bar(g: ET.Element) -> ET.Element:
        return g.find(f"{NS}rect[@class='bar']")

    # the 0.85 bar starts at 0 and ends just right of the 0.8 line; the negative bar ends at 0
    high = bar(groups[0])
    assert float(high.get("x")) == pytest.approx(x0, abs=0.01)
    assert float(high.get("x")) + float(high.get("width")) > x8
    neg = bar(groups[2])
    assert float(neg.get("x")) + float(neg.get("width")) == pytest.approx(x0, abs=0.02)
    # whisker from low to high: M{low} ... H{high}
    d = groups[0].find(f"{NS}path[@class='ci']").get("d")
    lo, hi = float(d[1:].split(" ")[0]), float(d.split("H")[1].split("M")[0])
    assert lo == pytest.approx(x8, abs=0.01) and hi > lo
    shares = [float(g.find(f"{NS}rect[@class='share']").get("width")) for g in groups[:3]]
    assert shares[0] == pytest.approx(4 * shares[1], rel=0.01)
    assert groups[3].find(f"{NS}rect[@class='bar']") is None


def test_text_is_escaped():
    svg = c.bar_chart([c.Bar("<b>&", 1, 'say "hi" <script>')], title="A & B <x>", x_label="x", y_label="y")
    root = parse(svg)
    assert root.find(f"{NS}title").text == "A & B <x>"
    assert "<script>" not in svg and root.find(f".//{NS}rect[@class='bar']").get("data-label") == "<b>&"


def test_line_chart_breaks_at_missing_values_and_titles_points():
    root = parse(c.line_chart([c.Series("a", [c.Point(0, 0.1), c.Point(1, 0.2), c.Point(2, None), c.Point(3, 0.3),
                                                c.Point(4, 0.4, "last")]),
                               c.Series("b", [c.Point(0, 0.5)])], title="t", x_label="x", y_label="y",
                              references=[(0.667, "0.667")]))
    series = root.findall(f".//{NS}g[@class='series']")
    assert [s.get("data-label") for s in series] == ["a", "b"]
    points = series[0].findall(f"{NS}circle")
    assert len(points) == 4 and points[-1].find(f"{NS}title").text == "last"
    assert series[0].find(f"{NS}path").get("d").count("M") == 2  # a gap at the missing point
    ys = [float(p.get("cy")) for p in points]
    assert ys == sorted(ys, reverse=True)  # higher values are drawn higher up
    assert series[1].find(f"{NS}path") is None  # one point: no line
    assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "legend"] == ["a", "b"]


def test_heatmap_colours_values_and_marks_weak_cells():
    root = parse(c.heatmap(["r1", "r2"], ["c1", "c2"], [[c.Cell(0.9), c.Cell(None)], [c.Cell(-0.2, weak=True),
                                                                                       c.Cell(0.1, "ten")]],
                           title="t", x_label="x", y_label="y"))
    cells = root.findall(f".//{NS}g[@class]")
    cells = [g for g in cells if g.get("class", "").startswith("cell ") or g.get("class") == "cell"]
    assert [(g.get("data-row"), g.get("data-col")) for g in cells] == [("r1", "c1"), ("r1", "c2"), ("r2", "c1"),
                                                                        ("r2", "c2")]
    weak = [g for g in cells if "weak" in g.get("class")]
    assert len(weak) == 1 and weak[0].find(f"{NS}rect").get("stroke-dasharray")
    fills = [g.find(f"{NS}rect").get("fill") for g in cells]
    assert fills[1] == "#eef0f3"  # missing
    assert c.cell_color(0.9, -0.2, 1.0) != c.cell_color(0.1, -0.2, 1.0)
    assert c.cell_color(-0.2, -0.2, 1.0).startswith("#c4")  # orange for disagreement below chance
    assert cells[3].find(f"{NS}title").text == "ten"
    r1 = [float(g.find(f"{NS}rect").get("y")) for g in cells]
    assert r1[0] == r1[1] < r1[2] == r1[3]


def test_spread_chart_draws_range_dots_and_model():
    root = parse(c.spread_chart([c.SpreadRow("Joy", [0, 3, 3, 7], model=2.5), c.SpreadRow("Fear", [])],
                                title="s", scale_max=7))
    rows = root.findall(f".//{NS}g[@class='row']")
    assert rows[0].get("data-spread") == "7" and rows[1].get("data-spread") == "0"
    dots = rows[0].findall(f"{NS}circle[@class='rating']")
    assert [(d.get("data-value"), d.get("data-count")) for d in dots] == [("0", "1"), ("3", "2"), ("7", "1")]
    assert float(dots[1].get("r")) > float(dots[0].get("r"))  # two raters said 3
    line = rows[0].find(f"{NS}line[@class='range']")
    assert float(line.get("x1")) == float(dots[0].get("cx")) and float(line.get("x2")) == float(dots[2].get("cx"))
    model = rows[0].find(f"{NS}path[@class='model']")
    assert model.get("data-value") == "2.5"
    assert rows[0].find(f"{NS}title").text == "Joy: ratings 0, 3, 3, 7; spread 7; model 2.50"


def test_empty_inputs_still_make_valid_charts():
    for svg in (c.bar_chart([], title="t", x_label="x", y_label="y"),
                c.interval_chart([], title="t", x_label="x", y_label="y"),
                c.line_chart([], title="t", x_label="x", y_label="y"),
                c.heatmap([], [], [], title="t", x_label="x", y_label="y"),
                c.spread_chart([], title="t", scale_max=7)):
        parse(svg)


def test_nice_ticks_and_fmt():
    assert c.nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert c.nice_ticks(-0.2, 1.0, 6) == [-0.2, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert c.fmt(None) == "–" and c.fmt(1234.0) == "1,234" and c.fmt(0.12345) == "0.123"
