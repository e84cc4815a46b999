"""Rework: re-render a reviewed item from its kept original with a person's edits, then publish it.

One flow for the review page (``veil review``) and the ``rework/`` folder the service watches
(daemon/review/rework_watch.py). A rework document (``veil.rework/1``, JSON) names the item by its ID, the
SHA-256 of the original as its sidecar records it (``input.sha256``), and lists the edits in relative
coordinates (0..1 of width and height):

    {"schema": "veil.rework/1", "id": "<sha256>", "reviewer": "alice",
     "add": [{"box": [x1, y1, x2, y2]},                              # every frame (an image: the image)
             {"polygon": [[x, y], ...], "frames": [10, 40]},         # an inclusive frame range
             {"keys": {"10": [x1, y1, x2, y2], "40": [...]}}],       # follow a track: key boxes interpolated
     "false_positives": [{"box": [x1, y1, x2, y2], "frames": [10, 40]}]}

Approval: re-render the original with the edits, publish the result and its sidecar (with ``edits`` and
``approval``) to output, remove the item from review/ or spotcheck/, delete the original if the folder's
policy says so, and write audit events (ids, counts and the reviewer only).

Owns ``document`` (the schema), ``edits`` (document -> pipeline edits), ``items`` (the item and its original),
``approve`` (the re-render), ``publish`` (into output/) and ``audit`` (the events). May import ``pipeline``,
``daemon.config``, ``daemon.publish``, ``daemon.models``, ``daemon.intake.zones`` and ``daemon.audit``; never
the service, the review server or the command line. The names below are the package's public face.
"""

from daemon.review.rework.approve import Approved, approve, service_params
from daemon.review.rework.document import (
    REWORK_SUFFIX,
    SCHEMA,
    AddSpec,
    FalsePositiveSpec,
    ReworkDocument,
    ReworkError,
    parse_document,
)
from daemon.review.rework.edits import ReviewCounts, interpolate_keys, to_edits
from daemon.review.rework.items import Item, Place, find_item, find_original, items_in

__all__ = [
    "REWORK_SUFFIX", "SCHEMA", "AddSpec", "Approved", "FalsePositiveSpec", "Item", "Place", "ReviewCounts",
    "ReworkDocument", "ReworkError", "approve", "find_item", "find_original", "interpolate_keys", "items_in",
    "parse_document", "service_params", "to_edits",
]
