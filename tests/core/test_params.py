"""Params: every bad input is refused with a message naming the key and the fix."""

import pandas as pd
import pytest

from mlhelpers.core.io import DataError

from mlhelpers.core.paramfile import load_params, parse_overrides
from mlhelpers.core.params import (PROJECT_ROOT, Params, ParamsError, resolve_path, validate_notebook_params,
                                   validate_params)


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_demo_params_are_valid_and_match_the_defaults():
    params = load_params(PROJECT_ROOT / "params" / "demo.yaml")
    assert params.target == "Status"
    assert params.data_file == PROJECT_ROOT / "data" / "credit.csv"
    # The notebooks' defaults are the schema's defaults: they must run the demo.
    defaults = Params()
    assert (defaults.data_path, defaults.target, defaults.seed) == (params.data_path, params.target, params.seed)


def test_regression_params_are_valid():
    params = load_params(PROJECT_ROOT / "params" / "diamonds.yaml")
    assert (params.task, params.target) == ("regression", "price")


def test_relative_paths_start_at_the_project_root():
    assert resolve_path("data/credit.csv") == PROJECT_ROOT / "data" / "credit.csv"
    assert resolve_path("/tmp/x.csv").as_posix() == "/tmp/x.csv"


def test_overrides_are_typed_like_yaml():
    assert parse_overrides(["cv_folds=3", "models=[dummy, linear]", "task=regression"]) == {
        "cv_folds": 3, "models": ["dummy", "linear"], "task": "regression"}
    with pytest.raises(ParamsError, match="expected key=value"):
        parse_overrides(["cv_folds"])


def test_overrides_win_over_the_file():
    params = load_params(PROJECT_ROOT / "params" / "demo.yaml", ["cv_folds=3", "seed=7"])
    assert (params.cv_folds, params.seed) == (3, 7)


@pytest.mark.parametrize("text, message", [
    ("target: Status\ncv_fold: 3\n", r"unknown key 'cv_fold' \(did you mean 'cv_folds'\?\)"),
    ("target: Status\ncv_folds: five\n", r"key 'cv_folds': Input should be a valid integer; got 'five'"),
    ("target: Status\ncv_folds: 1\n", r"key 'cv_folds': .*greater than or equal to 2"),
    ("target: Status\ntest_size: 1.5\n", r"key 'test_size': .*less than 1"),
    ("target: Status\ntest_size: 0\n", r"key 'test_size': .*greater than 0"),
    ("target: Status\ntask: clasification\n", r"key 'task': Input should be 'auto', 'classification' or 'regression'"),
    ("target: status\n", r"key 'target': 'status' is not a column of credit.csv \(did you mean 'Status'\?\)"),
    ("data_path: data/nope.csv\n", r"key 'data_path': file .*nope.csv does not exist"),
    ("target: Status\nprimary_metric: auc\n", r"key 'primary_metric': unknown metric 'auc'"),
    ("target: Status\nmodels: [xgb]\n", r"key 'models.0'"),
    ("target: Status\nmodels: []\n", r"key 'models'"),
    ("target: Status\ndrop_columns: [Nope]\n", r"key 'drop_columns': 'Nope' is not a column"),
    ("target: Status\ndrop_columns: [Status]\n", r"'drop_columns' lists the target"),
    ("target: Status\ntime_column: Status\n", r"key 'time_column' names the target 'Status', so the answer would "
                                              r"decide the split; point time_column at another column"),
    ("target: Status\ngroup_column: Status\n", r"key 'group_column' names the target 'Status'"),
    ("target: Status\ngroup_column: Home\ntime_column: Age\n", r"keys 'group_column' and 'time_column' are both set"),
    ("target: Status\nn_jobs: 0\n", r"key 'n_jobs': must be -1"),
    ("target: Status\nselected_model: xgbost\n", r"key 'selected_model': unknown model 'xgbost' \(did you mean 'xgboost'\?\)"),
    ("target: Status\ncv_folds: true\n", r"key 'cv_folds': Input should be a valid integer"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write(tmp_path, text))


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ParamsError, match=r"malformed YAML at line 2, column 12: mapping values are not allowed"):
        load_params(write(tmp_path, "target: Status\ncv_folds: 3: 4\n"))


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(ParamsError, match="the file is empty"):
        load_params(write(tmp_path, "# nothing here\n"))


def test_a_list_instead_of_a_mapping_is_refused(tmp_path):
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(write(tmp_path, "- target\n- Status\n"))


def test_missing_params_file_is_refused(tmp_path):
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "absent.yaml")


def test_notebook_namespace_is_validated_like_the_cli():
    namespace = {"In": [], "Out": {}, "_": None, "get_ipython": print,
                 "target": "Status", "cv_folds": 3, "run_dir": "runs/x"}
    assert validate_notebook_params(namespace).cv_folds == 3
    with pytest.raises(ParamsError, match=r"unknown key 'cv_fold'"):
        validate_notebook_params(namespace | {"cv_fold": 3})
    with pytest.raises(ParamsError, match=r"key 'test_size'"):
        validate_notebook_params(namespace | {"test_size": 2.0})


