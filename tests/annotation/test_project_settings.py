import pytest

from accounts.models import Role
from annotation.models import AuditEvent, Project
from tests.factories import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_lead_turns_on_calibration_and_retests_with_audit(client):
    project = make_project(slug="p")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    page = client.get("/projects/p/settings/")
    assert page.status_code == 200 and "New raters rate the calibration set first" in page.content.decode()
    data = {"name": "P", "guidelines": "Judge the face only.", "target_ratings": 5, "lease_minutes": 20,
            "require_calibration": "on", "retest_share": "0.05", "retest_min_hours": 48, "alert_speed_ratio": "0.5"}
    assert client.post("/projects/p/settings/", data).status_code == 302
    project = Project.objects.get(pk=project.pk)
    assert project.require_calibration and project.retest_share == 0.05 and project.target_ratings == 5
    event = AuditEvent.objects.get(action="project.settings_changed")
    assert event.data["changes"]["target_ratings"] == ["4", "5"]
    bad = client.post("/projects/p/settings/", {**data, "retest_share": "0.9"})
    assert bad.status_code == 400 and Project.objects.get(pk=project.pk).retest_share == 0.05


def test_raters_cannot_change_settings(client):
    project = make_project(slug="p")
    rater = make_user(Role.RATER)
    add_member(project, rater)
    client.force_login(rater)
    assert client.get("/projects/p/settings/").status_code == 403
    assert client.post("/projects/p/settings/", {"target_ratings": 1}).status_code == 403
    assert Project.objects.get(pk=project.pk).target_ratings == 4
