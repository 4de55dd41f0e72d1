"""The queue counters' triggers on the SQLite demo database.

PostgreSQL gets its triggers from migrations 0007, 0010 and 0017 (as they stand now:
annotation/db/postgres.py). On SQLite, adding a column rebuilds the table, which fails while a
trigger on another table names it; so on SQLite every migrate
first drops these triggers (pre_migrate) and, once the schema is final, creates them again and
recounts (post_migrate). The demo's data is small, so the recount is instant.
"""

from __future__ import annotations

from typing import Any

NAMES = ("rating_counts_image", "project_target_requeues", "image_extra_target_requeues", "rating_tallies_rater",
         "retest_tallies_rater", "image_syncs_batches")

# A batch's images follow their image (#22; annotation/models/batch.py).
_BATCH_OPEN = ("(NEW.flagged = 0 AND NEW.file <> '' AND NEW.n_ratings < (SELECT b.target_ratings FROM annotation_batch b "
               "WHERE b.id = annotation_batchimage.batch_id) + NEW.extra_target)")

# annotation_ratertally (RaterTally): one more rating or repeat for the rater in the project.
_TALLY = """CREATE TRIGGER {name} AFTER INSERT ON {table}
    BEGIN
        INSERT INTO annotation_ratertally (project_id, rater_id, n_rated) VALUES (NEW.project_id, NEW.rater_id, 1)
        ON CONFLICT (project_id, rater_id) DO UPDATE SET n_rated = n_rated + 1;
    END"""

CREATE = [
    """CREATE TRIGGER rating_counts_image AFTER INSERT ON annotation_rating WHEN NEW.emotion IS NULL
    BEGIN
        UPDATE annotation_image SET n_ratings = n_ratings + 1,
            queue_full = n_ratings + 1 >= (SELECT target_ratings FROM annotation_project
                                           WHERE id = annotation_image.project_id) + extra_target
        WHERE id = NEW.image_id;
    END""",
    """CREATE TRIGGER project_target_requeues AFTER UPDATE OF target_ratings ON annotation_project
    BEGIN
        UPDATE annotation_image SET queue_full = n_ratings >= NEW.target_ratings + extra_target
        WHERE project_id = NEW.id;
    END""",
    """CREATE TRIGGER image_extra_target_requeues AFTER UPDATE OF extra_target ON annotation_image
    WHEN OLD.extra_target IS NOT NEW.extra_target
    BEGIN
        UPDATE annotation_image SET queue_full = n_ratings >= (SELECT target_ratings FROM annotation_project
                                                               WHERE id = NEW.project_id) + NEW.extra_target
        WHERE id = NEW.id;
    END""",
    _TALLY.format(name="rating_tallies_rater", table="annotation_rating"),
    _TALLY.format(name="retest_tallies_rater", table="annotation_retestrating"),
    """CREATE TRIGGER image_syncs_batches AFTER UPDATE OF n_ratings, extra_target, priority, flagged, file
    ON annotation_image
    BEGIN
        UPDATE annotation_batchimage SET priority = NEW.priority, open = """ + _BATCH_OPEN + """
        WHERE image_id = NEW.id;
    END""",
]

RECOUNT = [
    "UPDATE annotation_image SET n_ratings = (SELECT count(*) FROM annotation_rating r "
    "WHERE r.image_id = annotation_image.id AND r.emotion IS NULL)",
    "UPDATE annotation_image SET queue_full = n_ratings >= (SELECT p.target_ratings FROM annotation_project p "
    "WHERE p.id = annotation_image.project_id) + extra_target",
    "DELETE FROM annotation_ratertally",
    "INSERT INTO annotation_ratertally (project_id, rater_id, n_rated) SELECT project_id, rater_id, count(*) FROM "
    "(SELECT project_id, rater_id FROM annotation_rating UNION ALL SELECT project_id, rater_id FROM "
    "annotation_retestrating) GROUP BY project_id, rater_id",
    "UPDATE annotation_batchimage SET priority = (SELECT i.priority FROM annotation_image i WHERE i.id = "
    "annotation_batchimage.image_id), open = (SELECT i.flagged = 0 AND i.file <> '' AND i.n_ratings < b.target_ratings "
    "+ i.extra_target FROM annotation_image i, annotation_batch b WHERE i.id = annotation_batchimage.image_id "
    "AND b.id = annotation_batchimage.batch_id)",
]


def _tables(connection: Any) -> set[str]:
    return set(connection.introspection.table_names())


def drop_triggers(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cur:
        for name in NAMES:
            cur.execute(f"DROP TRIGGER IF EXISTS {name}")


def create_triggers(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite" or not {"annotation_image", "annotation_rating", "annotation_retestrating",
                                             "annotation_ratertally", "annotation_batchimage"} <= _tables(connection):
        return
    columns = {c.name for c in connection.introspection.get_table_description(connection.cursor(),
                                                                              "annotation_image")}
    if not {"n_ratings", "queue_full", "extra_target"} <= columns:
        return  # migrated only part of the way
    with connection.cursor() as cur:
        for name in NAMES:
            cur.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in CREATE + RECOUNT:
            cur.execute(sql)
