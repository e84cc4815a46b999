"""The service configuration: the TOML file and ``VEIL_*`` variables, validated into typed settings.

``schema`` holds the models, ``sources`` the file source, ``loading`` the reading and its error messages;
``settings`` re-exports the public names. A leaf: it imports ``pipeline`` and nothing from ``daemon``.
"""
