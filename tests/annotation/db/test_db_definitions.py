"""annotation/db/postgres.py is what the migrations built: every emorate_* function's body and
every trigger (name, table, function) on the migrated test database, no more and no fewer."""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.db import postgres

pytestmark = pytest.mark.django_db


def test_every_function_is_written_down_as_the_database_has_it():
    with connection.cursor() as cur:
        cur.execute("SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'emorate\\_%%' AND prokind = 'f'")
        found = dict(cur.fetchall())
    assert sorted(found) == sorted(postgres.FUNCTIONS)
    for name, body in found.items():
        assert body == postgres.function_body(name), name


def test_every_trigger_is_written_down_as_the_database_has_it():
    with connection.cursor() as cur:
        cur.execute("SELECT t.tgname, c.relname, p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND c.relname LIKE 'annotation\\_%%'")
        found = {name: (table, function) for name, table, function in cur.fetchall()}
    assert found == {name: (table, function) for name, (table, function, _) in postgres.TRIGGERS.items()}


def test_the_written_definitions_build_the_same_database():
    """Run every CREATE OR REPLACE FUNCTION of the file (in a transaction rolled back by the test):
    the bodies stay as they were, so the file's text is valid and complete."""
    with connection.cursor() as cur:
        for text in postgres.FUNCTIONS.values():
            cur.execute(text)
        cur.execute("SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'emorate\\_%%' AND prokind = 'f'")
        assert {name: body for name, body in cur.fetchall()} == {
            name: postgres.function_body(name) for name in postgres.FUNCTIONS}
