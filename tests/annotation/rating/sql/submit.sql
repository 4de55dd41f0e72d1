WITH r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  VALUES (%(project)s, %(image)s, %(rater)s, %(emotion)s, %(values)s, %(scale_max)s, %(taxonomy_version)s,
          %(source)s, %(seconds_spent)s, %(active_seconds)s, %(created_at)s, %(updated_at)s)
  RETURNING id
)
UPDATE annotation_assignment SET status = %(status)s, rating_id = (SELECT id FROM r), finished_at = %(finished_at)s,
                                 client_token = %(client_token)s
WHERE id = %(assignment)s
RETURNING rating_id
