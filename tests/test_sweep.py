"""Sweeps: the grid, every variant validated before anything runs, a failed variant that does not stop the
others, sweep.json, and the explore cache that variants and reruns share."""

from __future__ import annotations

import json

import pytest

from mlhelpers.cli import main
from mlhelpers.core.artifacts import STEPS
from mlhelpers.core.params import PROJECT_ROOT, ParamsError
from mlhelpers.pipeline import new_run_dir, run_pipeline
from mlhelpers.runs import list_runs
from mlhelpers.sweep import MAX_VARIANTS, new_sweep_dir, parse_grid, plan_sweep, run_sweep

DEMO = PROJECT_ROOT / "params" / "demo.yaml"


def test_grid_values_are_yaml_and_brackets_or_quotes_keep_commas():
    grid = parse_grid(["cv_folds=3, 5", "models=[dummy,linear],[xgboost]", "drop_columns=['a,b']", "seed=1"])
    assert grid == {"cv_folds": [3, 5], "models": [["dummy", "linear"], ["xgboost"]], "drop_columns": [["a,b"]],
                    "seed": [1]}


@pytest.mark.parametrize("pairs, message", [
    (["cv_folds"], "expected key=value1,value2"),
    (["cv_folds=3,"], "no empty value"),
    (["cv_folds=3", "cv_folds=5"], "given twice"),
    (["run_dir=a,b"], "'run_dir' cannot vary in a sweep"),
    (["mlflow_experiment=a,b"], "cannot vary in a sweep: the variants log under one parent run"),
    ([], "at least one --grid"),
])
def test_malformed_grids_are_refused(pairs, message):
    with pytest.raises(ParamsError, match=message):
        parse_grid(pairs)


def test_every_variant_is_validated_before_anything_runs():
    plan = plan_sweep(DEMO, ["cv_folds=3,4", "seed=1,2"], ["models=[dummy]"])
    assert [overrides for overrides, _ in plan.variants] == [
        {"cv_folds": 3, "seed": 1}, {"cv_folds": 3, "seed": 2}, {"cv_folds": 4, "seed": 1}, {"cv_folds": 4, "seed": 2}]
    assert all(params.models == ["dummy"] for _, params in plan.variants) and plan.name == "demo"
    with pytest.raises(ParamsError, match=r"demo.yaml with cv_folds=1: key 'cv_folds'"):
        plan_sweep(DEMO, ["cv_folds=3,1"])
    with pytest.raises(ParamsError, match="with models=\\['dummy', 'lasso'\\]: key 'models"):
        plan_sweep(DEMO, ["models=[dummy],[dummy,lasso]"])
    with pytest.raises(ParamsError, match="cv_folds both in --set and --grid"):
        plan_sweep(DEMO, ["cv_folds=3,4"], ["cv_folds=5"])
    with pytest.raises(ParamsError, match=f"more than {MAX_VARIANTS}"):
        plan_sweep(DEMO, ["seed=" + ",".join(map(str, range(11))), "cv_folds=" + ",".join(map(str, range(2, 12)))])


def test_a_bad_sweep_exits_2_and_creates_nothing(tmp_path, capsys):
    code = main(["sweep", str(DEMO), "--grid", "cv_folds=3,0", "--runs-root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "key 'cv_folds'" in err and "Traceback" not in err and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_failed_variant_does_not_stop_the_others_and_explore_is_reused(tmp_path, tiny_notebooks):
    notebooks = tiny_notebooks(tmp_path / "nb", failing_step="baseline", fail_when="cv_folds == 4")
    plan = plan_sweep(DEMO, ["cv_folds=3,4,5"], ["mlflow_tracking_uri=sqlite:///" + str(tmp_path / "mlflow.db")])
    sweep_dir = new_sweep_dir(tmp_path / "runs", plan.name)
    record = run_sweep(plan, ["explore", "baseline"], sweep_dir, progress=False, cache_root=tmp_path / "runs" / ".cache",
                       notebooks_dir=notebooks)

    assert sweep_dir.name.startswith("sweep-") and sweep_dir.parent == tmp_path / "runs" / "demo"
    saved = json.loads((sweep_dir / "sweep.json").read_text())
    assert saved == json.loads(json.dumps(record | {"schema_version": 1}))
    assert [run["status"] for run in saved["runs"]] == ["succeeded", "failed", "succeeded"]
    assert saved["status"] == "failed" and saved["n_failed"] == 1 and saved["grid"] == {"cv_folds": [3, 4, 5]}
    assert saved["runs"][1]["error"]["message"].startswith("ValueError: boom in ")
    assert saved["mlflow_parent_run_id"] is None  # no export step, no MLflow run
    # explore ran once: the later variants copied it (same explore parameters, data and code)
    first = sweep_dir / "v01"
    for name in ("v02", "v03"):
        manifest = json.loads((sweep_dir / name / "manifest.json").read_text())
        assert manifest["steps"]["explore"]["reused_from"] == str(first)
        assert (sweep_dir / name / "explore" / "done.txt").read_text() == "42"
        assert (sweep_dir / name / STEPS["explore"].notebook).is_file()
    assert "reused_from" not in json.loads((first / "manifest.json").read_text())["steps"]["explore"]
    assert (sweep_dir / "v03" / "baseline" / "done.txt").read_text() == "5"
    assert json.loads((sweep_dir / "v03" / "manifest.json").read_text())["overrides"] == \
        {"mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "cv_folds": 5}
    assert {row["run"] for row in list_runs(tmp_path / "runs")} == {f"demo/{sweep_dir.name}/v0{i}" for i in (1, 2, 3)}

    # the same cache serves a plain rerun on unchanged data; another seed (an explore parameter) computes anew
    rerun = run_pipeline(plan.variants[0][1], ["explore"], new_run_dir(tmp_path / "runs", "demo"), progress=False,
                         notebooks_dir=notebooks, cache_root=tmp_path / "runs" / ".cache")
    assert rerun.manifest["steps"]["explore"]["reused_from"] == str(first)
    other = plan.variants[0][1].model_copy(update={"seed": 7})
    fresh = run_pipeline(other, ["explore"], new_run_dir(tmp_path / "runs", "demo"), progress=False,
                         notebooks_dir=notebooks, cache_root=tmp_path / "runs" / ".cache")
    assert "reused_from" not in fresh.manifest["steps"]["explore"] and (fresh.run_dir / "explore" / "done.txt").read_text() == "7"
