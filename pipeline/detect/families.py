"""Every detector family, by name. Importing this module imports each family file, which registers itself;
look a family up here (not in ``base``), so the table is always complete.

To add a family: a file beside centerface.py that registers a ``Family``, and its import below.
"""

from __future__ import annotations

from pipeline.detect import centerface, yolo  # noqa: F401  (each registers its families at import)
from pipeline.detect.base import Family, registered, registered_names


def family(name: str) -> Family:
    """The family called ``name``; ModelError when none is."""
    return registered(name)


def family_names() -> tuple[str, ...]:
    return registered_names()
