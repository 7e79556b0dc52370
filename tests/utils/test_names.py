"""Config names that become folders stay inside the output folder."""

from __future__ import annotations

import pytest

from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.names import safe_name


@pytest.mark.parametrize("name", ["../up", "a/b", "/abs", "", ".", "..", "a b", 3, None, "é"])
def test_unsafe_names_are_refused_naming_file_and_field(name) -> None:
    with pytest.raises(SemgenError, match=r"tasks\[0\].name = .*letters, digits") as err:
        safe_name(name, "tasks[0].name", "bench.yaml")
    assert str(err.value).startswith("bench.yaml: ")


@pytest.mark.parametrize("name", ["phantom-ncc", "sg_v2", "a.b", "..a", "x"])
def test_plain_names_pass(name: str) -> None:
    assert safe_name(name, "f") == name
