"""Fixtures for the tests that run a real `veil serve`: ``daemons`` (start any number, all killed at the end),
``models_installed`` (skip, or fail under CI, without the real models) and ``mixed_scenes`` (real photos with
faces and plates, built once per session). Defined beside their helpers, registered here for the whole folder."""

from tests.integration.pixel_check import mixed_scenes  # noqa: F401 - fixture
from tests.integration.serve_harness import daemons, models_installed  # noqa: F401 - fixtures
