"""`manage.py rater_model` and `manage.py plan` on a project in PostgreSQL (issue #18's interfaces)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Image, Rating
from annotation.services.agreement_snapshot import agreement_snapshot_create
from tests.factories import add_member, make_project, make_user
from tests.support.ratermodel_seed import seed_simulated

pytestmark = pytest.mark.django_db


def call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_rater_model_json_has_the_documented_shape_and_finds_the_odd_rater():
    project, raters = seed_simulated("rm")
    out = json.loads(call("rater_model", "--project", "rm", "--json"))
    assert out["converged"] is True and out["images"] == 300 and out["seconds"] > 0
    assert {r["rater"] for r in out["raters"]} == {u.email for u in raters}
    odd = next(r for r in out["raters"] if r["rater"] == raters[-1].email)
    first = odd["emotions"][0]
    assert set(first) >= {"emotion", "presence_shift", "presence_ci", "intensity_shift", "intensity_ci"}
    assert first["emotion"] == "Amusement"  # taxonomy order
    assert len(odd["emotions"]) == 40
    shifts = [e["presence_shift"] for e in odd["emotions"]]
    assert np.mean(shifts) > 0.5
    lows = [e["presence_ci"][0] for e in odd["emotions"]]
    assert np.mean([lo > 0 for lo in lows]) > 0.7
    # +1 on its present ratings, diluted by the faint extra presences (2s) it adds; 1 of 5 in the panel
    assert np.mean([e["intensity_shift"] for e in odd["emotions"]]) > 0.2
    assert all("marks presence more readily than the panel" in g["words"] for g in odd["groups"])
    others = [r for r in out["raters"] if r["rater"] != raters[-1].email]
    assert all(np.mean([e["presence_shift"] for e in r["emotions"]]) < 0 for r in others)


def test_rater_model_text_and_errors():
    seed_simulated("rmt", n_images=120)
    text = call("rater_model", "--project", "rmt")
    assert "converged" in text and "rmt-r4@example.org" in text and "steps" in text
    make_project(slug="empty")
    with pytest.raises(CommandError, match="project 'empty' has no ratings to fit"):
        call("rater_model", "--project", "empty")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call("rater_model", "--project", "nope")


def test_rater_model_binary_mode_is_dawid_skene():
    project = make_project(slug="yn", mode="binary")
    raters = [make_user(email=f"yn{i}@example.org") for i in range(3)]
    add_member(project, *raters)
    rng = np.random.default_rng(0)
    images = Image.objects.bulk_create([Image(project=project, name=f"b{i}.jpg", sha256=f"{i:064x}") for i in range(80)])
    votes = []
    for im in images:
        truth = rng.random() < 0.4
        for r in raters:
            yes = int(rng.random() < (0.85 if truth else 0.1))
            votes.append(Rating(project=project, image=im, rater=r, emotion=3, values=[yes], scale_max=1,
                                taxonomy_version="emonet-face-1", source="import"))
    Rating.objects.bulk_create(votes)
    out = json.loads(call("rater_model", "--project", "yn", "--json"))
    assert out["mode"] == "binary" and out["converged"]
    assert all(0.6 < r["sensitivity"] <= 1 and 0.6 < r["specificity"] <= 1 for r in out["raters"])
    assert "escalation" in out["warnings"][0]


def test_plan_json_rows_from_the_latest_snapshot():
    project, _ = seed_simulated("pl", n_images=150)
    with pytest.raises(CommandError, match="has no agreement snapshot yet"):
        call("plan", "--project", "pl")
    agreement_snapshot_create(project, n_boot=100)
    rows = json.loads(call("plan", "--project", "pl", "--json", "--target-reliability", "0.7"))
    assert isinstance(rows, list) and rows[0]["ratings_per_image"] == 2
    for row in rows:
        assert set(row) >= {"ratings_per_image", "label_reliability", "alpha_ci_width"}
    rel = [r["label_reliability"] for r in rows]
    width = [r["alpha_ci_width"] for r in rows]
    assert rel == sorted(rel) and width == sorted(width, reverse=True)
    assert any(r["meets_target"] for r in rows)
    more = json.loads(call("plan", "--project", "pl", "--json", "--images", "1500"))
    assert more[0]["images"] == 1500 and more[0]["alpha_ci_width"] < rows[0]["alpha_ci_width"]
    text = call("plan", "--project", "pl")
    assert "ratings per image" in text and "reliability" in text
    with pytest.raises(CommandError, match="target reliability 1.5 is out of range"):
        call("plan", "--project", "pl", "--target-reliability", "1.5")
