INSERT INTO annotation_assignment (project_id, image_id, item_id, rater_id, status, claimed_at, expires_at,
                                   client_token, reason, note, is_retest, allocation_reason, batch_id)
SELECT %(project)s::bigint, %(image)s::bigint, %(item)s::bigint, %(rater)s::bigint, 'open', %(now)s::timestamptz,
       %(expires)s::timestamptz, '', '', '', FALSE,
       (SELECT CASE WHEN annotation_image.extra_target > 0 AND annotation_image.n_ratings >= %(target)s THEN 'sent_back' ELSE annotation_image.priority_reason END FROM annotation_image WHERE id = %(image)s),
       %(batch)s::bigint
WHERE (SELECT CASE WHEN closed THEN %(target)s ELSE n_yes + n_no END FROM annotation_binaryitem WHERE id = %(item)s) + (SELECT count(*) FROM annotation_assignment a WHERE a.item_id = %(item)s AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired') AND a.expires_at > %(now)s AND a.rater_id <> %(rater)s AND NOT a.is_retest) < %(target)s
RETURNING id, COALESCE((SELECT n_rated FROM annotation_ratertally WHERE project_id = %(project)s AND rater_id = %(rater)s), 0)
