"""Committed notebooks follow the contract: clean, a tagged parameters cell of literals, no logic."""

import ast

import nbformat
import pytest

from mlhelpers.config import Params
from mlhelpers.pipeline import NOTEBOOKS_DIR, STEPS

NOTEBOOKS = [NOTEBOOKS_DIR / name for name in STEPS.values()]


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_every_step_has_its_notebook():
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(STEPS.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in code_cells(path):
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_holds_commented_literal_defaults(path):
    first = code_cells(path)[0]
    assert "parameters" in first.metadata.get("tags", [])
    defaults = Params().model_dump()
    lines = [line for line in first.source.splitlines() if line.strip()]
    for node in ast.parse(first.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "only `name = literal` lines"
        name = node.targets[0].id
        value = ast.literal_eval(node.value)  # raises unless a literal
        assert name in defaults, f"{path.name}: {name} is not a Params key"
        assert value == defaults[name], f"{path.name}: default of {name} differs from Params"
        assert "#" in lines[node.lineno - 1], f"{path.name}: {name} needs a comment giving its allowed values"
    assert "run_dir" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_validated_right_after_and_no_logic_is_defined(path):
    cells = code_cells(path)
    assert "validate_notebook_params(globals())" in cells[1].source
    for cell in cells:
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defined, f"{path.name}: move functions and classes into mlhelpers"
