from django.urls import path

from . import api, api_batches

app_name = "api"
urlpatterns = [
    path("projects/", api.ProjectListView.as_view(), name="project-list"),
    path("projects/<slug:slug>/images/", api.ImageListCreateView.as_view(), name="image-list"),
    path("projects/<slug:slug>/images/bulk/", api.ImageBulkImportView.as_view(), name="image-bulk"),
    path("projects/<slug:slug>/ratings/", api.RatingExportView.as_view(), name="rating-export"),
    path("projects/<slug:slug>/model-scores/", api.ModelScoreView.as_view(), name="model-scores"),
    path("projects/<slug:slug>/agreement/", api.AgreementLatestView.as_view(), name="agreement-latest"),
    path("projects/<slug:slug>/flags/", api.FlagListView.as_view(), name="flag-list"),
    path("projects/<slug:slug>/webhooks/", api.WebhookListCreateView.as_view(), name="webhook-list"),
    path("projects/<slug:slug>/flags/<int:flag_id>/", api.FlagDecisionView.as_view(), name="flag-decide"),
    path("projects/<slug:slug>/batches/", api_batches.BatchListCreateView.as_view(), name="batch-list"),
    path("projects/<slug:slug>/batches/<int:batch_id>/", api_batches.BatchDetailView.as_view(), name="batch-detail"),
    path("projects/<slug:slug>/batches/<int:batch_id>/state/", api_batches.BatchStateView.as_view(),
         name="batch-state"),
    path("projects/<slug:slug>/releases/", api.ReleaseListCreateView.as_view(), name="release-list"),
    path("projects/<slug:slug>/releases/<str:version>/", api.ReleaseDetailView.as_view(), name="release-detail"),
    path("projects/<slug:slug>/releases/<str:version>/files/<path:path>", api.ReleaseFileView.as_view(),
         name="release-file"),
]
