SELECT p."id", p."name", p."slug", p."mode", p."scale_max", p."anchors", p."target_ratings", p."lease_minutes", p."guidelines", p."taxonomy_version", p."priority_weights", p."retest_share", p."retest_min_hours", p."alert_min_kappa", p."alert_min_retest_alpha", p."alert_speed_ratio", p."require_calibration", p."rater_reminders", p."agreement_by_profile", p."created_at", m.id IS NOT NULL AS is_member,
       COALESCE(m.paused_at IS NOT NULL, FALSE) AS rater_paused,
       COALESCE(m.admitted_at IS NOT NULL, FALSE) AS rater_admitted,
       EXISTS (SELECT 1 FROM annotation_batch x WHERE x.project_id = p.id AND x.state <> 'draft') AS in_rounds
FROM annotation_project p LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s
WHERE p.slug = %(slug)s
