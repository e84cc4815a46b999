"""Multi-object tracking: a ByteTrack-style tracker (Kalman prediction, two-stage matching) per class."""

from pipeline.track.bytetrack import ByteTracker, TrackObservation

__all__ = ["ByteTracker", "TrackObservation"]
