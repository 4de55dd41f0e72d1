from .agreement import AgreementSnapshot, SnapshotStatus
from .assignment import (
    AllocationReason,
    Assignment,
    AssignmentStatus,
    BinaryItem,
    FlagReason,
    FlagResolution,
    ImageFlag,
    RetestRating,
    SkipReason,
)
from .audit import AuditEvent
from .batch import Batch, BatchImage, BatchSource, BatchState
from .calibration import CalibrationItem, CalibrationRating
from .image import Image, ImageTally
from .project import Membership, Mode, Project
from .rating import ModelScore, RaterTally, Rating, RatingRevision, RatingSource
from .release import Release, ReleaseImage, ReleaseStatus
from .webhook import DeliveryStatus, Webhook, WebhookDelivery

__all__ = [
    "AgreementSnapshot", "AllocationReason", "Assignment", "AuditEvent", "Batch", "BatchImage", "BatchSource", "BatchState", "AssignmentStatus", "CalibrationItem", "CalibrationRating", "BinaryItem", "FlagReason", "FlagResolution", "Image", "ImageFlag", "ImageTally",
    "Membership", "Mode", "ModelScore", "Project", "RaterTally", "Rating", "RatingRevision", "RatingSource", "Release", "ReleaseImage", "ReleaseStatus", "RetestRating",
    "SkipReason",
    "SnapshotStatus", "DeliveryStatus", "Webhook", "WebhookDelivery",
]
