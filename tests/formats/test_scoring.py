"""Batch scoring on the real credit model: schema checks per row, chunked files, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mlhelpers.cli import main
from mlhelpers.core.io import DataError
from mlhelpers.core.schema import SchemaError, check_rows
from mlhelpers.formats.parity import PROBA_ATOL
from mlhelpers.formats.scoring import score_file
from mlhelpers.formats.served import ScoringError, load_model_dir, predict_rows, served_model_file

# Files are scored by the export step's recommended format (measured: ONNX, ~20x faster per row than
# skops here), whose probabilities match the in-memory pipeline within the export step's parity bound
# (PROBA_ATOL).


@pytest.fixture(scope="module")
def model(tmp_path_factory, model_run):
    run_dir, spec, data, pipeline = model_run(tmp_path_factory.mktemp("run"))
    schema = json.loads((run_dir / "model" / "input_schema.json").read_text())
    return run_dir / "model", schema, data, pipeline


def _reference(pipeline, rows: pd.DataFrame, schema) -> pd.DataFrame:
    """What the in-memory pipeline says for clean rows, labels and probabilities."""
    return predict_rows(pipeline, rows, schema)


def _broken_rows(data) -> pd.DataFrame:
    rows = data.X_test.head(6).astype(object).reset_index(drop=True)
    rows.loc[1, "Age"] = "forty"                       # wrong type
    rows.loc[2, "Home"] = "castle"                     # unseen category
    rows.loc[3, :] = np.nan                            # empty row
    rows.loc[4, ["Income", "Job"]] = [None, None]      # missing values: allowed, imputed
    rows.loc[5, ["Time", "Marital"]] = ["soon", "it's complicated"]  # two problems, both reported
    return rows


def test_check_rows_refuses_each_broken_row_with_its_reason(model):
    _, schema, data, _ = model
    check = check_rows(_broken_rows(data), schema)
    assert list(check.valid.index) == [0, 4]
    reasons = check.rejects["reason"].to_dict()
    assert reasons[1] == "Age: 'forty' is not a finite number"
    assert reasons[2].startswith("Home: unseen category 'castle' (known: ignore, other, owner")
    assert reasons[3] == "empty row: every feature is missing"
    assert reasons[5] == ("Time: 'soon' is not a finite number; Marital: unseen category \"it's complicated\" "
                          "(known: divorced, married, separated, single, widow)")
    assert check.rejects.loc[2, "Home"] == "castle"  # the raw row travels with its reason
    assert check.valid["Age"].dtype == float and check.valid.loc[4, ["Income", "Job"]].isna().all()


def test_check_rows_converts_text_like_a_csv_reader_gives_it(model):
    _, schema, data, pipeline = model
    text = data.X_test.head(20).astype(str).replace("nan", np.nan)
    check = check_rows(text, schema)
    assert check.rejects.empty
    pd.testing.assert_frame_equal(predict_rows(pipeline, check.valid, schema),
                                  _reference(pipeline, data.X_test.head(20), schema))


def test_missing_columns_refuse_the_whole_input(model):
    _, schema, data, _ = model
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['Job', 'Income'\] that the model needs"):
        check_rows(data.X_test.drop(columns=["Income", "Job"]), schema)


def test_extra_columns_are_ignored_and_reported(model):
    _, schema, data, pipeline = model
    rows = data.X_test.head(5).assign(customer_id=range(5), note="x")
    check = check_rows(rows, schema)
    assert check.extra_columns == ["customer_id", "note"] and len(check.valid) == 5
    assert list(check.valid.columns) == list(schema["columns"])


def test_boolean_columns_accept_true_false_spellings_only():
    schema = {"columns": {"flag": {"role": "boolean", "dtype": "bool", "missing_seen": False,
                                   "categories": [False, True]},
                          "x": {"role": "numeric", "dtype": "float64", "missing_seen": False}}}
    rows = pd.DataFrame({"flag": [True, "false", "1", 0, "maybe", None], "x": 1.0})
    check = check_rows(rows, schema)
    assert check.valid["flag"].tolist() == [True, False, True, False, None]
    assert check.rejects["reason"].tolist() == ["flag: 'maybe' is not true/false"]


@pytest.mark.parametrize("kind", ["csv", "parquet without pandas metadata"])
def test_true_false_columns_with_missing_values_read_as_objects_are_checked_as_booleans(credit, tmp_path, kind):
    """pandas reads such a column as objects (Python bools and NaN): the schema lists bools as categories and
    every present value was refused as an unseen category "True" (3,817 of 4,454 rows on the Dask engine)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlhelpers.core.io import load_table
    from mlhelpers.core.schema import infer_input_schema

    frame = credit.copy()
    frame["approved"] = pd.array(np.where(frame.index % 7 == 0, None, frame["Records"] == "no"), dtype="boolean")
    path = tmp_path / ("credit.csv" if kind == "csv" else "credit.parquet")
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:  # as pyarrow, Spark or DuckDB write it
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), path)
    read = load_table(path)
    assert read["approved"].dtype == object
    spec = {"target": "Status", "task": "classification", "model": "xgboost",
            "features": {"boolean": ["approved"], "numeric": ["Income"]}}
    schema = infer_input_schema(read[["approved", "Income"]], spec, ["bad", "good"])
    assert schema["columns"]["approved"]["categories"] == [False, True]
    check = check_rows(read, schema)
    both_missing = read["approved"].isna() & read["Income"].isna()
    assert set(check.rejects["reason"]) == {"empty row: every feature is missing"}
    assert len(check.rejects) == both_missing.sum()
    kept = read.loc[~both_missing, "approved"]
    assert check.valid["approved"].tolist() == pytest.approx(kept.tolist(), nan_ok=True)
    assert check.valid["approved"].dtype == object
    odd = check_rows(pd.DataFrame({"approved": ["yes?", "false"], "Income": 1.0}), schema)
    assert odd.rejects["reason"].tolist() == ["approved: 'yes?' is not true/false"]


