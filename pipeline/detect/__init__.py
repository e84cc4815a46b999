"""Detection: the detector families (one file each, registered by name in ``families``), their onnxruntime
sessions, the windows an image is fed through, NMS and the ``Engine`` that runs every configured class.
May import ``pipeline.params``, ``pipeline.records``, ``pipeline.qc`` and ``pipeline.errors``; never the media,
video or run layers, nor ``daemon``. (``pipeline.params`` imports ``families`` to check a model's family.)
"""
