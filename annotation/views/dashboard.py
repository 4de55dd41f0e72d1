"""Lead dashboards: overview, agreement, raters, demographics, disputed images, releases.

Every view: check that the user manages the project (leads of it, admins; raters get 403), call
one selector (annotation.selectors_dashboard, which reads stored snapshots and never computes
agreement), then either render the page or, with `?format=csv&table=NAME`, download one of its
tables. The presenters below turn selector results into SVG charts (annotation.charts) and
tables; they do no queries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from .. import charts
from .. import rater_quality as rq
from .. import selectors_dashboard as sd
from ..csvsafe import csv_cell_safe
from ..models import FlagReason, Image, ImageFlag, Project
from ..payloads import ReleaseSummary, release_summary
from ..services import adjudication, calibration, raters, tallies
from ..services.agreement_snapshot import agreement_recompute_request
from ..services.rater_model import RaterModelError, plan_from_payload, stored_rater_model
from ..taxonomy import EMOTIONS
from .access import require_lead, signed_in
from .pages import image_response

DOCS_AGREEMENT = Path(settings.BASE_DIR) / "docs" / "agreement.md"


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


def _svg(s: str) -> SafeString:
    # charts.py escapes every text it writes; the markup is ours.
    return mark_safe(s)  # noqa: S308


def _csv_response(project: Project, table: Table) -> HttpResponse:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([csv_cell_safe(h) for h in table.header])
    for row in table.rows:  # text that a spreadsheet would run as a formula gets a ' (annotation.csvsafe)
        writer.writerow(["" if v is None else csv_cell_safe(v) for v in row])
    response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{table.name}.csv"'
    return response


def _page(request: HttpRequest, project: Project, template: str, tab: str, tables: Sequence[Table],
          context: dict[str, Any]) -> HttpResponse:
    """Render the page, or with ?format=csv one of its tables (?table=NAME; default the first)."""
    if request.GET.get("format") == "csv":
        wanted = request.GET.get("table") or (tables[0].name if tables else "")
        for table in tables:
            if table.name == wanted:
                return _csv_response(project, table)
        raise Http404(f"no table {wanted!r} on this page (tables: {', '.join(t.name for t in tables)})")
    return render(request, template, {"project": project, "tab": tab, "tables": {t.name: t for t in tables},
                                      **context})


def _when(d: datetime) -> str:
    return f"{d:%Y-%m-%d %H:%M}"


# --- overview ---------------------------------------------------------------------------------


def present_overview(o: sd.Overview) -> tuple[list[Table], dict[str, SafeString]]:
    tables = [
        Table("coverage", "Images by number of ratings", ["ratings", "images"], o.coverage),
        Table("ratings_per_day", "Ratings per day", ["day", "ratings"], [(d.isoformat(), n) for d, n in o.ratings_per_day]),
        Table("model_scores", "Images scored per model", ["model", "images"], o.model_scores),
    ]
    coverage = charts.bar_chart(
        [charts.Bar(str(k), n, f"{n:,} images with {k} rating{'s' if k != 1 else ''}", highlight=k >= o.target)
         for k, n in o.coverage],
        title="Coverage: images by number of ratings", x_label=f"ratings per image (target {o.target})",
        y_label="images", chart_id="chart-coverage")
    per_day = charts.bar_chart(
        [charts.Bar(d.strftime("%d %b"), n, f"{d:%a %d %b %Y}: {n:,} ratings") for d, n in o.ratings_per_day],
        title=f"Ratings per day (last {sd.DAYS} days)", x_label="day", y_label="ratings", max_x_labels=8,
        chart_id="chart-per-day")
    return tables, {"coverage": _svg(coverage), "per_day": _svg(per_day)}


@login_required
@require_GET
def dashboard_overview(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    data = sd.overview(project)
    if data.tally_rows > tallies.COMPACT_AT:  # the triggers' deltas piled up (no snapshot ran lately)
        tallies.image_tally_compact(project)
    tables, svgs = present_overview(data)
    return _page(request, project, "annotation/dashboard/overview.html", "overview", tables,
                 {"o": data, "charts": svgs, "jobs": sd.jobs_running(project)})


# --- agreement --------------------------------------------------------------------------------


def present_agreement(a: sd.AgreementPage) -> tuple[list[Table], dict[str, SafeString]]:
    emotions = a.emotions
    tables = [
        Table("alpha", "Agreement per emotion",
              ["emotion", "alpha", "ci_low", "ci_high", "nonzero_share", "n_images", "n_ratings", "reason",
               "ci_raters_low", "ci_raters_high", "n_boot_undefined", "presence_alpha", "intensity_alpha", "ac2"],
              [(e["emotion"], e["alpha"], *(e["ci"] or [None, None]), e["nonzero_share"], e["n_images"],
                e["n_ratings"], e["reason"] or "", *(e.get("ci_raters") or [None, None]),
                e.get("n_boot_undefined"), e.get("presence_alpha"), e.get("intensity_alpha"), e.get("ac2"))
               for e in emotions]),
        Table("trend", "Mean alpha per snapshot", ["snapshot", "created_at", "level", "mean_alpha"],
              [(t.snapshot_id, t.created_at.isoformat(), t.level, t.mean_alpha) for t in a.trend]),
        Table("warnings", "Warnings from the agreement engine", ["emotion", "warning"], a.warnings),
        Table("model", "The model against the experts (latest model version)",
              ["model", "model_version", "emotion", "n_images", "model_kappa", "human_kappa",
               "alt_test_winning_rate", "alt_test_passed", "spearman_rho"],
              [(m["model"], m.get("model_version", ""), e["emotion"], e["n_images"], e.get("model_kappa"),
                e.get("human_kappa"), *_alt_cells(m, e["index"]), (e.get("spearman") or {}).get("rho"))
               for m in a.models for e in m.get("emotions", [])]),
    ]
    rows = [charts.IntervalRow(label=e["emotion"], value=e["alpha"], low=(e["ci"] or [None, None])[0],
                               high=(e["ci"] or [None, None])[1], share=e["nonzero_share"], key=str(e["index"]),
                               note=e["reason"] or "")
            for e in emotions]
    level = a.level
    alpha = charts.interval_chart(
        rows, title=f"Krippendorff's alpha ({level}) per emotion, with 95% intervals", x_label="alpha",
        y_label="emotion (sorted)", chart_id="chart-alpha")
    first = a.trend[0].created_at if a.trend else None
    points = [charts.Point((t.created_at - first).total_seconds() / 86400 if first else 0.0, t.mean_alpha,
                           f"{_when(t.created_at)}: mean alpha {charts.fmt(t.mean_alpha)} ({t.level})") for t in a.trend]
    ticks = [(p.x, f"{t.created_at:%d %b}") for p, t in zip(points, a.trend, strict=True)]
    if len(ticks) > 6:
        step = -(-len(ticks) // 6)
        ticks = ticks[::step]
    trend = charts.line_chart([charts.Series("mean alpha", points)], title="Mean alpha over snapshots",
                              x_label="snapshot date", y_label="mean alpha", x_ticks=ticks,
                              references=[(0.667, "0.667")] if any((t.mean_alpha or 0) > 0.5 for t in a.trend) else [],
                              chart_id="chart-trend")
    return tables, {"alpha": _svg(alpha), "trend": _svg(trend)}


@login_required
@require_GET
def dashboard_agreement(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    data = sd.agreement_page(project)
    tables, svgs = present_agreement(data)
    return _page(request, project, "annotation/dashboard/agreement.html", "agreement", tables,
                 {"a": data, "charts": svgs, "jobs": sd.jobs_running(project), "plan": planner_panel(data),
                  "model_rows": tables[3].rows, "model_configured": bool(settings.EMORATE_SCORING_MODEL_DIR),
                  "model_summaries": [m for m in data.models if m.get("alt_test")]})


PLAN_RATINGS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20)


def planner_panel(a: sd.AgreementPage) -> dict[str, Any] | None:
    """The planner (#18) from the snapshot's own figures: label reliability and alpha's interval width
    at the current number of images and at 4x as many, for a few numbers of ratings per image."""
    if a.payload is None or a.payload.get("mode") == "binary":
        return None
    try:
        now = plan_from_payload(dict(a.payload))
        more = plan_from_payload(dict(a.payload), images=4 * int(a.payload["n_images"]))
    except (RaterModelError, KeyError):
        return None
    wider = {r["ratings_per_image"]: r["alpha_ci_width"] for r in more["rows"]}
    rows = [{**r, "width_4x": wider.get(r["ratings_per_image"])} for r in now["rows"]
            if r["ratings_per_image"] in PLAN_RATINGS]
    needed_07 = plan_from_payload(dict(a.payload), target_reliability=0.7)["ratings_needed"]
    return {**now, "rows": rows, "needed_07": needed_07, "images_4x": 4 * int(a.payload["n_images"])}


def _alt_cells(model: dict[str, Any], index: int) -> tuple[Any, Any]:
    """The alt-test winning rate and decision of one emotion (snapshots before #17 have none)."""
    per = (model.get("alt_test") or {}).get("per_emotion") or []
    row = next((p for p in per if p.get("index") == index), None)
    return (None, None) if row is None else (row.get("winning_rate"), row.get("passed"))


@login_required
@require_POST
def dashboard_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    """Queue a fresh agreement snapshot (sent when the transaction commits)."""
    project = require_lead(request, slug)
    agreement_recompute_request(project, actor=signed_in(request))
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "annotation/dashboard/partials/jobs.html",
                      {"project": project, "jobs": sd.jobs_running(project)})
    return redirect("annotation:dashboard-agreement", slug=project.slug)


@login_required
@require_GET
def dashboard_jobs(request: HttpRequest, slug: str) -> HttpResponse:
    """The polled 'running jobs' fragment; polling stops (286) once nothing runs."""
    project = require_lead(request, slug)
    jobs = sd.jobs_running(project)
    if request.GET.get("format") == "csv":
        rows: list[tuple[str, str, int, str]] = []
        if jobs.snapshot:
            rows.append(("agreement snapshot", str(jobs.snapshot.pk), jobs.snapshot.progress, jobs.snapshot.status))
        rows += [("release", r.version, r.progress, r.status) for r in jobs.releases]
        return _csv_response(project, Table("jobs", "Running jobs", ["job", "id", "progress", "status"], rows))
    polled = bool(request.htmx)  # type: ignore[attr-defined]
    response = render(request, "annotation/dashboard/partials/jobs.html",
                      {"project": project, "jobs": jobs, "finished": polled and not jobs.running})
    if not jobs.running and polled:
        return HttpResponseStopPolling(response.content)
    return response


@login_required
@require_GET
def dashboard_definitions(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    text = DOCS_AGREEMENT.read_text(encoding="utf-8") if DOCS_AGREEMENT.exists() else "docs/agreement.md is missing."
    return render(request, "annotation/dashboard/definitions.html", {"project": project, "tab": "agreement",
                                                                      "text": text})


# --- raters -----------------------------------------------------------------------------------


def severity_text(mean: float | None) -> str:
    """How a lead reads an intensity shift: "+1.02: rates about 1.0 step higher than the others when
    both see an emotion". No verdict: the figure is an estimate (docs/agreement.md)."""
    if mean is None:
        return "–"
    return f"{mean:+.2f}: rates about {abs(mean):.1f} step{'s' if abs(mean) >= 1.5 else ''} " \
           f"{'higher' if mean >= 0 else 'lower'} than the others when both see an emotion"


def consistency_text(c: dict[str, Any] | None) -> str:
    """"+0.05 [-0.02, 0.12]" and, only when the interval excludes 0, which side it is on."""
    if not c or c.get("estimate") is None:
        return "–"
    if c.get("low") is None:
        return f"{c['estimate']:+.2f} (too few shared images for an interval)"
    text = f"{c['estimate']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]"
    if c["low"] > 0:
        return text + ": further from the others than they are from each other"
    if c["high"] < 0:
        return text + ": closer to the others than they are to each other"
    return text


def scale_use_text(counts: Sequence[int]) -> str:
    """The share of each scale point a rater used, e.g. "0: 80% · 1: 5% · ..."."""
    total = sum(counts)
    if not total:
        return "–"
    return " · ".join(f"{p}: {round(100 * c / total)}%" for p, c in enumerate(counts))


def _ci_text(shift: float | None, ci: Sequence[float | None] | None, unit: str) -> str:
    if shift is None or not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"{shift:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}] {unit}"


def model_section(r: sd.RatersPage) -> dict[str, Any]:
    """The measurement model stored with the snapshot (#18), per rater and emotion group, in words
    and figures; ``note`` says why there are none (not fitted yet, failed, did not converge)."""
    stored = (r.snapshot.payload or {}).get("rater_model") if r.snapshot else None
    model = stored_rater_model(r.snapshot.payload if r.snapshot else None)
    if model is None:
        if not stored:
            note = "The measurement model is fitted after each agreement snapshot; none is stored with this one yet."
        elif stored.get("error"):
            note = f"The measurement model could not be fitted: {stored['error']}"
        else:
            note = "The measurement model did not converge on these ratings: its figures are not shown."
        return {"note": note, "raters": [], "by_id": {}}
    raters = []
    for x in model.get("raters", []):
        label = r.labels.get(int(x["rater_id"]), "rater")
        groups = [{"group": g["group"], "words": g["words"],
                   "presence": _ci_text(g["presence_shift"], g["presence_ci"], "logits"),
                   "intensity": _ci_text(g["intensity_shift"], g["intensity_ci"], "steps")} for g in x["groups"]]
        raters.append({"rater": x["rater_id"], "label": label, "few": x["few_ratings"],
                       "discrimination": x.get("discrimination"), "words": (x.get("overall") or {}).get("words", ""),
                       "groups": groups})
    return {"note": "; ".join(model.get("warnings", [])), "raters": raters,
            "by_id": {x["rater"]: x for x in raters}}


def rater_rows(r: sd.RatersPage, project: Project) -> list[dict[str, Any]]:
    """The raters table of the page: the snapshot's rows with the quality figures put into words and
    the alerts against the project's thresholds (Project.alert_*)."""
    thresholds = rq.AlertThresholds(min_kappa=project.alert_min_kappa,
                                    min_retest_alpha=project.alert_min_retest_alpha,
                                    speed_ratio=project.alert_speed_ratio)
    out = []
    by_model = model_section(r)["by_id"]
    for x in r.raters:
        sev = x.get("severity") or {}
        drift = x.get("drift") or {}
        alerts = rq.rater_alerts(mean_kappa=x.get("mean_kappa"), retest_alpha=(x.get("retest") or {}).get("mean_alpha"),
                                 usual_seconds=drift.get("usual_seconds"), recent_seconds=drift.get("recent_seconds"),
                                 thresholds=thresholds)
        shift = (x.get("intensity_shift") or {}).get("estimate")
        modelled = by_model.get(int(x["rater"]))
        out.append({**x, "severity_mean": sev.get("mean"), "severity_text": severity_text(shift),
                    "model_text": modelled["words"] if modelled else "",
                    "consistency_text": consistency_text(x.get("consistency")),
                    "scale_use_text": scale_use_text(x.get("scale_use_overall") or []), "alerts": alerts,
                    "drift": drift})
    return out


def _retest_cells(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Pairs, mean alpha and mean absolute change of a rater's test-retest repeats (snapshots made
    before the feature have no "retest" key)."""
    retest = row.get("retest")
    if not retest:
        return 0, None, None
    return retest["n_pairs"], retest["mean_alpha"], retest["mean_abs_change"]


def _consistency_cells(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    c = row.get("consistency") or {}
    return c.get("estimate"), c.get("low"), c.get("high")


def present_raters(r: sd.RatersPage) -> tuple[list[Table], dict[str, SafeString]]:
    labels = r.labels
    tables = [
        Table("raters", "Raters", ["rater", "label", "n_ratings", "median_seconds", "mean_kappa", "alpha_with",
                                   "alpha_without", "consistency", "consistency_low", "consistency_high",
                                   "retest_pairs", "retest_alpha", "retest_mean_abs_change", "severity",
                                   "severity_n_images", "intensity_shift"],
              [(x["rater"], x["label"], x["n_ratings"], x["median_seconds"], x["mean_kappa"], x["alpha_with"],
                x["alpha_without"], *_consistency_cells(x), *_retest_cells(x),
                (x.get("severity") or {}).get("mean"), (x.get("severity") or {}).get("n_images"),
                (x.get("intensity_shift") or {}).get("estimate")) for x in r.raters]),
        Table("severity", "Severity per rater and emotion (own value minus the others' mean)",
              ["rater", "emotion", "severity"],
              [(x["rater"], e, v) for x in r.raters if x.get("severity")
               for e, v in x["severity"]["per_emotion"].items()]),
        Table("scale_use", "Scale use per rater and emotion", ["rater", "emotion", "value", "count"],
              [(x["rater"], e, value, n) for x in r.raters for e, counts in (x.get("scale_use") or {}).items()
               for value, n in enumerate(counts)]),
        Table("retest", "Test-retest per rater and emotion", ["rater", "emotion", "n_pairs", "alpha",
                                                              "mean_abs_change"],
              [(x["rater"], e["emotion"], x["retest"]["n_pairs"], e["alpha"], e["mean_abs_change"])
               for x in r.raters if x.get("retest") for e in x["retest"]["emotions"]]),
        Table("kappa", "Pairwise weighted kappa (mean over emotions)", ["rater_a", "rater_b", "kappa", "n_emotions"],
              [(p["a"], p["b"], p["kappa"], p["n_emotions"]) for p in r.kappa.get("pairs", [])]),
        Table("per_week", "Ratings per week", ["rater", "week", "ratings"],
              [(rid, w.isoformat(), r.per_week.get(rid, {}).get(w, 0)) for rid in sorted(r.per_week) for w in r.weeks]),
        Table("alpha_without", "Alpha without each rater, per snapshot", ["created_at", "rater", "alpha_without"],
              [(at.isoformat(), rid, v) for at, per in r.alpha_without_trend for rid, v in sorted(per.items())]),
    ]
    ids = [int(i) for i in r.kappa.get("raters", [])]
    names = [labels.get(i, str(i)) for i in ids]
    pair = {(int(p["a"]), int(p["b"])): p for p in r.kappa.get("pairs", [])}
    cells = []
    for a in ids:
        row = []
        for b in ids:
            p = pair.get((min(a, b), max(a, b)))
            if a == b:
                row.append(charts.Cell(None, f"{labels.get(a, a)}", text="·"))
            elif p is None:
                row.append(charts.Cell(None, f"{labels.get(a, a)} × {labels.get(b, b)}: no shared images"))
            else:
                row.append(charts.Cell(p["kappa"], f"{labels.get(a, a)} × {labels.get(b, b)}: kappa "
                                                   f"{charts.fmt(p['kappa'])} over {p['n_emotions']} emotions"))
        cells.append(row)
    kappa = charts.heatmap(names, names, cells, title="Pairwise quadratic-weighted kappa (mean over emotions)",
                           x_label="rater", y_label="rater", domain=(-0.2, 1.0), cell_w=44, chart_id="chart-kappa")
    week_ticks = [(float(i), f"{w:%d %b}") for i, w in enumerate(r.weeks)][::2]
    shown = sorted(r.per_week, key=lambda rid: -sum(r.per_week[rid].values()))[:8]
    weekly = charts.line_chart(
        [charts.Series(labels.get(rid, str(rid)), [charts.Point(float(i), float(r.per_week[rid].get(w, 0)),
                                                                f"{labels.get(rid, rid)}, week of {w:%d %b}: "
                                                                f"{r.per_week[rid].get(w, 0):,} ratings")
                                                   for i, w in enumerate(r.weeks)]) for rid in shown],
        title=f"Ratings per week (last {sd.WEEKS} weeks, {len(shown)} busiest raters)", x_label="week",
        y_label="ratings", x_ticks=week_ticks, chart_id="chart-per-week", height=300)
    first = r.alpha_without_trend[0][0] if r.alpha_without_trend else None
    series = []
    for rid in ids[:8]:
        pts = [charts.Point((at - first).total_seconds() / 86400 if first else 0.0, per.get(rid),
                            f"{labels.get(rid, rid)} left out, {_when(at)}: alpha {charts.fmt(per.get(rid))}")
               for at, per in r.alpha_without_trend if rid in per]
        series.append(charts.Series(labels.get(rid, str(rid)), pts))
    drift = charts.line_chart(series, title="Mean alpha without each rater, per snapshot (drift)",
                              x_label="days since the first snapshot shown", y_label="alpha without the rater",
                              chart_id="chart-drift", height=300)
    return tables, {"kappa": _svg(kappa), "per_week": _svg(weekly), "drift": _svg(drift)}


@login_required
@require_GET
def dashboard_raters(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    return _raters_response(request, project)


def _raters_response(request: HttpRequest, project: Project, error: str = "") -> HttpResponse:
    data = sd.raters_page(project)
    tables, svgs = present_raters(data)
    rows = rater_rows(data, project)
    tables.append(Table("drift", "Speed and closeness to the others per rater and week",
                        ["rater", "week", "ratings", "median_seconds", "mean_deviation"],
                        [(x["rater"], w["week"], w["n"], w["median_seconds"], w["mean_deviation"])
                         for x in rows for w in x["drift"].get("weeks", [])]))
    tables.append(Table("fatigue", "Early vs late within a sitting, recent vs usual speed",
                        ["rater", "sittings", "early_seconds", "late_seconds", "early_deviation", "late_deviation",
                         "usual_seconds", "recent_seconds", "alerts"],
                        [(x["rater"], *(x["drift"].get(k) for k in ("n_sittings", "early_seconds", "late_seconds",
                                                                    "early_deviation", "late_deviation",
                                                                    "usual_seconds", "recent_seconds")),
                          "; ".join(x["alerts"])) for x in rows]))
    model = model_section(data)
    tables.append(Table("rater_model", "Presence threshold and intensity shift per rater and emotion group "
                        "(measurement model)", ["rater", "group", "words", "presence_shift_ci", "intensity_shift_ci"],
                        [(m["label"], g["group"], g["words"], g["presence"], g["intensity"])
                         for m in model["raters"] for g in m["groups"]]))
    pending: list[dict[str, Any]] = []
    n_calibration_items = 0
    if project.require_calibration:  # raters who still need calibration, with their figures, for "Admit"
        summaries = calibration.calibration_summaries(project)
        assessed = calibration.calibration_assessment(project)
        admitted = set(project.memberships.filter(admitted_at__isnull=False).values_list("user_id", flat=True))
        pending = [{"rater": m.rater, "label": m.label, "n_rated": summaries.get(m.rater, (0, None))[0],
                    "mean_abs_diff": summaries.get(m.rater, (0, None))[1], **assessed.get(m.rater, {})}
                   for m in data.members if m.rater not in admitted]
        n_calibration_items = project.calibration_items.count()
    response = _page(request, project, "annotation/dashboard/raters.html", "raters", tables,
                     {"r": data, "rows": rows, "pending": pending, "n_calibration_items": n_calibration_items,
                      "model": model,
                      "alerts": [(x["label"], a) for x in rows for a in x["alerts"]],
                      "charts": svgs, "error": error})
    if error:
        response.status_code = 400
    return response


_RATER_ACTIONS = {
    "pause": lambda project, user_id, actor, reason: raters.rater_pause(project=project, rater=user_id, actor=actor,
                                                                        reason=reason),
    "resume": lambda project, user_id, actor, reason: raters.rater_resume(project=project, rater=user_id, actor=actor),
    "exclude": lambda project, user_id, actor, reason: raters.rater_exclude(project=project, rater=user_id,
                                                                            actor=actor, reason=reason),
    "include": lambda project, user_id, actor, reason: raters.rater_include(project=project, rater=user_id,
                                                                            actor=actor),
    "admit": lambda project, user_id, actor, reason: calibration.rater_admit(project=project, rater=user_id,
                                                                             actor=actor),
}


@login_required
@require_POST
def dashboard_rater_action(request: HttpRequest, slug: str, user_id: int, action: str) -> HttpResponse:
    """Pause / resume a rater, exclude / re-include their ratings in new releases (leads only)."""
    project = require_lead(request, slug)
    try:
        _RATER_ACTIONS[action](project, user_id, signed_in(request), request.POST.get("reason", ""))
    except (raters.RaterActionError, calibration.CalibrationError) as exc:
        return _raters_response(request, project, error=str(exc))
    return redirect("annotation:dashboard-raters", slug=project.slug)


# --- demographics -----------------------------------------------------------------------------


def _stratum_key_label(key: str) -> str:
    """ "rater_discipline" -> "raters' discipline"; image keys as they are."""
    return ("raters' " + key.removeprefix("rater_").replace("_", " ")) if key.startswith("rater_") else key


def present_demographics(d: sd.DemographicsPage) -> tuple[list[Table], dict[str, list[tuple[str, SafeString]]]]:
    # the image strata, then the raters' background groups when the project asks for them
    keys = [*sd.STRATA, *sorted(k for k in d.strata if k.startswith("rater_"))]
    tables = [
        Table("strata_alpha", "Alpha per stratum and emotion",
              ["key", "stratum", "emotion", "alpha", "ci_low", "ci_high", "reliable", "n_images", "note"],
              [(key, s["stratum"], e["emotion"], e["alpha"], *(e["ci"] or [None, None]), e["reliable"], s["n_images"],
                e["note"] or "") for key in keys for s in d.strata.get(key, []) for e in s["emotions"]]),
        Table("strata_coverage", "Coverage per stratum", ["key", "stratum", "images", "ratings", "images_complete"],
              [(key, c.stratum, c.n_images, c.n_ratings, c.n_complete) for key in sd.STRATA
               for c in d.coverage.get(key, [])]),
    ]
    out: list[tuple[str, SafeString]] = []
    for key in keys:
        strata = d.strata.get(key, [])
        if not strata:
            continue
        row_labels = [f"{s['stratum']} ({s['n_images']:,})" + ("" if s["reliable"] else " thin") for s in strata]
        cells = []
        for s in strata:
            by_emotion = {e["emotion"]: e for e in s["emotions"]}
            row = []
            for name in EMOTIONS:
                e = by_emotion.get(name)
                if e is None:
                    row.append(charts.Cell(None, f"{s['stratum']} / {name}: not computed"))
                    continue
                ci = e["ci"] or [None, None]
                tip = (f"{key} {s['stratum']} / {name}: alpha {charts.fmt(e['alpha'])}"
                       + (f" (95% CI {charts.fmt(ci[0])} to {charts.fmt(ci[1])})" if ci[0] is not None else "")
                       + ("" if e["reliable"] else " — thin stratum, not reliable")
                       + (f" — {e['note']}" if e["note"] else ""))
                row.append(charts.Cell(e["alpha"], tip, weak=not e["reliable"]))
            cells.append(row)
        out.append((key, _svg(charts.heatmap(
            row_labels, [n.split(" ")[0].rstrip("&,") if len(n) > 14 else n for n in EMOTIONS], cells,
            title=f"Alpha per emotion by {_stratum_key_label(key)} (faded, dashed = thin stratum)", x_label="emotion",
            y_label=_stratum_key_label(key), cell_w=20, show_values=False, chart_id=f"chart-strata-{key}",
            legend="blue = agreement above 0 (darker = higher), orange = below 0; row label: stratum (images)"))))
    coverage_bars = [charts.Bar(f"{key[:3]}:{c.stratum}", c.n_images,
                                f"{key} {c.stratum}: {c.n_images:,} images, {c.n_ratings:,} ratings, "
                                f"{c.n_complete:,} with the target number of ratings")
                     for key in sd.STRATA for c in d.coverage.get(key, [])]
    cov_svg = charts.bar_chart(coverage_bars, title="Images per stratum", x_label="stratum (eth = ethnicity, "
                               "age, gen = gender)", y_label="images", width=900, max_x_labels=40,
                               chart_id="chart-strata-coverage")
    return tables, {"heatmaps": out, "coverage": [("coverage", _svg(cov_svg))]}


@login_required
@require_GET
def dashboard_demographics(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    data = sd.demographics_page(project)
    tables, svgs = present_demographics(data)
    return _page(request, project, "annotation/dashboard/demographics.html", "demographics", tables,
                 {"d": data, "charts": svgs})


# --- disputed images --------------------------------------------------------------------------


def spread_svg(item: sd.DisputedImage, scale_max: int, *, top: int, compact: bool) -> SafeString:
    model_name, scores = next(iter(sorted(item.model.items())), (None, None))
    rows = [charts.SpreadRow(EMOTIONS[e], [r[e] for r in item.ratings],
                             float(scores[e]) if scores is not None and e < len(scores) else None)
            for e, _, _ in item.spread()[:top]]
    title = f"Most disputed emotions of image {item.image.pk}" if not compact else f"Spread, image {item.image.pk}"
    return _svg(charts.spread_chart(rows, title=title, scale_max=scale_max, compact=compact,
                                    width=300 if compact else 520, row_height=15 if compact else 18,
                                    x_label="intensity" + (f" (◇ = {model_name})" if model_name and not compact else ""),
                                    chart_id=f"chart-spread-{item.image.pk}{'-c' if compact else ''}"))


def _spread_table(items: Sequence[sd.DisputedImage]) -> Table:
    rows = []
    for it in items:
        for e, rng, sdev in it.spread():
            vals = [r[e] for r in it.ratings]
            model = {name: s[e] for name, s in it.model.items() if e < len(s)}
            rows.append((it.image.pk, it.image.name, round(it.image.priority, 6), EMOTIONS[e], " ".join(map(str, vals)),
                         rng, round(sdev, 4), "; ".join(f"{k}={v:.3f}" for k, v in model.items())))
    return Table("spread", "Per-emotion spread of the ratings",
                 ["image_id", "name", "priority", "emotion", "ratings", "range", "sd", "model_scores"], rows)


@login_required
@require_GET
def dashboard_disputed(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    data = sd.disputed_page(project, page)
    cards = [(it, spread_svg(it, project.scale_max, top=5, compact=True)) for it in data.images]
    template = ("annotation/dashboard/partials/gallery.html" if request.htmx  # type: ignore[attr-defined]
                and request.GET.get("format") != "csv" else "annotation/dashboard/disputed.html")
    full = template == "annotation/dashboard/disputed.html" and request.GET.get("format") != "csv"
    return _page(request, project, template, "disputed", [_spread_table(data.images)],
                 {"d": data, "cards": cards, "flags": sd.flags_open(project) if full else [],
                  "raters": sd.project_raters(project) if full else [],
                  "ambiguous": sd.model_ambiguity(project) if full else []})


@login_required
@require_POST
def dashboard_flag_action(request: HttpRequest, slug: str, flag_id: int, action: str) -> HttpResponse:
    """A lead confirms (the image leaves the data) or dismisses (it stays) a rater's flag."""
    project = require_lead(request, slug)
    try:
        flag = adjudication.flag_decide(project=project, flag_id=flag_id, decision=action, actor=signed_in(request),
                                        note=request.POST.get("note", ""))
    except ImageFlag.DoesNotExist:
        raise Http404("No such flag in this project.") from None
    except adjudication.AdjudicationError as exc:
        return HttpResponse(f"Not decided: {exc}", status=409, content_type="text/plain")
    if request.POST.get("next") == "list":
        return redirect(reverse("annotation:dashboard-disputed", args=[project.slug]))
    return redirect(reverse("annotation:dashboard-disputed-detail", args=[project.slug, flag.image_id]))


@login_required
def dashboard_disputed_detail(request: HttpRequest, slug: str, image_id: int) -> HttpResponse:
    project = require_lead(request, slug)
    error = ""
    if request.method == "POST":
        image = get_object_or_404(Image, project=project, pk=image_id)
        try:
            adjudication.image_adjudicate(image=image, actor=signed_in(request), decision=request.POST.get("decision", ""),
                                          reason=request.POST.get("reason", ""),
                                          extra=int(request.POST.get("extra") or 1),
                                          note=request.POST.get("note", ""))
        except (adjudication.AdjudicationError, ValueError) as exc:
            error = str(exc)
        else:
            return redirect(reverse("annotation:dashboard-disputed-detail", args=[project.slug, image_id]))
    detail = sd.disputed_detail(project, image_id)
    if detail is None:
        raise Http404("No such image in this project.")
    item = detail.item
    tables = [_spread_table([item]),
              Table("ratings", "Ratings of the image", ["rater", "seconds", *EMOTIONS],
                    [(label, secs, *values) for label, values, secs in detail.raters]),
              Table("history", "Audit history", ["created_at", "actor", "action", "data"],
                    [(e.created_at.isoformat(), e.actor.email if e.actor else "", e.action, e.data)
                     for e in detail.history])]
    response = _page(request, project, "annotation/dashboard/disputed_detail.html", "disputed", tables,
                     {"detail": detail, "item": item, "image": item.image, "error": error,
                      "calibration_item": project.calibration_items.filter(image_id=image_id).first(),
                      "spread": spread_svg(item, project.scale_max, top=12, compact=False),
                      "reasons": FlagReason.choices, "max_extra": adjudication.MAX_EXTRA})
    if error:
        response.status_code = 400
    return response


@login_required
@require_POST
def dashboard_calibration_item(request: HttpRequest, slug: str, image_id: int) -> HttpResponse:
    """Make the image a calibration item with the median of its expert ratings as reference (leads only)."""
    project = require_lead(request, slug)
    image = get_object_or_404(Image, project=project, pk=image_id)
    try:
        calibration.calibration_item_from_ratings(project=project, image=image, actor=signed_in(request))
    except ValueError as exc:  # CalibrationError, InvalidValues
        return HttpResponse(f"Not a calibration item: {exc}", status=400, content_type="text/plain")
    return redirect(reverse("annotation:dashboard-disputed-detail", args=[project.slug, image_id]))


@login_required
@require_GET
def dashboard_image_file(request: HttpRequest, slug: str, image_id: int) -> FileResponse:
    """The image for leads (thumbnails on the dashboard), metadata stripped like every served copy."""
    project = require_lead(request, slug)
    image = get_object_or_404(Image, project=project, pk=image_id)
    name = image.file.name
    if not name:
        raise Http404("This image has no file yet.")
    return image_response(name)


# --- releases ---------------------------------------------------------------------------------


def _summary_cells(s: ReleaseSummary | None) -> tuple[Any, ...]:
    """Images, mean alpha, and the diff against the previous release (added, removed, labels
    changed, previous version); empty before a build has finished."""
    if s is None:
        return (None,) * 6
    diff = s.get("diff") or {}
    counts = diff.get("summary", {})
    return (s.get("images"), s.get("mean_alpha"), counts.get("added"), counts.get("removed"),
            counts.get("labels_changed"), diff.get("previous_version"))


@login_required
@require_GET
def dashboard_releases(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug)
    items = sd.releases_sorted(project)
    table = Table("releases", "Releases", ["version", "status", "progress", "images", "mean_alpha", "added",
                                           "removed", "labels_changed", "previous_version", "created_at"],
                  [(r.version, r.status, r.progress, *_summary_cells(release_summary(r.summary)),
                    r.created_at.isoformat()) for r in items])
    return _page(request, project, "annotation/dashboard/releases.html", "releases", [table], {"releases": items})

