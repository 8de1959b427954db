"""The code reads like the data flow: short functions, a render() that fits one screen, and a README
code map that says each module's one job in the words of its docstring's first line."""

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
MODULES = sorted((ROOT / "pipeline").rglob("*.py"))


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1 + len(node.decorator_list)


def test_no_function_in_pipeline_is_over_80_lines():
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)"
            for p in MODULES for name, line, n in functions(p) if n > 80]
    assert long == []


def test_render_fits_one_screen():
    [n] = [n for name, _, n in functions(ROOT / "pipeline" / "render.py") if name == "render"]
    assert n <= 60


def test_the_readme_code_map_names_each_module_with_its_docstrings_first_line():
    readme = (ROOT / "README.md").read_text()
    code_map = readme[readme.index("## Code map"):]
    code_map = code_map[:code_map.index("\n## ", 4)]
    for path in MODULES:
        first = (ast.get_docstring(ast.parse(path.read_text())) or "").splitlines()[0]
        name = str(path.relative_to(ROOT / "pipeline"))
        assert f"{name:<20}{first}" in code_map, f"README's code map lacks `{name}`: {first}"