def test_validation_without_data_check_does_not_touch_files():
    assert validate_params({"data_path": "nowhere.csv"}, check_data=False).data_path == "nowhere.csv"


# ------------------------------------------------------------------------------------------ untrusted YAML

@pytest.mark.parametrize("text, message", [
    ("target: Status\ntarget: Home\n", r"key 'target' is given twice at line 2, column 1; keep one of them"),
    ("target: Status\nseed: 1\nseed: 2\n", r"key 'seed' is given twice at line 3"),
    ("target: Status\n1: x\n", r"key 1 is not a string at line 2"),
    ("target: Status\nyes: 3\n", r"key True is not a string at line 2"),
    ("target: Status\n? [a, b]\n: 3\n", r"key \['a', 'b'\] is not a string"),
    ("a: &x Status\ntarget: *x\n", r"alias \*x is not allowed in a params file at line 2, column 9; write the value out"),
])
def test_ambiguous_yaml_is_refused_with_its_line(tmp_path, text, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write(tmp_path, text))


def test_an_alias_bomb_gets_one_short_message_fast(tmp_path):
    # 9 levels of 9 aliases: 387 million strings once expanded; a 500-byte file once printed 2.1 GB of error
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = write(tmp_path, "\n".join(lines + ["target: *a8", ""]))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert "alias *a0 is not allowed" in str(caught.value) and len(str(caught.value)) < 300


def test_error_messages_stay_short_whatever_the_value():
    huge = [["x" * 1000] * 1000] * 1000
    with pytest.raises(ParamsError) as caught:
        validate_params({"target": huge, **{f"unknown_{i}": i for i in range(50)}}, check_data=False)
    message = str(caught.value)
    assert "and 41 more problems" in message and len(message) < 5000


def test_deeply_nested_or_huge_params_files_are_refused(tmp_path):
    with pytest.raises(ParamsError, match="nested too deeply"):
        load_params(write(tmp_path, "target: " + "[" * 5000 + "]" * 5000 + "\n"))
    with pytest.raises(ParamsError, match="is not a params file"):
        load_params(write(tmp_path, "target: Status\n" + "# padding\n" * 200_000))


def test_overrides_are_read_as_strictly():
    # an alias on the command line is just text, never an expansion
    assert parse_overrides(["target=*a"]) == {"target": "*a"}


@pytest.mark.parametrize("text, message", [
    ("target: Status\nseed: 4294967296\n", r"key 'seed': Input should be less than or equal to 4294967295"),
    ("target: Status\nseed: 1099511627776\n", r"key 'seed'"),
    ("target: Status\ntime_budget_seconds: .inf\n", r"key 'time_budget_seconds': Input should be a finite number"),
    ("target: Status\ntime_budget_seconds: .nan\n", r"key 'time_budget_seconds': Input should be a finite number"),
    ("target: Status\ntest_size: .nan\n", r"key 'test_size': Input should be a finite number"),
])
def test_numbers_beyond_what_a_step_can_use_are_refused_up_front(tmp_path, text, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write(tmp_path, text))


def test_the_largest_seed_numpy_takes_is_accepted(tmp_path):
    assert load_params(write(tmp_path, "target: Status\nseed: 4294967295\n")).seed == 2**32 - 1


def test_data_sheet_picks_a_sheet_and_is_checked_against_the_workbook(tmp_path, credit):
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        credit.head(40).to_excel(writer, sheet_name="data", index=False)
        pd.DataFrame({"note": ["from data/credit.csv"]}).to_excel(writer, sheet_name="notes", index=False)
    with pytest.raises(DataError, match=r"book\.xlsx: the workbook has 2 sheets \(0: 'data', 1: 'notes'\); set data_sheet"):
        load_params(write(tmp_path, f"data_path: {book}\ntarget: Status\n"))
    for sheet in ("data", 0):
        assert load_params(write(tmp_path, f"data_path: {book}\ntarget: Status\ndata_sheet: {sheet}\n")).data_sheet == sheet
    with pytest.raises(ParamsError, match=r"key 'data_sheet': a sheet index counts from 0"):
        load_params(write(tmp_path, f"data_path: {book}\ntarget: Status\ndata_sheet: -1\n"))
    with pytest.raises(DataError, match=r"credit\.csv: data_sheet \('data'\) applies to Excel workbooks only"):
        load_params(write(tmp_path, "target: Status\ndata_sheet: data\n"))


def test_a_truncated_archive_is_refused_before_any_step(tmp_path):
    whole = (PROJECT_ROOT / "data" / "diamonds.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])  # its first rows still decompress
    with pytest.raises(DataError, match=r"cut\.csv\.gz: the compressed file is truncated or corrupt"):
        load_params(write(tmp_path, f"data_path: {tmp_path / 'cut.csv.gz'}\ntarget: price\n"))


def test_data_sheet_with_a_folder_of_files_is_refused(tmp_path, credit, write_parts):
    folder = write_parts(credit, tmp_path / "parts", 2)
    with pytest.raises(ParamsError, match=r"key 'data_sheet' \(0\) applies to one Excel workbook.*remove data_sheet"):
        load_params(write(tmp_path, f"data_path: {folder}\ntarget: Status\ndata_sheet: 0\n"))