def test_datetime_columns_must_parse():
    schema = {"columns": {"when": {"role": "datetime", "dtype": "object", "missing_seen": False,
                                   "min": "2020-01-01T00:00:00", "max": "2021-01-01T00:00:00"}}}
    check = check_rows(pd.DataFrame({"when": ["2020-03-04", "2020-03-04 10:30", "yesterday-ish", None]}), schema)
    assert check.valid["when"].tolist() == ["2020-03-04", "2020-03-04 10:30"]
    assert check.rejects["reason"].tolist() == ["when: 'yesterday-ish' is not a date/time",
                                                "empty row: every feature is missing"]


def test_score_csv_in_chunks_matches_the_in_memory_model(model, tmp_path):
    model_dir, schema, data, pipeline = model
    clean = data.X_test.head(40).reset_index(drop=True)
    broken = _broken_rows(data)
    source = pd.concat([clean, broken], ignore_index=True).assign(customer_id=lambda f: np.arange(len(f)))
    path = tmp_path / "in.csv"
    source.to_csv(path, index=False)
    with open(path, "a") as handle:
        handle.write("\n")  # a blank line: reported as an empty row
    one = score_file(model_dir, path, tmp_path / "one.csv", chunk_rows=10_000, progress=False)
    chunked = score_file(model_dir, path, tmp_path / "chunked.csv", chunk_rows=7, progress=False)
    assert (one.rows, one.scored, one.rejected) == (47, 42, 5)
    assert (chunked.rows, chunked.scored, chunked.rejected) == (47, 42, 5)
    assert one.extra_columns == ["customer_id"]
    assert "47 rows: 42 scored" in one.line() and "5 rejected" in one.line() and "customer_id" in one.line()
    out = pd.read_csv(tmp_path / "one.csv")
    pd.testing.assert_frame_equal(out, pd.read_csv(tmp_path / "chunked.csv"))
    assert list(out.columns) == ["row", "prediction", "proba_bad", "proba_good"]
    expected = _reference(pipeline, clean, schema)
    np.testing.assert_allclose(out.head(40)[["proba_bad", "proba_good"]], expected[["proba_bad", "proba_good"]],
                               atol=PROBA_ATOL)
    assert out.head(40)["prediction"].tolist() == expected["prediction"].tolist()
    assert set(out["prediction"]) <= {"bad", "good"}
    rejects = pd.read_csv(tmp_path / "one.rejects.csv")
    assert rejects["row"].tolist() == [41, 42, 43, 45, 46]
    assert rejects["reason"].iloc[-1] == "empty row: every feature is missing"
    assert rejects.columns[:2].tolist() == ["row", "reason"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_a_folder_of_parquet_files_is_scored_file_after_file_like_the_whole_table(model, credit_parts, tmp_path):
    """data_path may be a folder under engine pandas: the export step scores it (it stopped with "is a folder, not
    a data file" after training on it), rows numbered across the files as load_table stacks them."""
    from mlhelpers.core.io import load_table

    model_dir = model[0]
    whole = tmp_path / "whole.parquet"
    load_table(credit_parts).to_parquet(whole, index=False)
    folder = score_file(model_dir, credit_parts, tmp_path / "folder.csv", chunk_rows=500, progress=False)
    single = score_file(model_dir, whole, tmp_path / "single.csv", chunk_rows=500, progress=False)
    assert (folder.rows, folder.scored, folder.rejected) == (single.rows, single.scored, single.rejected)
    assert folder.rows == 4454
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "folder.csv"), pd.read_csv(tmp_path / "single.csv"))


