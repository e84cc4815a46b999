"""The family table: every family file registers itself, and a ModelSpec names only registered families."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.detect.families import family, family_names
from pipeline.errors import ModelError
from pipeline.params import ModelSpec


def test_the_shipped_families_are_registered_by_their_files():
    assert set(family_names()) == {"centerface", "yolov8", "yolov5"}


@pytest.mark.parametrize("name, fixed_input", [("centerface", False), ("yolov8", True), ("yolov5", True)])
def test_a_family_says_whether_its_files_fix_the_input_size(name, fixed_input):
    assert family(name).name == name and family(name).fixed_input is fixed_input


def test_an_unknown_family_is_refused_by_the_table_and_by_the_configuration():
    with pytest.raises(ModelError, match="unknown detector family 'yolov9'"):
        family("yolov9")
    with pytest.raises(ValidationError, match="unknown detector family 'yolov9'"):
        ModelSpec(name="x", family="yolov9", classes=("face",))
