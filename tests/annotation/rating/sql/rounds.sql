SELECT b.id, b.target_ratings, b.priority FROM annotation_batch b
WHERE b.project_id = %(project)s AND b.state = 'open'
  AND (b.all_raters OR EXISTS (SELECT 1 FROM annotation_batch_raters br WHERE br.batch_id = b.id
                                                                        AND br.user_id = %(rater)s))
UNION ALL
SELECT 0, 0, 0 WHERE EXISTS (SELECT 1 FROM annotation_batch x WHERE x.project_id = %(project)s AND x.state <> 'draft')
