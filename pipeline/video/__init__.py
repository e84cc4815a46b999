"""Video: decode, detect on a schedule, track, plan each frame's masks with a look-ahead, mask, encode.

Imports the rest of ``pipeline`` (detect, track, media, mask); nothing in ``pipeline`` but ``pipeline.run``
imports it.
"""
