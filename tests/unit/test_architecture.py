"""Guard rails of ARCHITECTURE.md and STYLE.md that a test can hold."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
# The domain may use the standard library, minus whatever reaches the outside world or the clock.
FORBIDDEN_IN_DOMAIN = {
    "os",
    "sys",
    "io",
    "pathlib",
    "shutil",
    "socket",
    "subprocess",
    "asyncio",
    "threading",
    "time",
    "random",
    "logging",
    "sqlite3",
    "urllib",
    "http",
    "tempfile",
    "secrets",
}
ALLOWED_IN_DOMAIN = (set(sys.stdlib_module_names) - FORBIDDEN_IN_DOMAIN) | {"biip"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_imports_only_itself_and_the_standard_library():
    for path in (APP / "domain").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert name.startswith("app.domain") or top in ALLOWED_IN_DOMAIN, f"{path.name} imports {name}"


def test_layers_point_inwards():
    """routes → services → domain; services → db; nothing below imports routes or web."""
    for layer, forbidden in {
        "domain": ("app.services", "app.db", "app.routes", "app.web"),
        "db": ("app.services", "app.routes", "app.web"),
        "services": ("app.routes", "app.web"),
    }.items():
        for path in (APP / layer).rglob("*.py"):
            for name in imports_of(path):
                assert not name.startswith(forbidden), f"{path.relative_to(ROOT)} imports {name}"


def test_every_template_a_route_names_exists():
    referenced: set[str] = set()
    for path in list((APP / "routes").rglob("*.py")) + list((APP / "web").rglob("*.py")):
        text = path.read_text()
        referenced.update(re.findall(r'"([a-z_/]+/[_a-z]+\.html)"', text))
    assert referenced, "no template reference found: the pattern is stale"
    for name in referenced:
        if "{" not in name:
            assert (APP / "templates" / name).exists(), name
    for role in ("operator", "supervisor", "admin"):
        assert (APP / "templates" / "home" / f"{role}.html").exists()


def test_templates_contain_no_inline_script_or_style():
    for path in (APP / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path.name}"
        assert " style=" not in text and "<style" not in text, f"inline style in {path.name}"
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", text), f"inline event handler in {path.name}"


def test_the_repository_names_no_machine_path():
    for path in ROOT.rglob("*"):
        if any(
            part
            in {
                ".venv",
                ".git",
                "var",
                "node_modules",
                ".pytest_cache",
                ".mypy_cache",
                ".ruff_cache",
                ".hypothesis",
                "test-artifacts",
                "__pycache__",
            }
            for part in path.parts
        ):
            continue
        if path.is_file() and path.suffix in {
            ".py",
            ".md",
            ".html",
            ".toml",
            ".ini",
            ".cfg",
            ".txt",
            ".ps1",
            ".xml",
        }:
            text = path.read_text(errors="ignore")
            assert str(ROOT) not in text and "/" + "root/" not in text, (
                f"machine path in {path.relative_to(ROOT)}"
            )
