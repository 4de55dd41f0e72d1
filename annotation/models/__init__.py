from .image import Image
from .project import Membership, Mode, Project
from .rating import ModelScore, Rating, RatingRevision, RatingSource

__all__ = ["Image", "Membership", "Mode", "ModelScore", "Project", "Rating", "RatingRevision", "RatingSource"]
