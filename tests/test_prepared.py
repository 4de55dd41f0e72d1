"""Server-side prepared statements (core/prepared.py) on the real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from annotation.models import Image
from core import prepared
from tests.factories import make_image, make_project

pytestmark = pytest.mark.django_db


def run(sql: str, params=()) -> tuple[list[tuple], list[str]]:
    with CaptureQueriesContext(connection) as ctx, connection.cursor() as cur:
        prepared.execute(cur, sql, params)
        rows = cur.fetchall()
    return rows, [q["sql"] for q in ctx.captured_queries]


def server_names() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM pg_prepared_statements")
        return {r[0] for r in cur.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_prepared_once_per_connection_then_executed_by_name():
    sql = "SELECT %s::int + %s::int, 'fifty%%'"
    rows, sent = run(sql, [2, 3])
    assert rows == [(5, "fifty%")]
    assert len(sent) == 1 and sent[0].startswith("PREPARE emorate_") and "; EXECUTE emorate_" in sent[0]
    name = sent[0].split()[1]
    assert name in server_names()
    rows, sent = run(sql, [10, 20])
    assert rows == [(30, "fifty%")] and sent == [f"EXECUTE {name}(10, 20)"]
    # a new server session knows nothing of it: prepared again
    connection.close()
    rows, sent = run(sql, [1, 1])
    assert rows == [(2, "fifty%")] and sent[0].startswith(f"PREPARE {name} AS")


def test_an_error_after_prepare_does_not_break_later_calls():
    """PREPARE is not undone by a rollback: after an error the set of prepared names is re-read from
    the server, so the next call neither prepares twice nor executes what does not exist."""
    sql = "SELECT 10 / %s::int"
    with pytest.raises(DataError), transaction.atomic():
        run(sql, [0])  # prepared on the server, then division by zero
    rows, sent = run(sql, [5])
    assert rows == [(2,)]
    assert sent[0].startswith("SELECT name FROM pg_prepared_statements") and sent[1].startswith("EXECUTE ")


def test_statements_differ_by_text_and_keep_their_parameter_types():
    a, _ = run("SELECT %s::bigint * 2", [21])
    b, _ = run("SELECT %s::text || 'x'", ["y"])
    assert a == [(42,)] and b == [("yx",)]
    with pytest.raises(ValueError, match="one placeholder style"):
        prepared.execute(connection.cursor(), "SELECT %(a)s::int + %s::int", {"a": 1})


def test_named_parameters_become_one_numbered_parameter_each():
    sql = "SELECT %(a)s::bigint * 2 + %(b)s::bigint + %(a)s::bigint"
    name, prepare, run_text = prepared._statement(sql)
    assert prepare == f"PREPARE {name} AS SELECT $1::bigint * 2 + $2::bigint + $1::bigint"
    assert run_text == f"EXECUTE {name}(%(a)s, %(b)s)"
    rows, sent = run(sql, {"a": 10, "b": 1})
    assert rows == [(31,)] and sent[0].startswith("PREPARE ")
    rows, sent = run(sql, {"b": 2, "a": 1})  # executed by name, the mapping's order does not matter
    assert rows == [(5,)] and sent == [f"EXECUTE {name}(1, 2)"]


def test_switched_off_runs_the_plain_statement(settings):
    settings.EMORATE_PG_PREPARE = False
    rows, sent = run("SELECT %s::int + 1", [1])
    assert rows == [(2,)] and sent == ["SELECT 1::int + 1"]


def test_fetch_models_converts_like_the_orm_and_sets_extra_columns():
    project = make_project()
    image = make_image(project, extra={"emotion": "Elation", "seed": 7}, priority=0.5)
    sql = (f"SELECT {prepared.select_list(Image, 'i')}, 41 + 1 AS answer FROM annotation_image i "
           "WHERE i.id = %s")
    (got,) = prepared.fetch_models(Image, sql, [image.pk], extra=("answer",))
    orm = Image.objects.get(pk=image.pk)
    assert isinstance(got, Image) and not got._state.adding
    assert got.extra == {"emotion": "Elation", "seed": 7} == orm.extra
    assert {f.attname: getattr(got, f.attname) for f in Image._meta.concrete_fields} == \
        {f.attname: getattr(orm, f.attname) for f in Image._meta.concrete_fields}
    assert got.answer == 42


def test_fetch_models_with_joined_models_like_select_related():
    from annotation.models import Assignment
    from annotation.rating import assignment_current
    from tests.factories import add_member, make_user

    project = make_project()
    image = make_image(project, extra={"k": [1, 2]})
    rater = make_user()
    add_member(project, rater)
    assert assignment_current(project=project, rater=rater) is None
    from django.utils import timezone

    now = timezone.now()
    lease = Assignment.objects.create(project=project, image=image, rater=rater, status="open", claimed_at=now,
                                      expires_at=now)
    got = assignment_current(project=project, rater=rater)
    orm = Assignment.objects.select_related("image", "item").get(pk=lease.pk)
    assert got.pk == orm.pk and got.expires_at == orm.expires_at and got.status == "open"
    assert got.image.pk == image.pk and got.image.extra == {"k": [1, 2]} == orm.image.extra
    assert got.item is None and got.item_id is None
