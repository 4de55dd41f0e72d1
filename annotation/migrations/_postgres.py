"""Helpers for migrations that add PostgreSQL-only guards (CHECKs on arrays, triggers).

Django's migration loader ignores modules whose name starts with an underscore, so this is not a
migration itself. The SQLite demo database skips these operations.
"""

from django.db import migrations


def postgres_sql(forward: str, backward: str) -> migrations.RunPython:
    """A RunPython that runs `forward` (and `backward` on reversal) on PostgreSQL only.

    The SQL is sent without parameters, so '%' needs no escaping.
    """

    def run_forward(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(forward, params=None)

    def run_backward(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(backward, params=None)

    return migrations.RunPython(run_forward, run_backward)
