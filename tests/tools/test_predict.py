"""mlh predict never loses a file the user owns: the input, the predictions, the rejects, an earlier output.
Every refusal happens before anything is read (a model folder that does not exist proves it)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from mlhelpers.cli import main
from mlhelpers.formats.served import ScoringError
from mlhelpers.tools.predict import plan_outputs, predict_file, rejects_name


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model_run):
    run_dir, _, data, _ = model_run(tmp_path_factory.mktemp("run"))
    return run_dir / "model", data


def _rows(data, tmp_path, name="in.csv"):
    rows = data.X_test.head(8).astype(object).reset_index(drop=True)
    rows.loc[2, "Home"] = "castle"  # one row the schema refuses
    path = tmp_path / name
    rows.to_csv(path, index=False)
    return path


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, expected", [
    ("scores.csv", "scores.rejects.csv"), ("scores.jan.csv", "scores.jan.rejects.csv"),
    ("scores.feb.parquet", "scores.feb.rejects.csv"), ("v1.2.scores.csv", "v1.2.scores.rejects.csv"),
])
def test_the_rejects_name_comes_from_the_whole_output_name(tmp_path, name, expected):
    assert rejects_name(tmp_path / name) == tmp_path / expected


def test_two_outputs_get_two_rejects_files(model_dir, tmp_path):
    model, data = model_dir
    source = _rows(data, tmp_path)
    jan = predict_file(model, source, tmp_path / "scores.jan.csv", progress=False)
    feb = predict_file(model, source, tmp_path / "scores.feb.csv", progress=False)
    assert (jan.rejects.name, feb.rejects.name) == ("scores.jan.rejects.csv", "scores.feb.rejects.csv")
    assert len(pd.read_csv(jan.rejects)) == len(pd.read_csv(feb.rejects)) == 1
    assert not (tmp_path / "scores.rejects.csv").exists()


@pytest.mark.parametrize("output, rejects, message", [
    ("in.csv", None, r"-o/--output .*in.csv is the input file: writing it would destroy the rows"),
    ("./sub/../in.csv", None, r"-o/--output .* is the input file"),
    ("link.csv", None, r"-o/--output .*link.csv is the input file"),          # a symlink to the input
    ("out.csv", "in.csv", r"--rejects .*in.csv is the input file"),
    ("out.csv", "out.csv", r"--rejects .*out.csv is the output file too: the rejected rows would overwrite"),
    ("out.csv", "./out.csv", r"is the output file too"),
    ("in.rejects.csv", "in.rejects.csv", r"is the output file too"),
])
def test_files_that_would_be_lost_are_refused_before_reading_anything(tmp_path, monkeypatch, capsys, output, rejects,
                                                                      message):
    source = tmp_path / "in.csv"
    source.write_text("Age,Home\n30,owner\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    before = _sha(source)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScoringError, match=message):
        plan_outputs(source, tmp_path / output, None if rejects is None else tmp_path / rejects)
    # the command line: exit 2, one message, the model (which does not exist) never opened, the input intact
    args = ["predict", str(tmp_path / "no-model"), str(source), "-o", output, "--no-progress"]
    code = main(args + (["--rejects", rejects] if rejects else []))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and "no-model" not in err
    assert _sha(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "link.csv", "sub"]


def test_an_existing_output_is_replaced_only_when_asked(model_dir, tmp_path, capsys):
    model, data = model_dir
    source = _rows(data, tmp_path)
    earlier = tmp_path / "scores.csv"
    earlier.write_text("row,prediction\n0,earlier work\n")
    code = main(["predict", str(model), str(source), "-o", str(earlier), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "the output file" in err and "exists already; pass --overwrite" in err
    assert earlier.read_text() == "row,prediction\n0,earlier work\n"
    assert not (tmp_path / "scores.rejects.csv").exists()
    # an existing rejects file is protected the same way
    (tmp_path / "other.rejects.csv").write_text("keep me")
    code = main(["predict", str(model), str(source), "-o", str(tmp_path / "other.csv"), "--no-progress"])
    assert code == 2 and "the rejects file" in capsys.readouterr().err
    assert (tmp_path / "other.rejects.csv").read_text() == "keep me" and not (tmp_path / "other.csv").exists()
    # asked: both replaced
    code = main(["predict", str(model), str(source), "-o", str(earlier), "--no-progress", "--overwrite"])
    assert code == 0 and len(pd.read_csv(earlier)) == 7 and len(pd.read_csv(tmp_path / "scores.rejects.csv")) == 1
    # --overwrite never reaches the input
    code = main(["predict", str(model), str(source), "-o", str(source), "--no-progress", "--overwrite"])
    assert code == 2 and "is the input file" in capsys.readouterr().err
    assert len(pd.read_csv(source)) == 8
