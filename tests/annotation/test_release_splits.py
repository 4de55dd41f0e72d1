"""Release splits on PostgreSQL (issue #17): grouped by prompt by default, stratified by emotion
presence, the test split from the model-independent sample when a model scored the images, and a
stratum missing from a split fails the build."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Image, ModelScore, ReleaseImage
from annotation.scoring.priority import model_independent
from annotation.services.releases import ReleaseError, release_build, release_create, release_dir
from annotation.splits import PRESENCE_KEY
from tests.factories import make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db


def rated_project(slug: str, n: int = 240, *, prompts: bool = True):
    project = make_project(slug=slug)
    images = populate(project, n, [make_user() for _ in range(5)], np.random.default_rng(11))
    if not prompts:
        Image.objects.filter(project=project).update(prompt="")
    return project, images


def test_default_release_groups_by_prompt_and_stratifies_by_presence():
    project, _ = rated_project("grp")  # 240 faces from 50 prompts
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    split = release.config["split"]
    assert split["group_key"] == "prompt" and split["presence"] is True
    assert split["test_from_model_independent"] is False  # no model scored these images
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for prompt, s in ReleaseImage.objects.filter(release=release).values_list("image__prompt", "split"):
        by_prompt[prompt].add(s)
    assert len(by_prompt) == 50 and all(len(s) == 1 for s in by_prompt.values())
    counts = release.summary["splits"]
    assert abs(counts["train"] / 240 - 0.8) < 0.03 and abs(counts["test"] / 240 - 0.1) < 0.03
    folder = release_dir(release)
    meta = json.loads((folder / "release.json").read_text())
    assert PRESENCE_KEY in meta["balance"]["keys"]
    card = (folder / "README.md").read_text()
    assert "never straddle train and test" in card and "emotions each image's label marks present" in card
    assert "No model scored this project's images" in card
    assert "| alpha (released selection) | interval | alpha (all ratings) |" in card
    # without prompts, images are split one by one
    plain, _ = rated_project("plain", 60, prompts=False)
    assert release_create(project=plain, version="1.0.0", n_boot=0).config["split"]["group_key"] is None


def test_test_split_from_the_model_independent_sample_when_a_model_scored_the_images():
    project, images = rated_project("mi", prompts=False)
    project.priority_weights = {"model_independent_share": 0.3}  # ~72 of 240 images: well above the 36 needed
    project.save(update_fields=["priority_weights"])
    for image in images:
        ModelScore.objects.create(project=project, image=image, model_name="m", scores=[1.0] * 40,
                                  taxonomy_version=project.taxonomy_version)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    split = release.config["split"]
    assert split["test_from_model_independent"] is True and split["model_independent_share"] == 0.3
    test_ids = list(ReleaseImage.objects.filter(release=release, split="test").values_list("image_id", flat=True))
    # about 10% of 240 (which images are in the sample depends on their ids, so within two of 24)
    assert abs(len(test_ids) - 24) <= 2 and model_independent(test_ids, 0.3).all()
    card = (release_dir(release) / "README.md").read_text()
    assert "The test split is drawn only from the model-independent evaluation sample" in card
    # turned off explicitly: frozen, and the card says what that means
    off = release_create(project=project, version="1.1.0", n_boot=0, split={"test_from_model_independent": False})
    assert off.config["split"]["test_from_model_independent"] is False
    assert "not restricted to the model-independent" in off.config["test_split_note"]
    # the command refuses a differing option for an existing version
    with pytest.raises(CommandError, match="--test-from-model-independent"):
        call_command("release", "--project", "mi", "--version", "1.1.0", "--test-from-model-independent", "yes",
                     stdout=io.StringIO())
    # with prompts of about five faces: the sample holds whole prompts (it is drawn by prompt), so the
    # test split can come from it and still keep every prompt on one side
    grouped, g_images = rated_project("mig")
    grouped.priority_weights = {"model_independent_share": 0.3}
    grouped.save(update_fields=["priority_weights"])
    for image in g_images:
        ModelScore.objects.create(project=grouped, image=image, model_name="m", scores=[1.0] * 40,
                                  taxonomy_version=grouped.taxonomy_version)
    whole = release_build(release_create(project=grouped, version="1.0.0", n_boot=0))
    assert whole.config["split"]["test_from_model_independent"] is True
    rows = list(ReleaseImage.objects.filter(release=whole).values_list("image_id", "image__prompt", "split"))
    test_rows = [(i, p) for i, p, s in rows if s == "test"]
    assert test_rows and model_independent([i for i, _ in test_rows], 0.3, [p for _, p in test_rows]).all()
    sides = defaultdict(set)
    for _, prompt, split_name in rows:
        sides[prompt].add(split_name)
    assert all(len(v) == 1 for v in sides.values())
    # a sample too small for the test split: off, and said why
    small_project, s_images = rated_project("mis")
    small_project.priority_weights = {"model_independent_share": 0.05}
    small_project.save(update_fields=["priority_weights"])
    for image in s_images:
        ModelScore.objects.create(project=small_project, image=image, model_name="m", scores=[1.0] * 40,
                                  taxonomy_version=small_project.taxonomy_version)
    small = release_create(project=small_project, version="1.0.0", n_boot=0)
    assert small.config["split"]["test_from_model_independent"] is False
    assert "the test split needs" in small.config["test_split_note"]


def test_group_key_none_from_the_command_and_frozen():
    rated_project("cmd", 60)
    call_command("release", "--project", "cmd", "--version", "1.0.0", "--group-key", "none", "--bootstrap", "0",
                 stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="--group-key prompt"):
        call_command("release", "--project", "cmd", "--version", "1.0.0", "--group-key", "prompt",
                     stdout=io.StringIO())
    call_command("release", "--project", "cmd", "--version", "1.0.0", "--group-key", "none", stdout=io.StringIO())


def test_a_stratum_missing_from_a_split_fails_the_release():
    project, images = rated_project("miss", 120)
    # 30 faces of one ethnicity, all from one prompt: the group can only land in one of two halves
    Image.objects.filter(pk__in=[im.pk for im in images[:30]]).update(ethnicity="Rare", prompt="one prompt")
    release = release_create(project=project, version="1.0.0", n_boot=0,
                             split={"fractions": [["train", 0.5], ["test", 0.5]]})
    with pytest.raises(ReleaseError, match="ethnicity=Rare: none of its 30 images"):
        release_build(release)
    release.refresh_from_db()
    assert release.status == "failed" and "stratum value" in release.error
    assert not ReleaseImage.objects.filter(release=release).exists()
    # N is a frozen setting: above the stratum's size, the same split builds
    ok = release_build(release_create(project=project, version="1.1.0", n_boot=0,
                                      split={"fractions": [["train", 0.5], ["test", 0.5]], "min_stratum": 31}))
    assert ok.status == "built"


def test_release_page_leaves_the_split_defaults_on_unless_told_otherwise(client):
    from django.urls import reverse

    from accounts.models import Role
    from annotation.models import Release
    from tests.factories import add_member

    project, _ = rated_project("page", 60)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    url = reverse("annotation:release-create", args=[project.slug])
    page = client.get(reverse("annotation:release-list", args=[project.slug])).content.decode()
    assert "Test split from the model-independent sample" in page
    assert client.post(url, {"version": "1.0.0", "group_key": "auto", "n_boot": 0}).status_code == 302
    assert client.post(url, {"version": "1.1.0", "group_key": "none", "test_from_model_independent": "no",
                             "n_boot": 0}).status_code == 302
    first, second = (Release.objects.get(project=project, version=v).config["split"] for v in ("1.0.0", "1.1.0"))
    assert first["group_key"] == "prompt" and first["presence"] is True
    assert second["group_key"] is None and second["test_from_model_independent"] is False


def test_a_binary_release_stratifies_by_the_yes_labels():
    from annotation.models import Rating
    from annotation.taxonomy import EMOTIONS
    from tests.factories import make_image

    project = make_project(slug="yn", mode="binary")
    raters = [make_user() for _ in range(3)]
    fear = EMOTIONS.index("Fear")
    rng = np.random.default_rng(2)
    for i in range(80):
        image = make_image(project, ethnicity="AB"[i % 2], gender="woman", age=30, prompt=f"p{i // 2}")
        yes = bool(rng.random() < 0.4)
        for rater in raters:
            Rating.objects.create(project=project, image=image, rater=rater, emotion=fear, values=[int(yes)],
                                  scale_max=1, taxonomy_version=project.taxonomy_version)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert release.status == "built" and release.config["split"]["group_key"] == "prompt"
    balance = json.loads((release_dir(release) / "release.json").read_text())["balance"]
    rows = {r["value"]: r for r in balance["keys"][PRESENCE_KEY]}
    assert set(rows) == {"Fear"} and rows["Fear"]["all"]["n"] > 20
