"""emorate_image_has_room(): the claim's room re-count after the lock, for the one-statement claim.

The claim locks its candidates (FOR UPDATE SKIP LOCKED) and must then count the image's ratings and
open leases as they are *after* the lock: a claim that committed a lease on the same image just
before we got the lock has to be seen. A subquery in the same statement would count in the
statement's snapshot, taken before the lock. A VOLATILE PL/pgSQL function takes a fresh snapshot
for every query it runs, so the claim can lock, re-count and insert its lease in one autocommitted
statement (annotation.services.queue._FAST_CLAIM_SQL). Same rule as queue._INTENSITY_ROOM_SQL,
which the other claims (SQLite demo, binary mode, retries) use; a test holds the two to the same
answers.

PostgreSQL only (PL/pgSQL; never inlined into the caller, which a LANGUAGE sql function could be).
"""

from django.db import migrations

from ._postgres import postgres_sql

FORWARD = """
CREATE FUNCTION emorate_image_has_room(p_image bigint, p_at timestamptz, p_rater bigint, p_target integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT n_ratings - extra_target FROM annotation_image WHERE id = p_image)
         + (SELECT count(*) FROM annotation_assignment a
             WHERE a.image_id = p_image AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired')
               AND a.expires_at > p_at AND a.rater_id <> p_rater AND NOT a.is_retest)
         < p_target;
END $$;
"""

BACKWARD = "DROP FUNCTION IF EXISTS emorate_image_has_room(bigint, timestamptz, bigint, integer);"


class Migration(migrations.Migration):
    dependencies = [("annotation", "0017_rater_tally_and_leaner_indexes")]
    operations = [postgres_sql(FORWARD, BACKWARD)]