def test_score_parquet_jsonl_gzipped_csv_and_tsv(model, tmp_path):
    model_dir, schema, data, pipeline = model
    clean = data.X_test.head(30).reset_index(drop=True)
    clean.to_parquet(tmp_path / "in.parquet")
    clean.to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    clean.to_csv(tmp_path / "in.csv.gz", index=False)
    clean.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    expected = _reference(pipeline, clean, schema)
    for name in ("in.parquet", "in.jsonl", "in.csv.gz", "in.tsv"):
        summary = score_file(model_dir, tmp_path / name, tmp_path / f"{name}.out.parquet", chunk_rows=8,
                             progress=False)
        assert (summary.rows, summary.scored, summary.rejected) == (30, 30, 0)
        out = pd.read_parquet(tmp_path / f"{name}.out.parquet")
        assert out["row"].tolist() == list(range(30))
        np.testing.assert_allclose(out["proba_good"], expected["proba_good"], atol=PROBA_ATOL)
        assert out["prediction"].tolist() == expected["prediction"].tolist()


def test_a_file_of_only_rejects_still_writes_both_files(model, tmp_path):
    model_dir, schema, data, _ = model
    rows = data.X_test.head(3).assign(Home="castle")
    rows.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(model_dir, tmp_path / "in.csv", tmp_path / "out.parquet", progress=False)
    assert (summary.scored, summary.rejected) == (0, 3)
    assert pd.read_parquet(tmp_path / "out.parquet").columns.tolist() == ["row", "prediction", "proba_bad",
                                                                          "proba_good"]
    assert len(pd.read_csv(tmp_path / "out.rejects.csv")) == 3


