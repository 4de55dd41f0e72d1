SELECT b."id", b."project_id", b."image_id", b."emotion", b."contrastive", b."n_yes", b."n_no", b."closed", b."created_at" FROM annotation_binaryitem b JOIN annotation_image i ON i.id = b.image_id
WHERE b.project_id = %(project)s AND NOT b.closed AND NOT i.flagged AND i.file <> ''
  AND NOT EXISTS (SELECT 1 FROM annotation_rating r
                  WHERE r.image_id = b.image_id AND r.emotion = b.emotion AND r.rater_id = %(rater)s)
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment a
                  WHERE a.item_id = b.id AND a.rater_id = %(rater)s AND a.status IN ('submitted', 'skipped', 'flagged'))
  AND b.n_yes + (SELECT count(*) FROM annotation_assignment a WHERE a.item_id = b.id AND a.status NOT IN ('submitted', 'skipped', 'flagged', 'expired') AND a.expires_at > %(now)s) < %(target)s
  AND NOT EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = %(project)s AND m.user_id = %(rater)s AND m.paused_at IS NOT NULL)
  
ORDER BY i.priority DESC, b.image_id, b.contrastive, b.id
LIMIT 2 FOR UPDATE OF b SKIP LOCKED
