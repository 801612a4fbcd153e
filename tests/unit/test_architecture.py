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
