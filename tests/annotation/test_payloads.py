"""annotation/payloads.py declares what is really stored: snapshot payloads (intensity, binary, a
project without ratings), release configs, inputs and summaries, checked key by key (nested
TypedDicts too)."""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import pytest

from annotation import payloads
from annotation.models import Image, Rating
from annotation.services.agreement_snapshot import agreement_compute
from annotation.services.releases import release_build, release_create
from tests.factories import make_image, make_project, make_user
from tests.support.seed import populate, seed_rated_project

pytestmark = pytest.mark.django_db


def conforms(value: dict[str, Any], shape: Any, where: str = "") -> list[str]:
    """Problems of `value` against the TypedDict `shape`: missing required keys, undeclared keys,
    and the same for nested TypedDicts (also inside lists)."""
    problems = []
    keys = set(value)
    missing = shape.__required_keys__ - keys
    extra = keys - shape.__required_keys__ - shape.__optional_keys__
    problems += [f"{where}{k}: missing" for k in sorted(missing)]
    problems += [f"{where}{k}: not declared" for k in sorted(extra)]
    hints = typing.get_type_hints(shape)
    for key in keys & set(hints):
        hint = hints[key]
        for arg in (hint, *typing.get_args(hint)):
            inner = typing.get_args(arg)
            if typing.is_typeddict(arg) and isinstance(value[key], dict):
                problems += conforms(value[key], arg, f"{where}{key}.")
            elif typing.get_origin(arg) is list and inner and typing.is_typeddict(inner[0]):
                for i, item in enumerate(value[key] or []):
                    problems += conforms(item, inner[0], f"{where}{key}[{i}].")
    return problems


def test_intensity_snapshot_payload():
    data = seed_rated_project(slug="payload", n_images=12, n_raters=4, per_image=3)
    assert conforms(data["snapshot"].payload, payloads.SnapshotPayload) == []


def test_snapshot_payload_without_ratings():
    assert conforms(agreement_compute(make_project(), n_boot=0), payloads.SnapshotPayload) == []


def test_binary_snapshot_payload():
    project = make_project(mode="binary")
    raters = [make_user() for _ in range(3)]
    for i in range(4):
        image: Image = make_image(project)
        for k, rater in enumerate(raters):
            Rating.objects.create(project=project, image=image, rater=rater, emotion=i % 2, values=[(i + k) % 2],
                                  scale_max=1, taxonomy_version=project.taxonomy_version)
    payload = agreement_compute(project, n_boot=20)
    assert payload["mode"] == "binary" and conforms(payload, payloads.SnapshotPayload) == []


def test_release_config_inputs_and_summary():
    project = make_project(slug="payload-release")
    populate(project, 40, [make_user() for _ in range(4)], np.random.default_rng(3))
    release = release_build(release_create(project=project, version="1.0.0", n_boot=20))
    assert release.status == "built"
    assert conforms(release.config, payloads.ReleaseConfig) == []
    assert conforms(release.inputs, payloads.ReleaseInputs) == []
    assert conforms(release.summary, payloads.ReleaseSummary) == []


def test_the_checker_finds_missing_and_undeclared_keys():
    assert conforms({"rater": "r", "why": 1}, payloads.ExcludedRater) == ["reason: missing", "why: not declared"]
    assert conforms({"level": "x", "n_boot": 1, "seed": 0, "confidence": 0.95, "agreement": {}},
                    payloads.ReleaseAgreementConfig) == ["agreement: not declared"]


def test_the_api_documents_every_snapshot_key():
    """The OpenAPI description of GET .../agreement/latest/ (annotation.api) names every declared key."""
    from annotation.api import AgreementSnapshotSerializer, EmotionAgreementSerializer

    def keys(shape: Any) -> set[str]:
        return set(shape.__required_keys__ | shape.__optional_keys__)

    own = {"snapshot_id", "status", "computed_at", "seconds"}
    assert set(AgreementSnapshotSerializer().fields) == keys(payloads.SnapshotPayload) | own
    assert set(EmotionAgreementSerializer().fields) == keys(payloads.SnapshotEmotion)
