"""The package's public surface: every exported name is stable, and the layout keeps its promises."""

import ast
import pathlib

import pytest

import pez

PACKAGE = pathlib.Path(pez.__file__).parent


@pytest.mark.parametrize("name", sorted(set(pez.__all__) - {"__version__"}))
def test_every_exported_name_is_the_same_object_on_every_use(name):
    first = getattr(pez, name)
    import_all_submodules()  # importing a submodule must not rebind a public name
    assert getattr(pez, name) is first


def import_all_submodules():
    import importlib

    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))


def test_no_package_exports_a_name_that_is_one_of_its_submodules():
    import importlib
    import types

    import_all_submodules()
    for init in PACKAGE.rglob("__init__.py"):
        parts = init.parent.relative_to(PACKAGE.parent).parts
        package = importlib.import_module(".".join(parts))
        for child in init.parent.iterdir():
            name = child.stem if child.suffix == ".py" else child.name if (child / "__init__.py").exists() else None
            if name and name != "__init__" and hasattr(package, name):
                assert isinstance(getattr(package, name), types.ModuleType), f"{package.__name__}.{name}"


def test_compare_stays_callable(tiny):
    import pez.jobs.comparing  # noqa: F401  (a submodule import used to rebind pez.compare)

    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    for _ in range(2):
        res = pez.compare(obj, ["random"], seeds=1, budget_steps=1, config={"prompt_len": 3})
        assert len(res.runs) == 1


def test_no_private_name_is_imported_across_modules():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pez"):
                bad += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad


def test_no_module_is_over_400_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in lengths.items() if n > 400}


def test_one_config_builder_with_one_error_type():
    cfg = pez.make_config("gcg", {"search_width": 8}, {"prompt_len": 10, "lr": 0.3})  # lr: not a GCG field
    assert cfg.search_width == 8 and cfg.prompt_len == 10
    for method, overrides, message in [
        ("nope", {}, "unknown method"),
        ("gcg", {"lr": 0.1}, "does not apply to method gcg"),
        ("pez", {"lr": -0.1}, "lr must be positive"),
        ("pez", {"weight_decay": -1.0}, "weight-decay must be >= 0"),
    ]:
        with pytest.raises(pez.PezError, match=message):
            pez.make_config(method, overrides)
    with pytest.raises(pez.PezError, match="does not apply"):
        pez.invert(texts=["a"], model="minilm", method="gcg", lr=0.1)
    with pytest.raises(pez.PezError, match="does not apply"):
        pez.discover(method="gcg", lr=0.1)
