from django.urls import path

from . import api

app_name = "api"
urlpatterns = [
    path("projects/", api.ProjectListView.as_view(), name="project-list"),
    path("projects/<slug:slug>/agreement/", api.AgreementLatestView.as_view(), name="agreement-latest"),
]
