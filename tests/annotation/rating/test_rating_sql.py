"""Golden files of the rate flow's SQL: every final statement of annotation/rating/sql.py, as sent to
PostgreSQL, lives in tests/annotation/rating/sql/ so that a review shows the real SQL.

The test fails when a statement differs from its file (or a file has no statement). To accept a
change, run it with EMORATE_UPDATE_GOLDEN=1, which rewrites the files, and commit them with the
change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection

from annotation.rating import sql
from core import prepared

GOLDEN = Path(__file__).resolve().parent / "sql"


def test_every_statement_matches_its_golden_file():
    statements = {name: text.strip() + "\n" for name, text in sql.statements(connection).items()}
    if os.environ.get("EMORATE_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.glob("*.sql"):
            if old.name not in statements:
                old.unlink()
        for name, text in statements.items():
            (GOLDEN / name).write_text(text)
    on_disk = {p.name: p.read_text() for p in GOLDEN.glob("*.sql")}
    assert sorted(on_disk) == sorted(statements), "statements and golden files differ in name"
    changed = [name for name in statements if on_disk[name] != statements[name]]
    assert not changed, f"{changed} changed: review the SQL, then rerun with EMORATE_UPDATE_GOLDEN=1"


def test_the_room_rule_and_open_lease_predicate_are_written_once():
    """Every statement that counts leases composes open_lease(); none spells the statuses itself."""
    spelled = "'submitted', 'skipped', 'flagged', 'expired'"
    for name, text in sql.statements(connection).items():
        assert text.count(spelled) == text.count(sql.open_lease("a")), name


@pytest.mark.django_db
def test_every_statement_prepares_on_postgresql():
    """Each statement is valid SQL with consistent parameter types (PREPARE deduces them; a name
    used twice must get one type)."""
    with connection.cursor() as cur:
        for name, text in sql.statements(connection).items():
            statement, prepare, _ = prepared._statement(text)
            cur.execute(prepare.replace(statement, "emorate_golden_check", 1).replace("%%", "%"))
            cur.execute("DEALLOCATE emorate_golden_check")
            assert name
