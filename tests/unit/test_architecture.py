"""domain/ stays pure: it imports no I/O library, standard or third-party (import-linter checks
the third-party ones in CI too; this test also covers the standard library)."""

import ast
from pathlib import Path

import accord.domain

FORBIDDEN = {
    "os",
    "io",
    "socket",
    "subprocess",
    "asyncio",
    "pathlib",
    "shutil",
    "tempfile",
    "urllib",
    "http",
    "smtplib",
    "logging",
    "sqlalchemy",
    "psycopg",
    "alembic",
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
    "aiosmtplib",
    "argon2",
    "pgserver",
    "structlog",
    "typer",
    "rich",
    "cryptography",
    "platformdirs",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_no_io_library() -> None:
    domain = Path(accord.domain.__file__).parent
    offenders = {
        str(path.relative_to(domain)): sorted(_imports(path) & FORBIDDEN)
        for path in domain.rglob("*.py")
        if _imports(path) & FORBIDDEN
    }
    assert offenders == {}


def test_domain_imports_nothing_outside_itself_from_accord() -> None:
    domain = Path(accord.domain.__file__).parent
    for path in domain.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("accord."):
                assert node.module.startswith("accord.domain"), (path.name, node.module)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_accord() -> None:
    """A module that needs another that needs it back is a design smell; none are allowed
    (``TYPE_CHECKING`` imports count: a circle of types is still a circle of concepts)."""
    import grimp

    graph = grimp.build_graph("accord")
    # A package importing its own submodules (its __init__ re-exports) is not a circle.
    circles = [
        group
        for group in _cycles(graph)
        if not all(
            m.startswith(min(group, key=len) + ".") or m == min(group, key=len) for m in group
        )
    ]
    assert circles == []
