"""The one registry type behind topologies, interactions, dynamics, models and envs, and the one options check."""

import pytest

from tnd.registry import Registry, check_options, keyword_options


class PartError(ValueError):
    pass


def _registry(**kwargs):
    return Registry("part", PartError, listed="Valid parts", register_name="register_part", **kwargs)


def test_register_directly_or_as_a_decorator_and_look_up():
    parts = _registry(hint="Add one with register_part.")
    parts.register("beta", 2)

    @parts.register("alpha")
    def alpha():
        return 1

    assert parts.get("alpha") is alpha and parts.get("beta") == 2
    assert "alpha" in parts and "gamma" not in parts
    assert parts.names() == ["alpha", "beta"]
    parts.register("beta", 3)  # a later registration replaces the earlier one
    assert parts.get("beta") == 3 and parts.pop("beta") == 3 and parts.pop("beta") is None


def test_an_unknown_name_names_the_valid_ones_and_the_closest():
    parts = _registry(hint="Add one with register_part.", sort_names=False)
    for name in ("zeta", "alpha"):
        parts.register(name, name)
    assert parts.names() == ["zeta", "alpha"]  # registration order
    with pytest.raises(PartError) as info:
        parts.get("alpah")
    assert str(info.value) == ("Unknown part 'alpah' (did you mean 'alpha'?). Valid parts: zeta, alpha. "
                               "Add one with register_part.")
    with pytest.raises(PartError, match=r"^Unknown part 'omega'\. Valid parts: zeta, alpha\."):
        parts.get("omega")


def test_registration_checks_the_name_and_the_part():
    parts = _registry(accepts=(callable, "a function"))
    with pytest.raises(PartError, match="register_part needs a non-empty name, got ''"):
        parts.register("", print)
    with pytest.raises(PartError, match=r"register_part\('x'\) needs a function, got 42"):
        parts.register("x", 42)
    assert "x" not in parts


def test_options_are_read_from_signatures_and_checked_in_one_place():
    def builder(n, *, rng, width: int = 2, depth: int = 1):
        return n

    def open_builder(n, *, rng, width: int = 2, **options):
        return n

    class Base:
        def __init__(self, arrays, *, rngs, phi="tanh"):
            pass

    class Child(Base):
        def __init__(self, arrays, *, rngs, rank=4, **kwargs):
            super().__init__(arrays, rngs=rngs, **kwargs)

    class Grandchild(Child):
        pass

    assert keyword_options(builder, fixed=("rng",)) == {"width", "depth"}
    assert keyword_options(open_builder, fixed=("rng",)) is None
    assert keyword_options(open_builder, fixed=("rng",), var_keyword=("graph",)) == {"width", "graph"}
    assert keyword_options(Grandchild, fixed=("rngs",)) == {"rank", "phi"}
    check_options("Part 'x'", {"width": 3}, {"width", "depth"}, PartError)
    check_options("Part 'x'", {"anything": 3}, None, PartError)
    with pytest.raises(PartError) as info:
        check_options("Part 'x'", {"widht": 3, "deep": 1}, {"width", "depth"}, PartError)
    assert str(info.value) == "Part 'x' has no option 'deep', 'widht'. Valid options: depth, width."
    with pytest.raises(PartError, match=r"Valid options: \(none\)\."):
        check_options("Part 'x'", {"a": 1}, (), PartError)
