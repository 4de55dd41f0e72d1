SELECT a.* FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
WHERE a.id = %(assignment)s FOR UPDATE OF a, i
