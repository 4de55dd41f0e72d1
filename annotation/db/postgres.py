"""The PostgreSQL functions and triggers as they stand after the last migration (see __init__).

The rules written in SQL here and in Python in annotation/rating/sql.py are the same rules:
emorate_image_has_room is the room rule of rating.sql.INTENSITY_ROOM (a test holds the two to the
same answers), and the counters (Image.n_ratings, queue_full, RaterTally) are what the claim reads.
"""

from __future__ import annotations

# Functions by name: the whole CREATE OR REPLACE statement. Migration that last set each: in brackets.
FUNCTIONS: dict[str, str] = {
    # Ratings and their revisions are never deleted [0002].
    "emorate_refuse_delete": """
CREATE OR REPLACE FUNCTION emorate_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted (expert ratings are kept for good)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
""",
    # A published release never changes [0006].
    "emorate_release_frozen": """
CREATE OR REPLACE FUNCTION emorate_release_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION 'release % is published and can never be changed; cut a new version', OLD.version
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
""",
    # ... nor do its images; statement-level with transition tables: one check per statement, not
    # per row (a build inserts 100,000 rows at once) [0006].
    "emorate_release_image_frozen": """
CREATE OR REPLACE FUNCTION emorate_release_image_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows c JOIN annotation_release r ON r.id = c.release_id
               WHERE r.status = 'published') THEN
        RAISE EXCEPTION 'the images of a published release can never be changed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END $$;
""",
    # The audit history is append-only [0009].
    "emorate_audit_append_only": """
CREATE OR REPLACE FUNCTION emorate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit history is append-only' USING ERRCODE = 'restrict_violation';
END $$;
""",
    # Image.n_ratings and queue_full follow every INSERT of intensity ratings, whatever wrote them
    # (ratings never move or disappear) [0007, 0010].
    "emorate_image_count_ratings": """
CREATE OR REPLACE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image i
       SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings + i.extra_target
      FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
           annotation_project p
     WHERE i.id = c.image_id AND p.id = i.project_id;
    RETURN NULL;
END $$;
""",
    # queue_full again when a lead changes the project's target [0007, 0010] ...
    "emorate_image_queue_target": """
CREATE OR REPLACE FUNCTION emorate_image_queue_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image SET queue_full = n_ratings >= NEW.target_ratings + extra_target
     WHERE project_id = NEW.id AND queue_full <> (n_ratings >= NEW.target_ratings + extra_target);
    RETURN NULL;
END $$;
""",
    # ... or sends one image back for more ratings [0010].
    "emorate_image_extra_target": """
CREATE OR REPLACE FUNCTION emorate_image_extra_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.queue_full := NEW.n_ratings >= (SELECT target_ratings FROM annotation_project WHERE id = NEW.project_id)
                                       + NEW.extra_target;
    RETURN NEW;
END $$;
""",
    # RaterTally: a rater's own count of ratings and repeats in a project [0017].
    "emorate_rater_tally": """
CREATE OR REPLACE FUNCTION emorate_rater_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO annotation_ratertally AS t (project_id, rater_id, n_rated)
    SELECT project_id, rater_id, count(*) FROM new_rows
     GROUP BY project_id, rater_id ORDER BY project_id, rater_id
    ON CONFLICT (project_id, rater_id) DO UPDATE SET n_rated = t.n_rated + EXCLUDED.n_rated;
    RETURN NULL;
END $$;
""",
    # The room rule, re-counted after the one-statement claim's lock: VOLATILE PL/pgSQL takes a fresh
    # snapshot for each query, so a lease committed just before the lock is seen [0018].
    "emorate_image_has_room": """
CREATE OR REPLACE FUNCTION emorate_image_has_room(p_image bigint, p_at timestamptz, p_rater bigint, p_target integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT n_ratings - extra_target FROM annotation_image WHERE id = p_image)
         + (SELECT count(*) FROM annotation_assignment a
             WHERE a.image_id = p_image AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired')
               AND a.expires_at > p_at AND a.rater_id <> p_rater AND NOT a.is_retest)
         < p_target;
END $$;
""",
    # The lead's coverage tallies (#21, annotation.models.ImageTally): one delta row per combination
    # of (n_ratings, demographics, sent back) a statement changed, non-flagged images only. Rows are
    # only ever inserted, so concurrent submits never wait on each other here [0025].
    # An UPDATE also keeps the images' rounds (#22): BatchImage.priority is the image's priority and
    # BatchImage.open says whether the image still has room in that batch (annotation/models/
    # batch.py), for every image the statement changed, from the same transition table. One trigger
    # call per statement instead of a row trigger's call per image: a rating's submit pays one call
    # for both, a priority recompute one join instead of a call per image (#21 goal 6) [0026].
    "emorate_image_tally": """
CREATE OR REPLACE FUNCTION emorate_image_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', count(*)
          FROM new_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', -count(*)
          FROM old_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, sent_back, sum(d)
          FROM (SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings' AS sent_back, -1 AS d
                  FROM old_images WHERE NOT flagged
                UNION ALL
                SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', 1
                  FROM new_images WHERE NOT flagged) c
         GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0;
        UPDATE annotation_batchimage bi
           SET priority = n.priority,
               open = NOT n.flagged AND n.file <> '' AND n.n_ratings < b.target_ratings + n.extra_target
          FROM new_images n, annotation_batch b
         WHERE bi.image_id = n.id AND b.id = bi.batch_id
           AND (bi.priority IS DISTINCT FROM n.priority
                OR bi.open IS DISTINCT FROM (NOT n.flagged AND n.file <> ''
                                             AND n.n_ratings < b.target_ratings + n.extra_target));
    END IF;
    RETURN NULL;
END $$;
""",
}

