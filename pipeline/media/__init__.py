"""Files in and out, with no knowledge of detection or masking: ``sniff`` (what a file is, by its bytes),
``image`` (photos: orientation applied, metadata stripped), ``video`` (PyAV decode, encode, audio remux) and
``handoff`` (bounded queues between the threads of a transcode). Imports only ``pipeline.errors``,
``pipeline.params`` and ``pipeline.timing`` from the rest of ``pipeline``.
"""
