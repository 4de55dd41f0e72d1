WITH a AS (
  SELECT a.id, a.image_id, GREATEST(0, EXTRACT(EPOCH FROM (%(now)s::timestamptz - a.claimed_at)))::float8 AS spent
  FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
  WHERE a.id = %(assignment)s::bigint AND a.project_id = %(project)s::bigint AND a.rater_id = %(rater)s::bigint
    AND a.status = 'open' AND a.expires_at > %(now)s::timestamptz AND NOT a.is_retest AND a.item_id IS NULL
  FOR UPDATE OF a, i
), r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  SELECT %(project)s::bigint, a.image_id, %(rater)s::bigint, NULL, %(values)s::smallint[], %(scale_max)s::smallint,
         %(taxonomy_version)s::varchar, %(source)s::varchar, round(a.spent::numeric, 3),
         CASE WHEN %(active)s::float8 IS NULL THEN NULL ELSE round(LEAST(%(active)s::float8, a.spent)::numeric, 3) END,
         %(now)s::timestamptz, %(now)s::timestamptz
  FROM a
  RETURNING id, image_id, seconds_spent, active_seconds
)
UPDATE annotation_assignment SET status = 'submitted', rating_id = r.id, finished_at = %(now)s::timestamptz,
                                 client_token = %(client_token)s::varchar
FROM r WHERE annotation_assignment.id = %(assignment)s::bigint
RETURNING r.id, r.image_id, r.seconds_spent, r.active_seconds
