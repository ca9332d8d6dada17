"""The layer rule, read from the source: no import runs back up.

Between top-level packages: ui -> eval -> assistant -> kg / retrieval / vlm / prompts. Inside
assistant/, its modules and subpackages (assistant/agent/ taken whole) import each other without a
loop: what the agent builds on (the text core, safety, imaging, contracts) never imports it; the
process plumbing (assistant/processes/) imports only the settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RANK = {"ui": 3, "eval": 2, "assistant": 1, "kg": 0, "retrieval": 0, "vlm": 0, "prompts": 0}
# Below assistant, which package may use which (as the code stands: none uses another).
BASE_MAY_IMPORT: dict[str, set[str]] = {"kg": set(), "retrieval": set(), "vlm": set(), "prompts": set()}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (a lazy import is still a use)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, set[str]]:
    return {
        module_name(path): imports_of(path)
        for package in RANK
        for path in sorted((ROOT / package).rglob("*.py"))
        if ".venv" not in path.parts
    }


MODULES = project_modules()


def resolve(name: str) -> str | None:
    """The project module an imported name refers to (the longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def upward_imports(modules: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in modules.items():
        own = module.split(".")[0]
        for name in imported:
            other = name.split(".")[0]
            if other not in RANK or other == own:
                continue
            allowed = RANK[other] < RANK[own] or (RANK[own] == 0 and other in BASE_MAY_IMPORT[own])
            if not allowed:
                wrong.append(f"{module} imports {name}")
    return sorted(wrong)


def unit(module: str) -> str:
    """A module of assistant/, or one of its subpackages (assistant/agent/, ...) taken whole."""
    return ".".join(module.split(".")[:2])


def assistant_loops(modules: dict[str, set[str]]) -> list[list[str]]:
    """Groups of assistant's modules and subpackages that import each other, directly or not."""
    graph: dict[str, set[str]] = {}
    for module, imported in modules.items():
        if module.split(".")[0] != "assistant" or module == "assistant":
            continue
        deps = graph.setdefault(unit(module), set())
        for name in imported:
            target = resolve(name)
            if target and target.startswith("assistant.") and unit(target) != unit(module):
                deps.add(unit(target))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def test_no_package_imports_a_higher_layer() -> None:
    assert upward_imports(MODULES) == []


def test_assistant_has_no_import_loop() -> None:
    assert assistant_loops(MODULES) == []


@pytest.mark.parametrize(
    ("module", "bad_import"),
    [
        ("kg.store", "assistant.settings"),  # a lower package reaching up
        ("assistant.safety", "ui.cli"),
        # assistant/agent/ uses safety, imaging and the text core: none of them may use the agent.
        ("assistant.safety", "assistant.agent.extraction"),
        ("assistant.imaging", "assistant.agent.extraction"),
        ("assistant.text", "assistant.agent.extraction"),
        # The process plumbing sits under everything that assembles the app.
        ("assistant.processes.supervisor", "assistant.app"),
        ("assistant.processes.embedded", "assistant.consultation"),
    ],
)
def test_a_wrong_import_is_caught(module: str, bad_import: str) -> None:
    modules = {m: set(imported) for m, imported in MODULES.items()}
    modules[module].add(bad_import)
    assert upward_imports(modules) or assistant_loops(modules) or plumbing_imports(modules)


# assistant/processes/ starts and watches child processes; it knows the settings and nothing of
# the domain (agent, consultation, reports), so that either can change without the other.
PLUMBING = "assistant.processes"
PLUMBING_MAY_IMPORT = {"assistant.settings", PLUMBING}


def plumbing_imports(modules: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in modules.items():
        if not module.startswith(PLUMBING):
            continue
        for name in imported:
            target = resolve(name)
            if target and target.startswith("assistant") and unit(target) not in PLUMBING_MAY_IMPORT:
                wrong.append(f"{module} imports {name}")
    return sorted(wrong)


def test_process_plumbing_knows_no_domain_code() -> None:
    assert plumbing_imports(MODULES) == []
