"""The shape of devloop/ (design.md, "Layers"): imports only point down, no module cycles, and the heavy
libraries stay where they belong, imported late.

Every module under devloop/ is parsed with `ast` (nothing is imported); module-level, function-level and
TYPE_CHECKING imports all count as arrows.

A new module must be placed in LAYERS below -- the test fails naming it until it is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "devloop"

# Top to bottom: a module may import modules of its own layer or of any layer below it, never above.
# Patterns are fnmatch patterns on dotted module names ("devloop.adapters.*" covers sub-packages too).
# Why this order, where design.md leaves it open: loop steps return typed results, so results sit at the
# bottom with the errors (plain data, no imports); the Reporter renders results through views and is
# used from the session down, so "output" sits just above base, where every layer may reach it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("devloop.cli", "devloop.__main__")),
    ("commands", ("devloop.commands", "devloop.commands.*")),
    # live update during watch runs loop steps (build) itself
    ("loop", ("devloop.loop.steps", "devloop.loop.steps.*", "devloop.watch.live_update")),
    ("session", ("devloop.session",)),
    # the logic that needs no outside world: profiles, manifests, fingerprints, watching, image names
    (
        "core",
        (
            "devloop.profile.lookup",
            "devloop.profile_*",
            "devloop.profiles",
            "devloop.manifests.render",
            "devloop.manifests.load",
            "devloop.sources.fingerprint",
            "devloop.sources.inputs",
            "devloop.watch.watcher",
            "devloop.watcher_*",
            "devloop.watch.plan",
            "devloop.watch.debounce",
            "devloop.profile.imageref",
            "devloop.base.lock",
            "devloop.base.paths",
            "devloop.profile.reload",
            "devloop.liveupdate",
            "devloop.liveupdate.*",
            "devloop.loop.start_plan",
        ),
    ),
    # cluster_probe reads minikube's files and asks the API server: outside world, so an adapter wherever it lives
    ("adapters", ("devloop.adapters", "devloop.adapters.*", "devloop.adapters.minikube.probe")),
    # how results, progress and errors reach people (text) and tools (JSON lines)
    ("output", ("devloop.output.report", "devloop.report_*", "devloop.output.views", "devloop.output.views.*")),
    # what everything may use: errors, deadlines, the result types, signals ending a run like Ctrl-C
    (
        "base",
        (
            "devloop",
            "devloop.base.errors",
            "devloop.base.waits",
            "devloop.base.results",
            "devloop.base.results.*",
            "devloop.base.signals",
        ),
    ),
]

# Third-party packages with a narrow home. Each pattern list says which devloop modules may import them.
ONLY_IN = {
    "typer": ("devloop.cli",),
    "click": ("devloop.cli",),
}
# Slow to import: only the adapters (and the watcher's backend) use them, and only inside functions, so
# `devloop --help` and the commands that never reach a cluster stay fast.
HEAVY = {
    "kubernetes": ("devloop.adapters.*",),
    "docker": ("devloop.adapters.*",),
    "watchdog": ("devloop.adapters.*", "devloop.watch.watcher", "devloop.watcher_*"),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing devloop module
    target: str  # the dotted name imported (a devloop module or a third-party package)
    line: int
    lazy: bool  # inside a function body, or under `if TYPE_CHECKING:` (never run at import time)

    @property
    def where(self) -> str:
        return f"{module_path(self.module)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> str:
    return MODULES[name].relative_to(PACKAGE_DIR.parent).as_posix()


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        # a package directory and a same-named module (mid-move) would make imports ambiguous
        assert name not in found, f"{found[name]} and {path} both define module {name}: remove one"
        found[name] = path
    return found


MODULES = _modules()


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.imports: list[Import] = []
        self._depth = 0  # > 0 inside a function or a TYPE_CHECKING block

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._depth += 1
            for child in node.body:
                self.visit(child)
            self._depth -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, target: str, node: ast.AST) -> None:
        self.imports.append(Import(self.module, target, node.lineno, self._depth > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            # `from devloop import loop` imports the module devloop.loop.steps; `from devloop.x import f`, devloop.x
            candidate = f"{source}.{alias.name}"
            self._add(candidate if candidate in MODULES else source, node)


def _collect() -> list[Import]:
    imports = []
    for name, path in MODULES.items():
        collector = _ImportCollector(name, path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        imports.extend(collector.imports)
    return imports


IMPORTS = _collect()


def _internal(target: str) -> str | None:
    """The devloop module an import refers to (the longest known prefix), or None for third-party ones."""
    if target != "devloop" and not target.startswith("devloop."):
        return None
    parts = target.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) if parts else None


EDGES = [(imp, _internal(imp.target)) for imp in IMPORTS if _internal(imp.target) not in (None, imp.module)]


def layer_of(module: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatchcase(module, p) for p in patterns):
            return index
    return None


def test_every_module_has_a_layer():
    unknown = sorted(m for m in MODULES if layer_of(m) is None)
    assert not unknown, (
        f"modules with no layer: {', '.join(module_path(m) for m in unknown)}.\n"
        "Place each in LAYERS in tests/unit/test_layers.py (design.md, 'Layers'): the lowest layer whose "
        "modules it needs, and only above the modules that import it."
    )


def test_imports_point_down():
    names = [name for name, _ in LAYERS]
    upward = []
    for imp, target in EDGES:
        src, dst = layer_of(imp.module), layer_of(target)
        if src is not None and dst is not None and dst < src:
            upward.append(f"{imp.where}: {imp.module} ({names[src]}) imports {target} ({names[dst]})")
    assert not upward, "imports pointing up the layers (" + " > ".join(names) + "):\n  " + "\n  ".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp, target in EDGES:
        graph[imp.module].add(target)
    problems = []
    for component in _cycles(graph):
        members = set(component)
        arrows = sorted(
            {
                f"{imp.where}: {imp.module} -> {target}"
                for imp, target in EDGES
                if imp.module in members and target in members
            }
        )
        problems.append(" <-> ".join(component) + "\n    " + "\n    ".join(arrows))
    assert not problems, "import cycles between modules:\n  " + "\n  ".join(problems)


def _third_party(package: str) -> list[Import]:
    return [imp for imp in IMPORTS if imp.target == package or imp.target.startswith(package + ".")]


@pytest.mark.parametrize("package", sorted(ONLY_IN))
def test_a_narrow_library_is_imported_only_where_it_belongs(package):
    allowed = ONLY_IN[package]
    strays = [
        f"{imp.where}: {imp.module}"
        for imp in _third_party(package)
        if not any(fnmatchcase(imp.module, p) for p in allowed)
    ]
    assert not strays, f"{package} may only be imported by {', '.join(allowed)}; also imported at:\n  " + "\n  ".join(
        strays
    )


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_a_heavy_library_is_imported_only_by_adapters_and_only_inside_functions(package):
    allowed = HEAVY[package]
    strays = [
        f"{imp.where}: {imp.module}"
        for imp in _third_party(package)
        if not any(fnmatchcase(imp.module, p) for p in allowed)
    ]
    eager = [f"{imp.where}: {imp.module}" for imp in _third_party(package) if not imp.lazy]
    assert not strays, f"{package} may only be imported by {', '.join(allowed)}; also imported at:\n  " + "\n  ".join(
        strays
    )
    assert not eager, (
        f"{package} is imported at module level (move it into the function that needs it, "
        "so `devloop --help` does not pay for it):\n  " + "\n  ".join(eager)
    )


def test_the_checks_see_real_imports():
    """Guards the test itself: if the parser found nothing, every check above would pass vacuously."""
    arrows = {(imp.module, target) for imp, target in EDGES}
    assert ("devloop.cli", "devloop.base.errors") in arrows
    assert any(imp.lazy for imp in _third_party("kubernetes"))
    assert layer_of("devloop.cli") == 0 and layer_of("devloop.base.errors") == len(LAYERS) - 1
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
