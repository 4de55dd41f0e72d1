from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.api_tokens import TokenError, api_token_create, api_token_revoke_all
from accounts.models import TokenScope, User, canonical_email


class Command(BaseCommand):
    help = "Create an API token for a lead or admin and print its key (shown this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--scope", choices=TokenScope.values, default=TokenScope.READ)
        parser.add_argument("--days", type=int, default=None, help="lifetime in days (default EMORATE_API_TOKEN_DAYS)")
        parser.add_argument("--name", default="")
        parser.add_argument("--revoke-others", action="store_true", help="revoke the user's other tokens first")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=canonical_email(options["email"])).first()
        if user is None:
            raise CommandError(f"no user with email {options['email']}")
        if options["revoke_others"]:
            api_token_revoke_all(user=user)
        try:
            token, key = api_token_create(user=user, scope=options["scope"], days=options["days"], name=options["name"])
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(key)
        self.stderr.write(f"token {token.prefix}... for {user.email}, scope {token.scope}, expires {token.expires_at:%Y-%m-%d}")
