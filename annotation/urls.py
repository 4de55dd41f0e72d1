from django.urls import path

from . import views, views_rate, views_releases

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
]
