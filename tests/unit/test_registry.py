"""The one registry shape behind chat formats, losses, metrics, benchmarks and subcommands."""

from __future__ import annotations

import sys
import textwrap

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.registry import Registry


class Base:
    pass


class Good(Base):
    pass


def helper(x: int) -> int:
    return x + 1



@pytest.fixture
def registry() -> Registry:
    return Registry(kind="widget", field="widget_name", example="my_pkg.widgets.MyWidget")


def test_register_get_names_and_contains(registry):
    @registry.register("spin", "twirl")
    def spin() -> str:
        return "spun"

    registry.register("good")(Good)
    registry.register("config")({"any": "object"})  # entries can be any object
    assert registry.get("spin") is spin and registry.get("twirl") is spin
    assert registry.get(" good ") is Good
    assert registry.get("config") == {"any": "object"}
    assert registry.names() == ["config", "good", "spin", "twirl"]
    assert "spin" in registry and "nope" not in registry and 3 not in registry
    assert "autotrain_pl.registry.Registry" not in registry  # import paths are not entries


def test_normalize_gives_case_insensitive_names_listed_as_registered():
    registry = Registry(kind="metric", field="metric", normalize=lambda n: n.strip().lower())
    registry.register("rougeL")(helper)
    assert registry.get("ROUGEL") is helper and "rougel" in registry
    assert registry.names() == ["rougeL"]


def test_a_taken_name_is_an_error_but_the_same_object_is_fine(registry):
    registry.register("good")(Good)
    registry.register("good")(Good)
    with pytest.raises(AutotrainError, match="'good' is already registered by .*Good") as error:
        registry.register("good", "other")(Base)
    assert "\n" not in str(error.value)
    assert "other" not in registry  # nothing registered when one name is taken
    for bad in ("", "  ", "a.b"):
        with pytest.raises(AutotrainError, match="non-empty and contain no dot"):
            registry.register(bad)


def test_import_paths_go_through_import_object(registry):
    assert registry.get(f"{__name__}.helper") is helper
    with pytest.raises(AutotrainError, match="widget_name='no_such_pkg_xyz.W': cannot import"):
        registry.get("no_such_pkg_xyz.W")
    with pytest.raises(AutotrainError, match="has no attribute 'Missing'"):
        registry.get(f"{__name__}.Missing")


def test_accepts_checks_imported_and_registered_objects():
    registry = Registry(
        kind="widget",
        field="widget_name",
        accepts=lambda obj: isinstance(obj, type) and issubclass(obj, Base),
        expects="a Base subclass",
    )
    assert registry.get(f"{__name__}.Good") is Good
    with pytest.raises(AutotrainError, match=r"widget_name='.*\.helper' is not a Base subclass"):
        registry.get(f"{__name__}.helper")
    with pytest.raises(AutotrainError, match="is not a Base subclass"):
        registry.register("helper")(helper)


def test_unknown_names_fail_in_one_line_listing_known_names(registry):
    registry.register("spin")(helper)
    registry.register("good")(Good)
    with pytest.raises(AutotrainError) as error:
        registry.get("spinn")
    message = str(error.value)
    assert message.startswith("widget_name='spinn' is not known")
    assert "good, spin" in message and "my_pkg.widgets.MyWidget" in message
    assert "\n" not in message
    for bad in ("", None, 3):
        with pytest.raises(AutotrainError, match="must be a non-empty string"):
            registry.get(bad)  # type: ignore[arg-type]


def test_field_named_like_the_kind_reads_as_a_phrase():
    registry = Registry(kind="subcommand", field="subcommand")
    with pytest.raises(AutotrainError, match="subcommand 'fitt' is not known"):
        registry.get("fitt")


def test_unregister(registry):
    registry.register("spin", "twirl")(helper)
    registry.unregister("spin")
    registry.unregister("never_there")
    assert registry.names() == ["twirl"]


def test_builtin_modules_load_lazily_on_first_lookup(tmp_path, monkeypatch):
    package = tmp_path / "lazy_widgets_xyz"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from autotrain_pl.registry import Registry

            WIDGETS = Registry(
                kind="subcommand",
                field="subcommand",
                builtin_modules=("lazy_widgets_xyz.first", "lazy_widgets_xyz.second"),
            )
            """
        )
    )
    (package / "first.py").write_text(
        "from lazy_widgets_xyz import WIDGETS\n\n@WIDGETS.register('fit')\ndef fit():\n    return 1\n"
    )
    (package / "second.py").write_text(
        "from lazy_widgets_xyz import WIDGETS\n\n@WIDGETS.register('eval')\nclass Eval:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazy_widgets_xyz

    try:
        assert "lazy_widgets_xyz.first" not in sys.modules  # nothing imported yet
        assert lazy_widgets_xyz.WIDGETS.names() == ["eval", "fit"]
        assert lazy_widgets_xyz.WIDGETS.get("fit")() == 1
        assert "eval" in lazy_widgets_xyz.WIDGETS
    finally:
        for name in ("lazy_widgets_xyz", "lazy_widgets_xyz.first", "lazy_widgets_xyz.second"):
            sys.modules.pop(name, None)


def test_a_failing_builtin_module_is_retried_on_the_next_lookup():
    registry = Registry(kind="widget", field="widget", builtin_modules=("no_such_module_xyz",))
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError):
            registry.names()