def test_bad_files_and_arguments_fail_before_any_work(model, tmp_path):
    model_dir, schema, data, _ = model
    data.X_test.drop(columns="Age").to_csv(tmp_path / "no_age.csv", index=False)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['Age'\]"):
        score_file(model_dir, tmp_path / "no_age.csv", tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()
    (tmp_path / "in.xml").write_text("<rows/>")
    with pytest.raises(DataError, match=r"in\.xml: unsupported file type '\.xml'; use CSV, Parquet, Excel"):
        score_file(model_dir, tmp_path / "in.xml", tmp_path / "out.csv")
    with pytest.raises(ScoringError, match=r"output file .*out\.xlsx: unsupported type '\.xlsx'; use \.csv or \.parquet"):
        score_file(model_dir, tmp_path / "no_age.csv", tmp_path / "out.xlsx")
    with pytest.raises(DataError, match=r"absent\.csv: file does not exist"):
        score_file(model_dir, tmp_path / "absent.csv", tmp_path / "out.csv")
    with pytest.raises(ScoringError, match="is not an exported model folder: model.skops, input_schema.json missing"):
        load_model_dir(tmp_path)


def test_files_are_scored_by_the_recommended_format(model, tmp_path):
    import shutil

    model_dir, schema, data, pipeline = model
    report = json.loads((model_dir / "serving_report.json").read_text())
    folder = shutil.copytree(model_dir, tmp_path / "model")
    (folder / "serving_report.json").write_text(json.dumps(report | {"recommended": "onnx"}))
    loaded, _ = load_model_dir(folder)
    assert served_model_file(folder).name == "model.onnx" and type(loaded).__name__ == "OnnxPredictor"
    rows = data.X_test.head(30)
    np.testing.assert_allclose(loaded.predict_proba(rows), pipeline.predict_proba(rows), atol=PROBA_ATOL)
    (folder / "serving_report.json").write_text(json.dumps(report | {"recommended": "skops"}))
    assert type(load_model_dir(folder)[0]).__name__ == "Pipeline"
    (folder / "serving_report.json").unlink()  # an export folder from before the serving report
    assert served_model_file(folder).name == "model.skops"
    (folder / "serving_report.json").write_text(json.dumps(report | {"recommended": "onnx"}))
    # a large graph is stored compressed; it is preferred, and a folder from before (plain model.onnx) still loads
    import onnx

    from mlhelpers.formats.onnx_io import save_onnx

    save_onnx(onnx.load(folder / "model.onnx"), folder / "model.onnx", compress=True)
    loaded, _ = load_model_dir(folder)
    assert served_model_file(folder).name == "model.onnx.gz" and not (folder / "model.onnx").exists()
    np.testing.assert_allclose(loaded.predict_proba(rows), pipeline.predict_proba(rows), atol=PROBA_ATOL)
    (folder / "model.onnx.gz").unlink()
    with pytest.raises(ScoringError, match="recommends model.onnx, which is missing .*neither model.onnx.gz nor "
                                           "model.onnx.*run the export step again"):
        load_model_dir(folder)
    (folder / "serving_report.json").write_text("{truncated")
    with pytest.raises(ScoringError, match="serving_report.json is not a serving report .*run the export step"):
        load_model_dir(folder)


def test_an_onnx_served_folder_answers_without_importing_scikit_learn(model, tmp_path):
    """`mlh predict` and the MLflow model load and answer an ONNX folder in a process that never imports
    scikit-learn (it cost every start 1.5 s); the answers match the pipeline's."""
    import shutil
    import subprocess
    import sys

    model_dir, schema, data, pipeline = model
    folder = shutil.copytree(model_dir, tmp_path / "model")
    report = json.loads((folder / "serving_report.json").read_text())
    (folder / "serving_report.json").write_text(json.dumps(report | {"recommended": "onnx"}))
    rows = data.X_test.head(40)
    rows.to_pickle(tmp_path / "rows.pkl")
    code = (f"import sys, pandas as pd\n"
            f"from mlhelpers.core.schema import check_rows\n"
            f"from mlhelpers.formats.served import load_model_dir, predict_rows\n"
            f"model, schema = load_model_dir({str(folder)!r})\n"
            f"rows = check_rows(pd.read_pickle({str(tmp_path / 'rows.pkl')!r}), schema).valid\n"
            f"predict_rows(model, rows, schema).to_pickle({str(tmp_path / 'answers.pkl')!r})\n"
            f"print(type(model).__name__, sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["OnnxPredictor", "[]"]
    answers = pd.read_pickle(tmp_path / "answers.pkl")
    expected = predict_rows(pipeline, rows, schema)
    assert (answers["prediction"] == expected["prediction"]).all()
    np.testing.assert_allclose(answers.filter(like="proba_"), expected.filter(like="proba_"), atol=PROBA_ATOL)


def test_tampered_model_file_is_refused(model, tmp_path):
    from mlhelpers.formats.skops_io import ModelFileError

    model_dir, *_ = model
    tampered = tmp_path / "model"
    tampered.mkdir()
    (tampered / "input_schema.json").write_text((model_dir / "input_schema.json").read_text())
    blob = bytearray((model_dir / "model.skops").read_bytes())
    blob[len(blob) // 2: len(blob) // 2 + 64] = b"\x00" * 64
    (tampered / "model.skops").write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="skops"):
        load_model_dir(tampered)


def test_model_with_an_untrusted_type_is_refused(model, tmp_path):
    import operator

    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mlhelpers.formats.skops_io import UntrustedModelError

    model_dir, _, data, pipeline = model
    smuggled = make_pipeline(FunctionTransformer(operator.attrgetter("values")), pipeline)
    folder = tmp_path / "model"
    folder.mkdir()
    sio.dump(smuggled, folder / "model.skops")
    (folder / "input_schema.json").write_text((model_dir / "input_schema.json").read_text())
    with pytest.raises(UntrustedModelError, match="outside the trusted allowlist: operator.attrgetter"):
        load_model_dir(folder)


def test_mlh_predict_command(model, tmp_path, capsys):
    model_dir, schema, data, _ = model
    _broken_rows(data).to_csv(tmp_path / "in.csv", index=False)
    code = main(["predict", str(model_dir), str(tmp_path / "in.csv"), "-o", str(tmp_path / "p.csv"),
                 "--rejects", str(tmp_path / "bad.csv"), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "6 rows: 2 scored" in printed and "4 rejected" in printed and "bad.csv" in printed
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2 and len(pd.read_csv(tmp_path / "bad.csv")) == 4
    assert main(["predict", str(model_dir), str(tmp_path / "in.csv"), "-o", str(tmp_path / "p.parquet")]) == 0
    assert "scoring in.csv" in capsys.readouterr().err  # the progress bar (on stderr)
    assert (tmp_path / "p.rejects.csv").is_file()
    code = main(["predict", str(tmp_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "q.csv")])
    assert code == 2
    assert "not an exported model folder" in capsys.readouterr().err


def test_regression_model_scores_values_and_survives_all_rejected_chunks(tmp_path):
    from sklearn.datasets import load_diabetes

    from mlhelpers.export.refit import prepare_export_data, refit, write_input_schema
    from mlhelpers.formats.skops_io import save_skops

    frame = load_diabetes(as_frame=True).frame
    spec = {"model": "linear", "task": "regression", "target": "target", "primary_metric": "rmse",
            "classes": None, "features": {"numeric": [c for c in frame.columns if c != "target"]},
            "estimator_params": {}, "seed": 0, "n_jobs": 1}
    data = prepare_export_data(frame, spec, {"train_index": list(range(350)), "test_index": list(range(350, 442))})
    pipeline = refit(data)
    save_skops(pipeline, tmp_path / "model" / "model.skops")
    write_input_schema(tmp_path, data)
    rows = data.X_test.head(10).astype(object).reset_index(drop=True)
    rows.loc[0:4, "bmi"] = "heavy"  # the whole first chunk of 5 is refused
    rows.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(tmp_path / "model", tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=5,
                         progress=False)
    assert (summary.scored, summary.rejected) == (5, 5)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["row", "prediction"] and out["row"].tolist() == [5, 6, 7, 8, 9]
    np.testing.assert_allclose(out["prediction"], pipeline.predict(data.X_test.iloc[5:10]), rtol=1e-12)
    rows.head(5).to_csv(tmp_path / "bad.csv", index=False)
    nothing = score_file(tmp_path / "model", tmp_path / "bad.csv", tmp_path / "none.csv", progress=False)
    assert (nothing.scored, nothing.rejected) == (0, 5)
    assert pd.read_csv(tmp_path / "none.csv").columns.tolist() == ["row", "prediction"]


def test_files_in_every_dialect_and_format_the_pipeline_reads_are_scored_alike(model, tmp_path):
    """mlh predict reads through core.io like mlh run: a ';'-delimited CSV with decimal commas (read as one column
    by the old private reader), Windows-1252, a workbook's named sheet."""
    model_dir, schema, data, pipeline = model
    clean = data.X_test.head(25).reset_index(drop=True).assign(Note="Sète")
    clean.to_csv(tmp_path / "semicolon.csv", sep=";", decimal=",", index=False, encoding="cp1252")
    with pd.ExcelWriter(tmp_path / "book.xlsx") as writer:
        clean.to_excel(writer, sheet_name="rows", index=False)
        pd.DataFrame({"about": ["25 test rows"]}).to_excel(writer, sheet_name="about", index=False)
    expected = _reference(pipeline, clean, schema)
    for name, sheet in (("semicolon.csv", None), ("book.xlsx", "rows")):
        summary = score_file(model_dir, tmp_path / name, tmp_path / f"{name}.out.csv", progress=False, sheet=sheet)
        assert (summary.rows, summary.scored, summary.rejected) == (25, 25, 0)
        out = pd.read_csv(tmp_path / f"{name}.out.csv")
        np.testing.assert_allclose(out["proba_good"], expected["proba_good"], atol=PROBA_ATOL)
    with pytest.raises(DataError, match=r"book\.xlsx: the workbook has 2 sheets \(0: 'rows', 1: 'about'\)"):
        score_file(model_dir, tmp_path / "book.xlsx", tmp_path / "none.csv", progress=False)


def test_broken_input_files_exit_2_with_the_file_named_and_nothing_written(model, tmp_path, capsys):
    model_dir, schema, data, _ = model
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "folder.csv").mkdir()
    lines = data.X_test.head(12).to_json(orient="records", lines=True).splitlines()
    lines[9] = "[1, 2, 3]"
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cases = {"empty.csv": r"empty\.csv: the file is empty \(0 bytes\)",
             "folder.csv": r"folder\.csv: is a folder, not a data file",
             "rows.jsonl": r"rows\.jsonl: not valid JSON lines: line 10 is an array, not a JSON object"}
    for name, message in cases.items():
        assert main(["predict", str(model_dir), str(tmp_path / name), "-o", str(tmp_path / "p.csv"),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
        assert re.search(message, err), err
        assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.rejects.csv").exists()


@pytest.mark.parametrize("model_name", ["xgboost", "linear"])
def test_predict_rows_answers_exactly_as_the_pipeline_predicts(model_name, credit, credit_features, penguins,
                                                               fit_pipeline):
    """One transform and, for XGBoost, labels from the probabilities: the pipeline's own predict and predict_proba,
    exactly, for two classes (credit) and three (penguins)."""
    from mlhelpers.core.models import encode_target

    penguin_features = {"numeric": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
                        "categorical": ["island", "sex"]}
    for frame, features, target in ((credit, credit_features, "Status"), (penguins, penguin_features, "species")):
        y, classes = encode_target(frame[target], "classification")
        params = {"n_estimators": 30} if model_name == "xgboost" else {}
        pipeline = fit_pipeline(model_name, "classification", frame, features, y, **params)
        rows = frame.drop(columns=target)
        served = predict_rows(pipeline, rows, {"task": "classification", "classes": classes})
        assert served["prediction"].tolist() == [classes[i] for i in pipeline.predict(rows)]
        np.testing.assert_array_equal(served[[f"proba_{c}" for c in classes]].to_numpy(), pipeline.predict_proba(rows))
        assert served["prediction"].nunique() > 1
