"""Files in and out, with no knowledge of detection or masking: ``sniff`` (what a file is, by its bytes),
``image`` (photos: orientation applied, metadata stripped), ``video`` (PyAV decode, encode, audio remux),
``handoff`` (bounded queues between the threads of a transcode), and two picture helpers, ``shrink`` and
``turn``. Imports only ``pipeline.errors``, ``pipeline.params`` and ``pipeline.timing`` from the rest of
``pipeline``.
"""
