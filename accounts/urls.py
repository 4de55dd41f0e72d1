from django.contrib.auth.views import LogoutView, PasswordResetCompleteView, PasswordResetDoneView
from django.urls import path

from . import oidc, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.EmailLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("invitation/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("2fa/", views.twofactor_home, name="2fa"),
    path("2fa/setup/", views.twofactor_setup, name="2fa-setup"),
    path("2fa/verify/", views.twofactor_verify, name="2fa-verify"),
    path("2fa/disable/", views.twofactor_disable, name="2fa-disable"),
    path("sso/start/", oidc.sso_start, name="sso-start"),
    path("sso/callback/", oidc.sso_callback, name="sso-callback"),
    path("sso/refused/", oidc.sso_refused, name="sso-refused"),
    path("invitations/", views.invitations, name="invitations"),
    path("preferences/", views.preferences, name="preferences"),
    path("profile/", views.rater_profile, name="profile"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/done/", PasswordResetDoneView.as_view(), name="password-reset-done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("reset/done/", PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api-token-revoke"),
]
