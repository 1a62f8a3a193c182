"""Committed notebooks follow the contract (clean, a tagged parameters cell of literals, no logic), and nbval runs
every one of them top to bottom, in order, on the demo data."""

import ast
import subprocess
import sys

import json

import nbformat
import pytest
import yaml

from mlhelpers.compare.params import CompareParams
from mlhelpers.core.artifacts import NOTEBOOK_STEPS
from mlhelpers.core.params import PROJECT_ROOT, Params
from mlhelpers.monitor.params import MonitorParams
from mlhelpers.pipeline import NOTEBOOKS_DIR

NOTEBOOKS = [NOTEBOOKS_DIR / step.notebook for step in NOTEBOOK_STEPS.values()]
# The schema each notebook validates its parameters with: the pipeline steps share Params.
SCHEMAS = {"04_compare.ipynb": CompareParams, "05_monitor.ipynb": MonitorParams}


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def test_every_step_has_its_notebook():
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(path.name for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in code_cells(path):
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_holds_commented_literal_defaults(path):
    first = code_cells(path)[0]
    assert "parameters" in first.metadata.get("tags", [])
    schema = SCHEMAS.get(path.name, Params)
    defaults = schema().model_dump()
    lines = [line for line in first.source.splitlines() if line.strip()]
    for node in ast.parse(first.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "only `name = literal` lines"
        name = node.targets[0].id
        value = ast.literal_eval(node.value)  # raises unless a literal
        assert name in defaults, f"{path.name}: {name} is not a {schema.__name__} key"
        assert value == defaults[name], f"{path.name}: default of {name} differs from {schema.__name__}"
        assert "#" in lines[node.lineno - 1], f"{path.name}: {name} needs a comment giving its allowed values"
    assert '"runs/interactive' in first.source  # every notebook works in the interactive run folder by default


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_validated_right_after_and_no_logic_is_defined(path):
    cells = code_cells(path)
    schema = SCHEMAS.get(path.name)
    expected = f"validate_notebook_params(globals(), {schema.__name__})" if schema else "validate_notebook_params(globals())"
    assert expected in cells[1].source
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

    def redirected(value):  # runs/... -> <tmp>/runs/...: every path parameter, whatever the notebook calls it
        if isinstance(value, list):
            return [redirected(item) for item in value]
        return str(tmp_path / value) if isinstance(value, str) and value.startswith("runs/") else value

    for path in NOTEBOOKS:
        declared = papermill.inspect_notebook(str(path))
        defaults = SCHEMAS.get(path.name, Params)().model_dump()
        values = {name: redirected(defaults[name]) for name in declared if redirected(defaults[name]) != defaults[name]}
        if "mlflow_tracking_uri" in declared:
            values["mlflow_tracking_uri"] = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
        notebook = parameterize_notebook(load_notebook_node(str(path)), values)
        nbformat.write(notebook, copies / path.name)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-o", "addopts=",
         "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600", str(copies)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]
    interactive = tmp_path / "runs" / "interactive"
    assert (interactive / "model" / "model.skops").is_file() and (interactive / "model" / "reference.json").is_file()
    # 04 compared the one interactive run; 05 checked the demo data against its reference: no drift
    assert (interactive / "compare" / "comparison.csv").read_text().count("\n") == 2
    assert json.loads((interactive / "monitor" / "drift_report.json").read_text())["drifted"] is False