# Triggers by name: (table, function, the CREATE TRIGGER statement).
TRIGGERS: dict[str, tuple[str, str, str]] = {
    "rating_never_deleted": ("annotation_rating", "emorate_refuse_delete", """
CREATE TRIGGER rating_never_deleted BEFORE DELETE ON annotation_rating
    FOR EACH ROW EXECUTE FUNCTION emorate_refuse_delete();"""),
    "ratingrevision_never_deleted": ("annotation_ratingrevision", "emorate_refuse_delete", """
CREATE TRIGGER ratingrevision_never_deleted BEFORE DELETE ON annotation_ratingrevision
    FOR EACH ROW EXECUTE FUNCTION emorate_refuse_delete();"""),
    "release_frozen": ("annotation_release", "emorate_release_frozen", """
CREATE TRIGGER release_frozen BEFORE UPDATE OR DELETE ON annotation_release
    FOR EACH ROW EXECUTE FUNCTION emorate_release_frozen();"""),
    "release_image_frozen_insert": ("annotation_releaseimage", "emorate_release_image_frozen", """
CREATE TRIGGER release_image_frozen_insert AFTER INSERT ON annotation_releaseimage
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();"""),
    "release_image_frozen_update": ("annotation_releaseimage", "emorate_release_image_frozen", """
CREATE TRIGGER release_image_frozen_update AFTER UPDATE ON annotation_releaseimage
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();"""),
    "release_image_frozen_delete": ("annotation_releaseimage", "emorate_release_image_frozen", """
CREATE TRIGGER release_image_frozen_delete AFTER DELETE ON annotation_releaseimage
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();"""),
    "audit_append_only": ("annotation_auditevent", "emorate_audit_append_only", """
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON annotation_auditevent
    FOR EACH ROW EXECUTE FUNCTION emorate_audit_append_only();"""),
    "rating_counts_image": ("annotation_rating", "emorate_image_count_ratings", """
CREATE TRIGGER rating_counts_image AFTER INSERT ON annotation_rating
    REFERENCING NEW TABLE AS new_ratings FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_count_ratings();"""),
    "project_target_requeues": ("annotation_project", "emorate_image_queue_target", """
CREATE TRIGGER project_target_requeues AFTER UPDATE OF target_ratings ON annotation_project
    FOR EACH ROW WHEN (OLD.target_ratings IS DISTINCT FROM NEW.target_ratings)
    EXECUTE FUNCTION emorate_image_queue_target();"""),
    "image_extra_target_requeues": ("annotation_image", "emorate_image_extra_target", """
CREATE TRIGGER image_extra_target_requeues BEFORE UPDATE OF extra_target ON annotation_image
    FOR EACH ROW WHEN (OLD.extra_target IS DISTINCT FROM NEW.extra_target)
    EXECUTE FUNCTION emorate_image_extra_target();"""),
    "rating_tallies_rater": ("annotation_rating", "emorate_rater_tally", """
CREATE TRIGGER rating_tallies_rater AFTER INSERT ON annotation_rating
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_rater_tally();"""),
    "retest_tallies_rater": ("annotation_retestrating", "emorate_rater_tally", """
CREATE TRIGGER retest_tallies_rater AFTER INSERT ON annotation_retestrating
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_rater_tally();"""),
    "image_tally_insert": ("annotation_image", "emorate_image_tally", """
CREATE TRIGGER image_tally_insert AFTER INSERT ON annotation_image
    REFERENCING NEW TABLE AS new_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();"""),
    "image_tally_update": ("annotation_image", "emorate_image_tally", """
CREATE TRIGGER image_tally_update AFTER UPDATE ON annotation_image
    REFERENCING OLD TABLE AS old_images NEW TABLE AS new_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();"""),
    "image_tally_delete": ("annotation_image", "emorate_image_tally", """
CREATE TRIGGER image_tally_delete AFTER DELETE ON annotation_image
    REFERENCING OLD TABLE AS old_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();"""),
}


def function_body(name: str) -> str:
    """The text between the dollar quotes of FUNCTIONS[name] (what PostgreSQL keeps as prosrc)."""
    text = FUNCTIONS[name]
    return text[text.index("$$") + 2:text.rindex("$$")]
