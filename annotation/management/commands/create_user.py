import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.services import AccountError, user_create
from annotation.services.projects import membership_add

from ._base import get_project


class Command(BaseCommand):
    help = "Create a user (rater, lead or admin), optionally adding them to projects."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=["rater", "lead", "admin"])
        parser.add_argument("--project", action="append", default=[], help="Project slug (repeatable)")
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from standard input")
        parser.add_argument("--name", default="", help="Display name")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        password = None
        if opts["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: no password on standard input")
        projects = [get_project(slug) for slug in opts["project"]]
        try:
            with transaction.atomic():
                user = user_create(email=opts["email"], role=opts["role"], password=password, display_name=opts["name"])
                for p in projects:
                    membership_add(project=p, user=user)
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        where = f" in {', '.join(p.slug for p in projects)}" if projects else ""
        note = "" if password else " (no password: set one with `manage.py changepassword` or an invitation)"
        self.stdout.write(f"created {user.role} {user.email}{where}{note}")
