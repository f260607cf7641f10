"""The layering the conventions promise, checked on the source rather than hoped for.

- A service reaches another only through the other's published contract (the generated ``billing.<service>.v1``
  stubs), with a client kept in its own ``adapters/``: no module under ``services/<a>/`` imports ``services.<b>``.
  Otherwise one service's refactoring silently breaks another, and they can no longer be deployed apart.
- ``services/*/domain/`` is pure Python: it imports no gRPC, protobuf, SQLAlchemy, NATS or asyncpg, neither
  directly nor through a ``billing_runtime`` module that does, and nothing of its own service's outer layers.
  That is what keeps pricing and tax testable in microseconds.

Imports are read with :mod:`ast` (every import statement, including ones inside functions), so nothing is
imported to check it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
RUNTIME = ROOT / "billing_runtime"

# Top-level packages that do I/O or speak a wire format; a domain module importing one is no longer pure.
# ``billing`` is the generated protobuf code: translating protobuf <-> domain is the adapters' job.
IO_PACKAGES = frozenset(
    {"grpc", "grpc_health", "grpc_reflection", "grpc_status", "google", "billing", "sqlalchemy", "alembic",
     "nats", "asyncpg"}
)


@dataclass(frozen=True)
class Import:
    module: str  # the full dotted name, e.g. "services.metering.client" or "grpc"
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every module a source imports. ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a
    module); relative imports are resolved against ``module``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(target, node.lineno)
            for alias in node.names:
                yield Import(f"{target}.{alias.name}", node.lineno)


def python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def file_imports(path: Path, root: Path = ROOT) -> list[Import]:
    return list(imports_of(path.read_text(), module_name(path, root), is_package=path.name == "__init__.py"))


@cache
def runtime_io_packages(module: str) -> frozenset[str]:
    """The I/O packages a ``billing_runtime`` module imports, directly or through other runtime modules."""
    path = RUNTIME / f"{module.removeprefix('billing_runtime.').replace('.', '/')}.py"
    if module == "billing_runtime":
        path = RUNTIME / "__init__.py"
    if not path.exists():  # ``from billing_runtime import errors`` also yields "billing_runtime.errors.X"
        return frozenset()
    found: set[str] = set()
    for imported in file_imports(path):
        top = imported.module.split(".")[0]
        if top in IO_PACKAGES:
            found.add(top)
        elif top == "billing_runtime" and imported.module != module:
            found |= runtime_io_packages(imported.module)
    return frozenset(found)


def service_of(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root / "services").parts[0]


def cross_service_imports(paths: list[Path], root: Path = ROOT) -> list[str]:
    """One line per import statement in ``services/<a>/`` that reaches into ``services.<b>``."""
    problems: dict[tuple[Path, int], str] = {}
    for path in paths:
        own = service_of(path, root)
        for imported in file_imports(path, root):
            parts = imported.module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                where = f"{path.relative_to(root)}:{imported.line} imports {imported.module}"
                problems.setdefault((path, imported.line), where)
    return list(problems.values())


def impure_domain_imports(paths: list[Path], root: Path = ROOT) -> list[str]:
    """One line per import statement in ``services/*/domain/`` that brings in I/O or an outer layer."""
    problems: dict[tuple[Path, int], str] = {}
    for path in paths:
        rel = path.relative_to(root / "services").parts
        if len(rel) < 3 or rel[1] != "domain":
            continue
        own_domain = f"services.{rel[0]}.domain"
        for imported in file_imports(path, root):
            top = imported.module.split(".")[0]
            where = f"{path.relative_to(root)}:{imported.line} imports {imported.module}"
            if top in IO_PACKAGES:
                problem = where
            elif top == "billing_runtime" and (io := runtime_io_packages(imported.module)):
                problem = f"{where}, which imports {', '.join(sorted(io))}"
            elif top == "services" and not (
                imported.module == own_domain or imported.module.startswith(f"{own_domain}.")
            ):
                problem = f"{where}, outside its own domain package"
            else:
                continue
            problems.setdefault((path, imported.line), problem)
    return list(problems.values())


SERVICE_FILES = python_files(SERVICES)


def test_the_services_are_found() -> None:
    # Guards the checks below against passing vacuously if the tree moves.
    assert {service_of(path) for path in SERVICE_FILES} >= {"ingest", "metering", "invoicing", "gateway"}
    assert any(path.parts[-2] == "domain" for path in SERVICE_FILES)


def test_no_service_imports_another_service() -> None:
    assert cross_service_imports(SERVICE_FILES) == []


def test_domain_modules_import_no_io() -> None:
    assert impure_domain_imports(SERVICE_FILES) == []


def test_the_shared_runtime_imports_no_service() -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{imported.line} imports {imported.module}"
        for path in python_files(RUNTIME)
        for imported in file_imports(path)
        if imported.module.split(".")[0] == "services"
    ]
    assert problems == []


# The checks themselves, on made-up modules: each must catch what it is there to catch.


def write(tmp: Path, relative: str, source: str) -> Path:
    path = tmp / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


@pytest.mark.parametrize(
    "source",
    [
        "from services.metering.client import MeteringUsage\n",
        "import services.metering.adapters.tables\n",
        "from services import metering\n",
        "def later():\n    from services.metering import config\n",
        "from ...metering import config\n",
    ],
)
def test_a_cross_service_import_is_caught(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, "services/invoicing/adapters/usage.py", source)
    assert len(cross_service_imports([path], tmp_path)) == 1


def test_imports_within_the_service_and_of_contracts_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services/invoicing/adapters/usage.py",
        "from billing.metering.v1 import metering_pb2\nfrom services.invoicing.domain import money\n"
        "from ..domain import invoice\n",
    )
    assert cross_service_imports([path], tmp_path) == []


@pytest.mark.parametrize(
    "source",
    [
        "import grpc\n",
        "import sqlalchemy as sa\n",
        "from nats.js import JetStreamContext\n",
        "import asyncpg\n",
        "from billing.invoicing.v1 import invoicing_pb2\n",
        "from billing_runtime.database import UnitOfWork\n",  # sqlalchemy, through the runtime
        "from billing_runtime import outbox\n",  # sqlalchemy and nats, through the runtime
        "from billing_runtime.clients import call\n",  # grpc, two runtime modules deep
        "from services.invoicing.adapters.tables import metadata\n",
        "from ..service import catalog\n",
    ],
)
def test_an_impure_domain_import_is_caught(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, "services/invoicing/domain/pricing.py", source)
    assert len(impure_domain_imports([path], tmp_path)) == 1


def test_pure_domain_imports_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services/invoicing/domain/pricing.py",
        "from decimal import Decimal\nfrom billing_runtime.errors import InvalidArgument\n"
        "from services.invoicing.domain.money import round_minor\nfrom . import currencies\n",
    )
    assert impure_domain_imports([path], tmp_path) == []
