import pytest

from vtr.registry import Registry, UnknownNameError


def test_register_create_list():
    heads = Registry("head")

    @heads.register("double", family="toy")
    def double(x: int) -> int:
        return 2 * x

    heads.add("square", lambda x: x * x)
    assert heads.names() == ["double", "square"]
    assert heads.create("double", 3) == 6 and heads.create("square", x=4) == 16
    assert heads.entry("double").meta == {"family": "toy"}
    assert "double" in heads and len(heads) == 2


def test_unknown_name_lists_the_known_ones():
    heads = Registry("head")
    heads.add("mean", lambda: None)
    with pytest.raises(UnknownNameError, match=r"unknown head 'maen'; choose one of: mean"):
        heads.get("maen")
    with pytest.raises(ValueError):  # also a ValueError, for config validation
        heads.create("maen")


def test_duplicate_registration_needs_replace():
    heads = Registry("head")
    heads.add("mean", lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        heads.add("mean", lambda: 2)
    heads.add("mean", lambda: 2, replace=True)
    assert heads.create("mean") == 2
    heads.unregister("mean")
    assert heads.names() == []
