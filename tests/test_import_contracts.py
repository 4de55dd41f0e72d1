"""The layout's import contracts (docs/decisions/0004-layout.md), read from the source with `ast`.

Every import counts, at module level or inside a function: an import hidden in a function is still
a dependency (and was how two cycles hid). Relative imports are resolved. Nothing is imported, so
this runs without a database and fails with the offending file, line and import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "annotation", "core")

# PURE: the science and file formats; they import nothing from Django (nor anything that does).
PURE = {
    "annotation.taxonomy", "annotation.agreement", "annotation.consolidation", "annotation.splits",
    "annotation.exporters", "annotation.charts", "annotation.imagefiles", "annotation.manifests",
    "annotation.ratingfiles", "annotation.pgcopy", "annotation.demo_faces", "annotation.rater_quality",
    "annotation.scoring.priority", "annotation.scoring.contracts", "annotation.scoring.modeldir",
    "annotation.scoring.model_agreement", "annotation.rating.values", "annotation.payloads",
    "annotation.csvsafe", "annotation.rating.imagetoken", "annotation.webhook_signing", "annotation.batching",
}
# Re-export aliases left for code written before annotation/rating existed (decision 0005).
MOVED = ("annotation.services.queue", "annotation.services.rating_submit")
# What a pure module may not import: Django and every module of ours that is not pure.
DJANGO = ("django", "rest_framework", "drf_spectacular", "django_htmx", "celery", "config", "core", "accounts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> Iterator[tuple[str, Path]]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield module_name(path), path


def imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved; `from x import y`
    yields both x and x.y (y may be a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_service(module: str) -> bool:
    return under(module, "annotation.services", "annotation.scoring.services", "accounts.services") or \
        module.rpartition(".")[2] in ("services", "write")


def is_selector(module: str) -> bool:
    leaf = module.rpartition(".")[2]
    return leaf.startswith("selectors") or leaf == "stage"


def is_task(module: str) -> bool:
    return module.rpartition(".")[2] == "tasks"


ALL = {name: path for name, path in sources()}
OURS = {m for m in ALL} | {m.rpartition(".")[0] for m in ALL}


def violations(rule) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for name, path in ALL.items():
        for line, target in imports(name, path):
            problem = rule(name, target)
            if problem:
                out.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target} ({problem})")
    return sorted(set(out))


def _pure(name: str, target: str) -> str | None:
    if not under(name, *PURE):  # the pure modules and, for a package, every module in it
        return None
    if under(target, *DJANGO):
        return "a pure module imports nothing from Django"
    if under(target, "annotation") and target in OURS and target not in PURE and target != "annotation" \
            and not under(target, *(p for p in PURE)):
        return "a pure module imports only pure modules"
    return None


def _accounts(name: str, target: str) -> str | None:
    return "accounts never imports annotation" if under(name, "accounts") and under(target, "annotation") else None


def _config(name: str, target: str) -> str | None:
    return "config/ is the composition root: nothing imports it" if under(target, "config") else None


def _service_task(name: str, target: str) -> str | None:
    if is_service(name) and is_task(target):
        return "services enqueue through annotation.jobs, never import a task"
    return None


def _selector_service(name: str, target: str) -> str | None:
    if is_selector(name) and (is_service(target) or is_task(target)):
        return "the read side never imports the write side"
    return None


def _only_jobs_enqueue(name: str, target: str) -> str | None:
    # In annotation, tasks import services and nothing imports a tasks module: work is enqueued by
    # annotation.jobs, by task name.
    if under(name, "annotation") and is_task(target) and target in OURS and not is_task(name):
        return "only annotation.jobs sends work (by task name)"
    return None


def _moved(name: str, target: str) -> str | None:
    if under(name, "annotation") and under(target, *MOVED):
        return "moved to annotation.rating: import it from there"
    return None


@pytest.mark.parametrize("rule", [_pure, _accounts, _config, _service_task, _selector_service, _only_jobs_enqueue,
                                  _moved],
                         ids=lambda r: r.__name__.strip("_"))
def test_import_contract(rule):  # type: ignore[no-untyped-def]
    assert violations(rule) == []


def test_the_pure_modules_exist():
    """A renamed pure module must be renamed here too, or its contract would silently lapse."""
    assert PURE <= set(ALL), PURE - set(ALL)


def test_no_import_cycles_between_the_layers():
    """No cycle among annotation's modules, counting imports inside functions too (the models package
    and each package's own __init__ re-exports aside)."""
    graph: dict[str, set[str]] = {}
    for name, path in ALL.items():
        if not under(name, "annotation") or under(name, "annotation.models"):
            continue
        deps = set()
        for _, target in imports(name, path):
            while target and target not in ALL:
                target = target.rpartition(".")[0]
            if target and target != name and under(target, "annotation") and not under(target, "annotation.models") \
                    and not ALL[target].name == "__init__.py":
                deps.add(target)
        graph[name] = deps
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_contracts_catch_what_they_forbid():
    """The rules themselves, on made-up imports: each forbidden edge is reported."""
    assert _pure("annotation.agreement", "django.db")
    assert _pure("annotation.agreement", "annotation.models")
    assert not _pure("annotation.agreement", "numpy")
    assert not _pure("annotation.exporters", "annotation.taxonomy")
    assert _accounts("accounts.models", "annotation.models")
    assert _config("annotation.services.queue", "config.settings")
    assert _config("core.cache", "config")
    assert _service_task("annotation.services.releases", "annotation.tasks")
    assert _service_task("annotation.scoring.services", "annotation.scoring.tasks")
    assert _selector_service("annotation.selectors_dashboard", "annotation.scoring.services")
    assert _selector_service("annotation.selectors", "annotation.services.queue")
    assert not _selector_service("annotation.services.queue", "annotation.selectors")
    assert _only_jobs_enqueue("annotation.services.releases", "annotation.tasks")
    assert not _only_jobs_enqueue("annotation.tasks", "annotation.tasks")
    assert _moved("annotation.views_rate", "annotation.services.queue")
