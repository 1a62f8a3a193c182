"""Committed notebooks follow the contract (clean, a tagged parameters cell of literals, no logic), and nbval runs
every one of them top to bottom, in order, on the demo data."""

import ast
import subprocess
import sys

import nbformat
import pytest
import yaml

from mlhelpers.core.artifacts import STEPS
from mlhelpers.core.params import PROJECT_ROOT, Params
from mlhelpers.pipeline import NOTEBOOKS_DIR

NOTEBOOKS = [NOTEBOOKS_DIR / step.notebook for step in STEPS.values()]


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_every_step_has_its_notebook():
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(step.notebook for step in STEPS.values())


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


def test_notebook_defaults_are_the_demo_params():
    """Run All in JupyterLab and `mlh run params/demo.yaml` run the same experiment."""
    demo = yaml.safe_load((PROJECT_ROOT / "params" / "demo.yaml").read_text())
    defaults = Params().model_dump()
    assert {key: defaults[key] for key in demo} == demo


@pytest.mark.slow
def test_nbval_runs_every_notebook_in_order_with_its_defaults(tmp_path):
    """nbval over copies of notebooks/ whose only change is the run folder and MLflow store, pointed into a
    temporary folder as papermill would inject them: the tests never write into the repository's runs/."""
    import papermill
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    copies = tmp_path / "notebooks"
    copies.mkdir()
    redirected = {"run_dir": str(tmp_path / "runs" / "interactive"),
                  "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"}
    for path in NOTEBOOKS:
        declared = papermill.inspect_notebook(str(path))
        notebook = parameterize_notebook(load_notebook_node(str(path)),
                                         {k: v for k, v in redirected.items() if k in declared})
        nbformat.write(notebook, copies / path.name)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-o", "addopts=",
         "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600", str(copies)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]
    assert (tmp_path / "runs" / "interactive" / "model" / "model.skops").is_file()
