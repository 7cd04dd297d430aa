"""A block that a route renders alone (an htmx swap) sees only what it imports itself.

jinja2-fragments renders the block without the rest of its template, so a macro imported at the top
of the template is undefined there: the page works and its htmx swap fails with a 500.
"""

from collections.abc import Iterable
from pathlib import Path

from jinja2 import nodes

from app.web.templating import make_environment

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"


def _imported(candidates: Iterable[nodes.Node]) -> set[str]:
    """Names brought in by the `{% from ... import ... %}` among these nodes."""
    return {
        alias if isinstance(alias, str) else alias[1]
        for node in candidates
        if isinstance(node, nodes.FromImport)
        for alias in node.names
    }


def _called(block: nodes.Block) -> set[str]:
    return {call.node.name for call in block.find_all(nodes.Call) if isinstance(call.node, nodes.Name)}


def _blocks_missing_imports() -> list[str]:
    env = make_environment()
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        tree = env.parse(path.read_text(encoding="utf-8"), name)
        top = _imported(tree.body)
        # Blocks inside another block are the fragments that swaps render; a layout's blocks never are.
        fragments = {
            block.name: block for outer in tree.find_all(nodes.Block) for block in outer.find_all(nodes.Block)
        }
        for block in fragments.values():
            missing = sorted((_called(block) & top) - _imported(block.find_all(nodes.FromImport)))
            if missing:
                problems.append(f"{name}, block {block.name}: {', '.join(missing)}")
    return problems


def test_blocks_import_the_macros_they_call() -> None:
    assert _blocks_missing_imports() == []


def test_the_check_sees_a_block_calling_a_macro_imported_at_the_top(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "page.html").write_text(
        '{% from "macros/labels.html" import role_label %}'
        "{% block content %}{% block results %}{{ role_label(user.role) }}{% endblock %}{% endblock %}",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.TEMPLATES", tmp_path)
    assert _blocks_missing_imports() == ["page.html, block results: role_label"]


def test_the_check_accepts_a_fragment_importing_what_it_calls(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "page.html").write_text(
        '{% from "macros/labels.html" import role_label %}{% block content %}{{ role_label("admin") }}'
        '{% block results %}{% from "macros/labels.html" import role_label %}'
        "{{ role_label(user.role) }}{% endblock %}{% endblock %}",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.TEMPLATES", tmp_path)
    assert _blocks_missing_imports() == []
