"""Video: decode, detect on a schedule, track, plan each frame's masks with a look-ahead, mask, encode.

Owns ``process`` (one video's job, frame by frame), ``keyframes`` (the deep pass), ``light_plan`` (the frame
plans between keyframes, following the scene), ``plan`` (what is masked on each frame) and ``qc`` (the
per-frame boxes companion). Imports the rest of ``pipeline`` (detect, track, media, mask, and ``report`` to
assemble its QC report); never ``pipeline.run``, which imports it to dispatch videos.
"""
