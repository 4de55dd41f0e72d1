from django.urls import path

from . import views, views_dashboard, views_rate, views_releases

app_name = "annotation"
urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/", views.project_detail, name="project-detail"),
    path("projects/<slug:slug>/rate/", views_rate.rate_page, name="rate"),
    path("projects/<slug:slug>/rate/<int:assignment_id>/submit/", views_rate.rate_submit, name="rate-submit"),
    path("projects/<slug:slug>/rate/<int:assignment_id>/skip/", views_rate.rate_skip, name="rate-skip"),
    path("projects/<slug:slug>/rate/<int:assignment_id>/flag/", views_rate.rate_flag, name="rate-flag"),
    path("projects/<slug:slug>/rate/mine/", views_rate.rate_history, name="rate-history"),
    path("projects/<slug:slug>/rate/ratings/<int:rating_id>/", views_rate.rate_revise, name="rate-revise"),
    path("projects/<slug:slug>/releases/", views_releases.release_list, name="release-list"),
    path("projects/<slug:slug>/releases/new/", views_releases.release_create, name="release-create"),
    path("projects/<slug:slug>/releases/<str:version>/row/", views_releases.release_row, name="release-row"),
    path("projects/<slug:slug>/releases/<str:version>/publish/", views_releases.release_publish,
         name="release-publish"),
    path("projects/<slug:slug>/releases/<str:version>/files/<path:path>", views_releases.release_file,
         name="release-file"),
    # Lead dashboards (views_dashboard): pages, their CSV (?format=csv&table=NAME), fragments, actions.
    path("projects/<slug:slug>/dashboard/", views_dashboard.dashboard_overview, name="dashboard"),
    path("projects/<slug:slug>/dashboard/agreement/", views_dashboard.dashboard_agreement,
         name="dashboard-agreement"),
    path("projects/<slug:slug>/dashboard/agreement/recompute/", views_dashboard.dashboard_recompute,
         name="dashboard-recompute"),
    path("projects/<slug:slug>/dashboard/agreement/definitions/", views_dashboard.dashboard_definitions,
         name="dashboard-definitions"),
    path("projects/<slug:slug>/dashboard/jobs/", views_dashboard.dashboard_jobs, name="dashboard-jobs"),
    path("projects/<slug:slug>/dashboard/raters/", views_dashboard.dashboard_raters, name="dashboard-raters"),
    path("projects/<slug:slug>/dashboard/demographics/", views_dashboard.dashboard_demographics,
         name="dashboard-demographics"),
    path("projects/<slug:slug>/dashboard/disputed/", views_dashboard.dashboard_disputed, name="dashboard-disputed"),
    path("projects/<slug:slug>/dashboard/disputed/<int:image_id>/", views_dashboard.dashboard_disputed_detail,
         name="dashboard-disputed-detail"),
    path("projects/<slug:slug>/dashboard/disputed/<int:image_id>/image/", views_dashboard.dashboard_image_file,
         name="dashboard-image"),
    path("projects/<slug:slug>/dashboard/releases/", views_dashboard.dashboard_releases, name="dashboard-releases"),
]
