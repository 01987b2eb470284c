"""quotewatch's structure, from its source: instrumentation stays outside its functions, and
no module or package takes part in an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import quotewatch
import quotewatch.metrics

SOURCE = Path(quotewatch.__file__).resolve().parent
METRICS = SOURCE / "metrics.py"
METRIC_METHODS = {"inc", "dec", "set", "observe", "labels", "time", "set_function"}


def sources() -> list[Path]:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 10
    return files


def test_only_metrics_py_imports_prometheus_client() -> None:
    offenders = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(n == "prometheus_client" or n.startswith("prometheus_client.") for n in names):
                offenders.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert offenders == [f"metrics.py:{n}" for n in _metrics_import_lines()]


def _metrics_import_lines() -> list[int]:
    tree = ast.parse(METRICS.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
    ]


def _metric_names() -> set[str]:
    """Names quotewatch.metrics binds to metric objects (anything with a metric method)."""
    return {
        name
        for name, value in vars(quotewatch.metrics).items()
        if name.isupper() and any(callable(getattr(value, m, None)) for m in METRIC_METHODS)
    }


class _MetricCalls(ast.NodeVisitor):
    """Finds `<metric>.<method>(...)` inside function bodies, the metric named directly,
    as `metrics.<NAME>`, or through a local alias of either."""

    def __init__(self, metric_names: set[str], module_aliases: set[str]) -> None:
        self.metric_names = metric_names
        self.module_aliases = module_aliases
        self.found: list[int] = []
        self._depth = 0

    def _names_metric(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.metric_names
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node.value.id in self.module_aliases and node.attr in _metric_names()
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr == "labels" and self._names_metric(node.func.value)
        return False

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._depth += 1
        for child in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(child)
        self._depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            self._depth
            and isinstance(func, ast.Attribute)
            and func.attr in METRIC_METHODS
            and self._names_metric(func.value)
        ):
            self.found.append(node.lineno)
        self.generic_visit(node)


def _imported_metric_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    metric_names = _metric_names()
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "quotewatch.metrics":
            names |= {a.asname or a.name for a in node.names if a.name in metric_names}
        elif isinstance(node, ast.ImportFrom) and node.module == "quotewatch":
            modules |= {a.asname or a.name for a in node.names if a.name == "metrics"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "quotewatch.metrics" and a.asname}
    return names, modules


def test_no_function_body_outside_metrics_py_calls_a_metric() -> None:
    offenders = []
    for path in sources():
        if path == METRICS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        names, modules = _imported_metric_names(tree)
        if not names and not modules:
            continue
        visitor = _MetricCalls(names, modules)
        visitor.visit(tree)
        offenders += [f"{path.relative_to(SOURCE)}:{line}" for line in visitor.found]
    assert offenders == []


def test_the_scan_finds_a_metric_call_in_a_function_body() -> None:
    tree = ast.parse(
        "from quotewatch.metrics import ML_SAMPLES as S, ML_TRAIN\n"
        "import quotewatch.metrics as m\n"
        "@counted(S)\n"
        "def ok(): return 1\n"
        "def bad():\n"
        "    S.labels(label='1').inc()\n"
        "    m.ML_TRAIN.observe(1.0)\n"
        "    f = lambda: ML_TRAIN.observe(2.0)\n"
    )
    names, modules = _imported_metric_names(tree)
    visitor = _MetricCalls(names, modules)
    visitor.visit(tree)
    assert sorted(set(visitor.found)) == [6, 7, 8]


# --- import cycles ---------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The quotewatch modules `path` imports anywhere in it (functions and TYPE_CHECKING
    blocks included). `from package import module` names the module, not the package."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            submodules = {f"{source}.{a.name}" for a in node.names} & modules
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(source)
    return (found & modules) - {name}


def import_graph() -> dict[str, set[str]]:
    """Module -> the quotewatch modules it imports."""
    paths = {_module_name(path): path for path in sources()}
    return {name: _imports(path, set(paths)) for name, path in paths.items()}


def package_of(module: str) -> str:
    """`quotewatch.app.runner` -> `app`; top-level modules are their own package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_package_import_cycle() -> None:
    packages: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        mine = package_of(module)
        packages.setdefault(mine, set()).update(
            theirs for theirs in map(package_of, imported) if theirs != mine
        )
    assert {"app", "cli", "dashboard", "grafana", "ingest", "pipeline", "storage"} <= set(packages)
    assert cycles(packages) == []


def test_the_cycle_scan_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert package_of("quotewatch.app.runner") == "app"
    assert package_of("quotewatch.rows") == "rows"
