SELECT COALESCE((SELECT n_rated FROM annotation_ratertally WHERE project_id = %(project)s AND rater_id = %(rater)s), 0)
