"""The service configuration: the TOML file and ``VEIL_*`` variables, validated into typed settings.

A leaf: it imports ``pipeline.params`` and nothing else from ``daemon``.
"""
