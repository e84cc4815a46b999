"""Spot-check sampling: which clean files also go to a person.

The choice is a deterministic function of the input's SHA-256 and the rate: a job retried or published
again after a restart is picked (or not) the same way, and the share picked is the rate, since SHA-256
values are uniform.
"""

from __future__ import annotations


def picked(sha256: str | None, rate: float) -> bool:
    if not sha256 or rate <= 0:
        return False
    return int(sha256[:12], 16) / float(1 << 48) < rate
