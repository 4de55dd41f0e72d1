SELECT i."id", i."project_id", i."name", i."file", i."sha256", i."width", i."height", i."format", i."ethnicity", i."age", i."gender", i."prompt", i."source", i."extra", i."priority", i."priority_reason", i."flagged", i."created_at", i."n_ratings", i."queue_full", i."extra_target", i."adjudication", i."adjudicated_at" FROM annotation_image i
WHERE i.project_id = %(project)s AND NOT i.queue_full AND NOT i.flagged AND i.file <> ''
  AND NOT EXISTS (SELECT 1 FROM annotation_rating r WHERE r.image_id = i.id AND r.rater_id = %(rater)s
                  AND r.emotion IS NULL)
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment a
                  WHERE a.image_id = i.id AND a.rater_id = %(rater)s AND a.status IN ('submitted', 'skipped', 'flagged'))
  AND i.n_ratings + (SELECT count(*) FROM annotation_assignment a WHERE a.image_id = i.id AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired') AND a.expires_at > %(now)s AND NOT a.is_retest) < %(target)s + i.extra_target
  AND NOT EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = %(project)s AND m.user_id = %(rater)s AND m.paused_at IS NOT NULL)
  AND i.id NOT IN (SELECT ci.image_id FROM annotation_calibrationrating cr JOIN annotation_calibrationitem ci ON ci.id = cr.item_id WHERE cr.project_id = %(project)s AND cr.rater_id = %(rater)s)
  
ORDER BY i.priority DESC, i.id
LIMIT 2 FOR UPDATE OF i SKIP LOCKED
