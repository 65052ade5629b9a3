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
    import pez.jobs.compare  # noqa: F401  (a submodule import used to rebind pez.compare)

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


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every ``pez`` module -> the ``pez`` modules it imports, at module level or inside a function."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pez"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]  # fmt: skip
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("pez")]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    circles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not circles, circles


def test_the_circle_test_finds_a_planted_circle(tmp_path, monkeypatch):
    """The graph walk itself: two modules importing each other are found."""
    pkg = tmp_path / "pez"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pez.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from pez.a import y\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", pkg)
    with pytest.raises(AssertionError, match="pez.a"):
        test_the_import_graph_has_no_circle()


def job_functions():
    """The public functions of every job module (what the CLI and the UI call)."""
    import importlib
    import inspect

    for path in sorted((PACKAGE / "jobs").glob("*.py")):
        module = importlib.import_module(_module_name(path))
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_"):
                yield f"{module.__name__}.{name}", fn


def test_no_job_function_takes_more_than_6_positional_or_16_parameters():
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    too_many = {}
    for name, fn in job_functions():
        params = inspect.signature(fn).parameters.values()
        positional = sum(p.kind in kinds for p in params)
        if positional > 6 or len(params) > 16:
            too_many[name] = (positional, len(params))
    assert not too_many
    assert len(dict(job_functions())) >= 12  # the walk finds the jobs


def contributing_layout(text: str) -> set[str]:
    """The paths the layout block of CONTRIBUTING.md names under ``pez/``: on each line, the leading words that end
    in ``.py`` or ``/`` (a package, whose entries are the lines indented under it); other lines are descriptions."""
    block = text.split("```\npez/\n", 1)[1].split("```", 1)[0]
    named, stack = set(), []  # stack: (indent, package path) of the packages the current line is inside
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        entries = []
        for word in line.split():
            word = word.rstrip(",")
            if not (word.endswith(".py") or (word.endswith("/") and word[:-1].isidentifier())):
                break
            entries.append(word)
        if not entries:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prefix = stack[-1][1] if stack else ""
        named |= {prefix + e for e in entries}
        if len(entries) == 1 and entries[0].endswith("/"):
            stack.append((indent, prefix + entries[0]))
    return named


def tree_layout() -> set[str]:
    """Every package (``jobs/``, ``objectives/lm/``) and module (``jobs/invert.py``, ``errors.py``) of pez,
    relative to pez/; a sub-package's ``__init__.py`` is the package itself."""
    real = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and rel.parent.parts:
            real.add(rel.parent.as_posix() + "/")
        elif rel.name != "__main__.py" or not rel.parent.parts:
            real.add(rel.as_posix())
    return real


def test_contributing_lists_every_package_and_module_and_nothing_stale():
    named, real = contributing_layout((PACKAGE.parent / "CONTRIBUTING.md").read_text()), tree_layout()
    assert not real - named, f"missing from CONTRIBUTING.md: {sorted(real - named)}"
    assert not named - real, f"listed in CONTRIBUTING.md but not in the tree: {sorted(named - real)}"


def test_the_layout_reader_reads_nesting():
    text = "```\npez/\n  jobs/   one per job\n    invert.py   invert\n      described on\n  errors.py\n```\n"
    assert contributing_layout(text) == {"jobs/", "jobs/invert.py", "errors.py"}


def contributing_floors(text: str) -> list[list[str]]:
    """The floors of CONTRIBUTING.md's ``floors`` block, bottom up: on each line, the packages (``jobs/``) and
    top-level modules (``errors.py``) on that floor."""
    block = text.split("```floors\n", 1)[1].split("```", 1)[0]
    return [line.split() for line in block.splitlines() if line.strip()]


def floor_graph() -> dict[str, set[str]]:
    """:func:`import_graph` with ``pez.NAME`` resolved: a module that uses a name of ``pez``'s lazy table (``import
    pez`` then ``pez.compress``, or ``from pez import compress``) imports the module the table names for it."""
    exports = pez._EXPORTS
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = import_graph()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pez":
                graph[name].add(exports.get(node.attr, "pez"))
            elif isinstance(node, ast.ImportFrom) and node.module == "pez":
                graph[name] |= {exports.get(a.name, "pez") for a in node.names}
        if name != "pez":
            graph[name].discard("pez")  # a bare ``import pez`` is the table; its uses are counted above
    return {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}


def floor_of(module: str, floors: list[list[str]]) -> int:
    parts = module.split(".")[1:]  # pez.jobs.invert -> jobs, invert; pez -> (the table: __init__.py)
    entry = f"{parts[0]}/" if len(parts) > 1 or (parts and (PACKAGE / parts[0]).is_dir()) else None
    entry = entry or (f"{parts[0]}.py" if parts else "__init__.py")
    for n, floor in enumerate(floors):
        if entry in floor:
            return n
    raise AssertionError(f"{module} ({entry}) is on no floor of CONTRIBUTING.md's floors block: add it")


def upward_imports(floors: list[list[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}"
        for a, targets in floor_graph().items()
        for b in targets
        if floor_of(b, floors) > floor_of(a, floors)
    )


def test_no_import_runs_up_a_floor():
    floors = contributing_floors((PACKAGE.parent / "CONTRIBUTING.md").read_text())
    named = {entry for floor in floors for entry in floor}
    top = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    top |= {p.name for p in PACKAGE.glob("*.py")}
    assert named == top, f"floors block vs tree: missing {sorted(top - named)}, stale {sorted(named - top)}"
    assert not upward_imports(floors)


def test_the_floor_test_finds_a_planted_upward_import():
    """The floor check itself: jobs on a floor below optim makes every job's import of optim an upward arrow."""
    floors = contributing_floors((PACKAGE.parent / "CONTRIBUTING.md").read_text())
    jobs = next(f for f in floors if "jobs/" in f)
    optim = next(f for f in floors if "optim/" in f)
    swapped = [optim if f is jobs else jobs if f is optim else f for f in floors]
    assert any(a.startswith("pez.jobs.invert -> pez.optim") for a in upward_imports(swapped))
