"""Rater background profiles (#20): given with consent by the rater, used in aggregate only, in
the release card's rater pool and in the agreement snapshot's breakdown by one profile field."""

from __future__ import annotations

import numpy as np
import pytest

from accounts.models import Discipline, RaterProfile, Role
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.releases import release_build, release_create, release_dir
from tests.factories import add_member, make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db


def profile(user, discipline: str = Discipline.CLINICAL, years: int = 12, consented: bool = True) -> None:
    RaterProfile.objects.create(user=user, consented=consented, discipline=discipline, years_experience=years,
                                native_language="German", training_country="Germany")


def test_the_rater_gives_and_withdraws_their_background(client):
    rater = make_user()
    client.force_login(rater)
    assert client.get("/accounts/profile/").status_code == 200
    bad = client.post("/accounts/profile/", {"consented": "on", "years_experience": "400"})
    assert bad.status_code == 400 and "0 to 70" in bad.content.decode()
    client.post("/accounts/profile/", {"consented": "on", "discipline": Discipline.AFFECTIVE, "years_experience": "7",
                                       "native_language": " Spanish ", "training_country": "Chile",
                                       "notes": "private words"})
    saved = RaterProfile.objects.get(user=rater)
    assert saved.consented and saved.consented_at is not None and saved.native_language == "Spanish"
    assert saved.field_value("years_experience") == "3-9 years"
    client.post("/accounts/profile/", {"discipline": Discipline.AFFECTIVE, "years_experience": "7"})  # no consent
    saved.refresh_from_db()
    assert not saved.consented and saved.consented_at is None
    assert (saved.discipline, saved.years_experience, saved.native_language, saved.notes) == ("", None, "", "")


def test_the_snapshot_breaks_agreement_down_by_a_profile_field(client):
    import krippendorff

    project = make_project(slug="by-discipline", agreement_by_profile="discipline")
    clinicians = [make_user() for _ in range(3)]
    affective = [make_user() for _ in range(3)]
    lone = make_user()  # the only neuroscientist: folded into "other or not given" with those who gave nothing
    silent = make_user()
    for u in clinicians:
        profile(u, Discipline.CLINICAL)
    for u in affective:
        profile(u, Discipline.AFFECTIVE)
    profile(lone, Discipline.NEURO)
    profile(silent, Discipline.CLINICAL, consented=False)  # answers without consent are never used
    raters = clinicians + affective + [lone, silent]
    add_member(project, *raters)
    populate(project, 40, raters, np.random.default_rng(5), per_image=8)
    snapshot = agreement_snapshot_create(project, n_boot=20)
    groups = {row["stratum"]: row for row in snapshot.payload["strata"]["rater_discipline"]}
    assert set(groups) == {"Clinical psychology", "Affective science / emotion research", "other or not given"}
    # The clinicians' alpha is krippendorff's alpha on the clinicians' ratings alone (first emotion).
    from annotation.models import Rating

    rows = list(Rating.objects.filter(project=project, rater__in=clinicians).values_list("rater_id", "image_id",
                                                                                        "values"))
    image_ids = sorted({r[1] for r in rows})
    matrix = np.full((3, len(image_ids)), np.nan)
    for rater_id, image_id, values in rows:
        matrix[[u.pk for u in clinicians].index(rater_id), image_ids.index(image_id)] = values[0]
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    first = snapshot.payload["emotions"][0]["emotion"]
    got = next(e for e in groups["Clinical psychology"]["emotions"] if e["emotion"] == first)["alpha"]
    assert got == pytest.approx(expected, abs=1e-6)
    # The lead's demographics page shows the groups beside the image strata.
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    page = client.get("/projects/by-discipline/dashboard/demographics/").content.decode()
    assert "Alpha per emotion by raters" in page and "Affective science" in page
    csv = client.get("/projects/by-discipline/dashboard/demographics/?format=csv&table=strata_alpha").content.decode()
    assert "rater_discipline,Clinical psychology," in csv


def test_the_release_card_describes_the_rater_pool_in_aggregate_only():
    project = make_project(slug="pool")
    clinicians = [make_user(email=f"clin{i}@uni.example") for i in range(4)]
    others = [make_user(email=f"oth{i}@uni.example") for i in range(2)]
    for u in clinicians:
        profile(u, Discipline.CLINICAL, years=25)
    profile(others[0], Discipline.PSYCHIATRY, years=1)  # a group of one: never shown as such
    add_member(project, *clinicians, *others)
    populate(project, 30, clinicians + others, np.random.default_rng(6), per_image=3)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    card = (release_dir(release) / "README.md").read_text()
    section = card[card.index("## The raters"):card.index("## License")]
    assert "6 raters gave the ratings this release was built from; 5 of them described their background" in section
    assert "| Clinical psychology | 4 |" in section and "| other or not given | 2 |" in section
    assert "Psychiatry" not in section and "| 20 years or more | 4 |" in section
    assert "@" not in section and "German" in section  # languages in aggregate, no person named
    assert release.inputs["rater_pool"]["n_described"] == 5


def test_a_lead_sets_the_breakdown_in_the_project_settings(client):
    project = make_project(slug="settings-profile")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    page = client.get("/projects/settings-profile/settings/").content.decode()
    assert "Break agreement down by raters" in page
