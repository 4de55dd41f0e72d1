WITH c AS (
SELECT i."id", i."project_id", i."name", i."file", i."sha256", i."width", i."height", i."format", i."ethnicity", i."age", i."gender", i."prompt", i."source", i."extra", i."priority", i."priority_reason", i."flagged", i."created_at", i."n_ratings", i."queue_full", i."extra_target", i."adjudication", i."adjudicated_at" FROM annotation_batchimage bi JOIN annotation_image i ON i.id = bi.image_id
WHERE bi.batch_id = %(batch)s AND bi.open AND NOT i.flagged AND i.file <> ''
  AND NOT EXISTS (SELECT 1 FROM annotation_rating r WHERE r.image_id = i.id AND r.rater_id = %(rater)s
                  AND r.emotion IS NULL)
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment a
                  WHERE a.image_id = i.id AND a.rater_id = %(rater)s AND a.status IN ('submitted', 'skipped', 'flagged'))
  AND i.n_ratings + (SELECT count(*) FROM annotation_assignment a WHERE a.image_id = i.id AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired') AND a.expires_at > %(now)s AND NOT a.is_retest) < %(target)s + i.extra_target
  AND NOT EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = %(project)s AND m.user_id = %(rater)s AND m.paused_at IS NOT NULL)
  AND i.id NOT IN (SELECT ci.image_id FROM annotation_calibrationrating cr JOIN annotation_calibrationitem ci ON ci.id = cr.item_id WHERE cr.project_id = %(project)s AND cr.rater_id = %(rater)s)
  
ORDER BY bi.priority DESC, bi.image_id
LIMIT 2 FOR UPDATE OF i SKIP LOCKED
),
pick AS (
  SELECT o.id, CASE WHEN o.extra_target > 0 AND o.n_ratings >= %(target)s::integer THEN 'sent_back' ELSE o.priority_reason END AS why FROM (SELECT * FROM c ORDER BY c.priority DESC, c.id OFFSET 0) o
  WHERE emorate_image_has_room(o.id, %(now)s::timestamptz, %(rater)s::bigint, %(target)s::integer)
  LIMIT 1
),
lease AS (
  INSERT INTO annotation_assignment (project_id, image_id, item_id, rater_id, status, claimed_at, expires_at,
                                     client_token, reason, note, is_retest, allocation_reason, batch_id)
  SELECT %(project)s::bigint, pick.id, NULL, %(rater)s::bigint, 'open', %(now)s::timestamptz, %(expires)s::timestamptz,
         '', '', '', FALSE, pick.why, %(batch)s::bigint
  FROM pick
  RETURNING id, image_id
)
SELECT c."id", c."project_id", c."name", c."file", c."sha256", c."width", c."height", c."format", c."ethnicity", c."age", c."gender", c."prompt", c."source", c."extra", c."priority", c."priority_reason", c."flagged", c."created_at", c."n_ratings", c."queue_full", c."extra_target", c."adjudication", c."adjudicated_at", lease.id, COALESCE((SELECT n_rated FROM annotation_ratertally WHERE project_id = %(project)s AND rater_id = %(rater)s), 0) FROM c LEFT JOIN lease ON lease.image_id = c.id ORDER BY c.priority DESC, c.id
