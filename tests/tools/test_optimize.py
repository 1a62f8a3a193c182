"""mlh optimize: compact forests are exact, candidates prove parity, lossy models state their cost."""

from __future__ import annotations

import json
import re

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from mlhelpers.cli import main
from mlhelpers.core.models import build_pipeline, encode_target
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.formats.parity import check_parity
from mlhelpers.formats.skops_io import ModelFileError
from mlhelpers.tools.compact import CompactModel, OptimizeError, compact_forest, load_compact, save_compact
from mlhelpers.tools.forest_walk import NUMBA_MIN_CELLS, compiled_walk
from mlhelpers.tools.optimize import format_report, optimize_model

ROOT = PROJECT_ROOT
CATEGORICAL = ["cut", "color", "clarity"]
NUMERIC = ["carat", "depth", "table", "x", "y", "z"]


def issue_pipeline(estimator) -> Pipeline:
    """The issue's reference shape: one-hot + scaler + a tree model."""
    return Pipeline([
        ("preprocess", ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC)])),
        ("model", estimator)])


@pytest.fixture(scope="module")
def forest(diamonds_8k) -> Pipeline:
    train = diamonds_8k.iloc[:3000]
    return issue_pipeline(RandomForestRegressor(n_estimators=20, random_state=0, n_jobs=1)).fit(
        train, train["price"])


def test_compact_trees_reach_the_same_leaves(diamonds_8k, forest):
    X = forest[:-1].transform(diamonds_8k)
    compact = compact_forest(forest[-1])
    per_tree = compact.leaf_values(X)
    for i, tree in enumerate(forest[-1].estimators_):
        np.testing.assert_array_equal(per_tree[:, i], tree.predict(X.astype(np.float32)))
    np.testing.assert_allclose(compact.predict_values(X), forest.predict(diamonds_8k), rtol=1e-12)
    nodes = sum(t.tree_.node_count for t in forest[-1].estimators_)
    assert compact.nbytes < nodes * 4 + 200_000  # 7 bytes a split (half the nodes) + distinct-value tables
    assert compact.nbytes * 10 < nodes * 72      # scikit-learn's own nodes


def test_compact_trees_send_missing_values_where_scikit_learn_does(diamonds_8k):
    # scikit-learn >= 1.4 forests learn a NaN direction per split; a lone-leaf tree has no split at all
    X = diamonds_8k[NUMERIC].to_numpy()
    X[::4, 0] = np.nan
    X[1::7, 3] = np.nan
    model = RandomForestRegressor(n_estimators=10, min_samples_leaf=3, random_state=0).fit(X, diamonds_8k["price"])
    compact = compact_forest(model)
    tree = model.estimators_[0].tree_
    assert 0 < tree.missing_go_to_left[tree.children_left >= 0].mean() < 1  # NaN goes both ways
    np.testing.assert_allclose(compact.predict_values(X), model.predict(X), rtol=1e-12)
    constant = DecisionTreeRegressor().fit(X[:50], np.ones(50))
    np.testing.assert_array_equal(compact_forest(constant).predict_values(X[:5]), np.ones(5))


def test_compiled_and_numpy_walks_reach_the_same_leaves(diamonds_8k, monkeypatch):
    # C and numba compile one walk per array type: 36 features widen the split codes to uint16, NaN takes learnt ways
    X = np.tile(diamonds_8k[NUMERIC].to_numpy(dtype=np.float32), 6)
    X[::5, 0] = np.nan
    X[2::9, 13] = np.nan
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X[:2000], diamonds_8k["price"].iloc[:2000])
    compact = compact_forest(model)
    assert compact.feature.dtype == np.uint16
    compiled = compact.leaf_rows(X)  # in C
    np.testing.assert_array_equal(compiled, compact.leaf_rows(X, compiled=False))
    np.testing.assert_allclose(compact.predict_values(X, compiled=False), model.predict(X), rtol=1e-12)
    np.testing.assert_allclose(compact.predict_values(X, compiled=True), model.predict(X), rtol=1e-12)  # C's sums
    monkeypatch.setenv("MLH_COMPACT_WALK", "fallback")  # where the C walk is not built: numba's
    assert compiled_walk() is not None  # numba is installed with ydata-profiling: the fallback's compiled walk
    np.testing.assert_array_equal(compact.leaf_rows(X), compiled)
    np.testing.assert_allclose(compact.predict_values(X, compiled=True), model.predict(X), rtol=1e-12)


def test_compact_refuses_boosting_and_arrays_of_the_wrong_width(diamonds_8k, forest):
    from sklearn.ensemble import GradientBoostingRegressor

    boosted = GradientBoostingRegressor(n_estimators=3).fit(diamonds_8k[NUMERIC], diamonds_8k["price"])
    with pytest.raises(OptimizeError, match="GradientBoostingRegressor is not a scikit-learn forest or tree"):
        compact_forest(boosted)  # its trees are summed and scaled, not averaged
    compact = compact_forest(forest[-1])
    with pytest.raises(ValueError, match="reads 26 features per row; got an array of shape \\(4, 25\\)"):
        compact.predict_values(np.zeros((4, 25)))


def test_compact_handles_classifiers_and_non_preorder_trees():
    credit = pd.read_csv(ROOT / "data" / "credit.csv")
    y, _ = encode_target(credit["Status"], "classification")
    features = {"numeric": ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount",
                            "Price"], "categorical": ["Home", "Marital", "Records", "Job"]}
    spec = {"model": "random_forest", "task": "classification", "features": features, "seed": 0, "n_jobs": 1,
            "estimator_params": {"n_estimators": 15}}
    pipeline = build_pipeline(spec)
    pipeline.steps[-1] = ("model", ExtraTreesClassifier(n_estimators=15, random_state=0))
    pipeline.fit(credit, y)
    model = CompactModel(compact_forest(pipeline[-1]), pipeline[:-1], pipeline.classes_)
    np.testing.assert_allclose(model.predict_proba(credit), pipeline.predict_proba(credit), atol=1e-12)
    assert check_parity(pipeline, model, credit, "classification").ok
    # max_leaf_nodes grows best-first: node ids are not in preorder
    numbers = credit[features["numeric"]].fillna(0)
    tree = DecisionTreeRegressor(max_leaf_nodes=40, random_state=0).fit(numbers, credit["Amount"])
    flat = compact_forest(tree)
    np.testing.assert_array_equal(flat.predict_values(numbers.to_numpy()), tree.predict(numbers))


def test_compact_file_round_trip_uses_numpy_preprocessing(tmp_path, diamonds_8k, forest):
    path = save_compact(forest, diamonds_8k, tmp_path / "model.compact.npz")
    loaded = load_compact(path)
    assert type(loaded.preprocess).__name__ == "NumpyPreprocessor"  # no onnxruntime in the serving process
    np.testing.assert_allclose(loaded.predict(diamonds_8k), forest.predict(diamonds_8k), rtol=1e-12)
    np.testing.assert_allclose(loaded.predict(diamonds_8k.iloc[[7]]), forest.predict(diamonds_8k.iloc[[7]]), rtol=1e-12)
    fewer = load_compact(save_compact(forest, diamonds_8k, tmp_path / "five.compact.npz", n_trees=5))
    assert fewer.forest.n_trees == 5 and path.stat().st_size > (tmp_path / "five.compact.npz").stat().st_size


def test_compact_keeps_numpy_preprocessing_when_numbers_pass_through_missing(tmp_path):
    # credit's numbers hold NaN that the forest routes itself, its text columns NaN as a category of their own;
    # the features used to be compared with NaN != NaN, so such pipelines fell back to scikit-learn preprocessing
    credit = pd.read_csv(ROOT / "data" / "credit.csv").drop(columns="rownames")
    text, numbers = ["Home", "Marital", "Records", "Job"], ["Seniority", "Income", "Assets", "Debt", "Amount"]
    assert credit[numbers].isna().any().any()
    pipeline = Pipeline([("preprocess", ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
        ("numeric", "passthrough", numbers)])), ("model", ExtraTreesClassifier(n_estimators=5, random_state=0))])
    pipeline.fit(credit[text + numbers], credit["Status"])
    loaded = load_compact(save_compact(pipeline, credit[text + numbers], tmp_path / "credit.compact.npz"))
    assert type(loaded.preprocess).__name__ == "NumpyPreprocessor"
    np.testing.assert_allclose(loaded.predict_proba(credit), pipeline.predict_proba(credit[text + numbers]), atol=1e-12)
    edge = credit[text + numbers].iloc[:80].copy()  # unseen and missing categories, one row at a time too
    edge.loc[edge.index[:40], "Home"] = "castle"
    edge.loc[edge.index[20:60], "Job"] = None
    np.testing.assert_array_equal(loaded.features(edge), pipeline[:-1].transform(edge))
    np.testing.assert_array_equal(loaded.features(edge.iloc[[3]]), pipeline[:-1].transform(edge.iloc[[3]]))


def test_numpy_preprocessing_imputes_scales_and_falls_back_to_onnx_where_it_does_not_reach(tmp_path, diamonds_8k):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    frame = diamonds_8k.iloc[:2000].copy()
    frame.loc[frame.index[::7], "carat"] = np.nan
    frame.loc[frame.index[::11], "cut"] = np.nan
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    texts = make_pipeline(OneHotEncoder(handle_unknown="ignore", sparse_output=False), StandardScaler())
    pipeline = Pipeline([("preprocess", ColumnTransformer([("text", texts, CATEGORICAL), ("numbers", numbers, NUMERIC)],
                                                          remainder="drop")),
                         ("model", DecisionTreeRegressor(max_depth=8, random_state=0))]).fit(frame, frame["price"])
    loaded = load_compact(save_compact(pipeline, frame, tmp_path / "imputed.compact.npz"))
    assert type(loaded.preprocess).__name__ == "NumpyPreprocessor"
    np.testing.assert_array_equal(loaded.features(frame), pipeline[:-1].transform(frame))
    np.testing.assert_allclose(loaded.predict(frame), pipeline.predict(frame), rtol=1e-12)
    pipeline.steps[0][1].transformers[1] = ("numbers", MinMaxScaler(), NUMERIC[1:])  # not covered: ONNX instead
    pipeline.fit(frame, frame["price"])
    path = save_compact(pipeline, frame, tmp_path / "scaled.compact.npz")
    assert "MinMaxScaler is not covered" in json.loads(np.load(path)["meta"].tobytes())["preprocess_reason"]
    assert type(load_compact(path).preprocess).__name__ == "OnnxPredictor"
    # the most frequent category filled in before the one-hot (a user's forest on DAAG's nassCDS: `mlh optimize`
    # stopped with "could not convert string to float: '10-24'"): numpy fills NaN, not None, as scikit-learn does
    fill = Pipeline([("fill", SimpleImputer(strategy="most_frequent")), ("one_hot", OneHotEncoder(handle_unknown="ignore"))])
    pipeline.steps[0][1].transformers = [("categories", fill, CATEGORICAL), ("numbers", StandardScaler(), NUMERIC[1:])]
    pipeline.fit(frame, frame["price"])
    filled = load_compact(save_compact(pipeline, frame, tmp_path / "filled.compact.npz"))
    assert type(filled.preprocess).__name__ == "NumpyPreprocessor"
    edge = frame.iloc[:30].copy()
    edge.loc[edge.index[10:20], "cut"] = None
    edge.loc[edge.index[20:], "color"] = "Z"
    for rows in (frame, edge, edge.iloc[[5]], edge.iloc[[15]]):
        np.testing.assert_array_equal(filled.features(rows), pipeline[:-1].transform(rows))
    fill.steps[0] = ("fill", SimpleImputer(strategy="most_frequent", add_indicator=True))
    pipeline.fit(frame, frame["price"])
    path = save_compact(pipeline, frame, tmp_path / "indicated.compact.npz")
    assert "an imputer of text values other than a fill before a one-hot encoder is not covered" in \
        json.loads(np.load(path)["meta"].tobytes())["preprocess_reason"]
    np.testing.assert_allclose(load_compact(path).predict(frame), pipeline.predict(frame), rtol=1e-12)


def test_load_compact_refuses_other_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.frombuffer(b'{"format": "something-else"}', dtype=np.uint8),
             preprocess=np.zeros(1, np.uint8), feature=np.zeros(1), split=np.zeros(1), jump=np.zeros(1),
             roots=np.zeros(1), thresholds=np.zeros(1), values=np.zeros(1))
    with pytest.raises(ModelFileError, match="not a mlh-compact-forest"):
        load_compact(other)
    older = tmp_path / "older.npz"  # the first layout (one entry per node, leaves included)
    np.savez(older, meta=np.frombuffer(b'{"format": "mlh-compact-forest", "version": 1}', dtype=np.uint8),
             preprocess=np.zeros(1, np.uint8), feature=np.zeros(1), split=np.zeros(1), jump=np.zeros(1),
             roots=np.zeros(1), thresholds=np.zeros(1), values=np.zeros(1))
    with pytest.raises(ModelFileError, match="v1 file; this version reads v2 and v3: run `mlh optimize` again"):
        load_compact(older)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a compact model file"):
        load_compact(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_compact(tmp_path / "absent.npz")


def test_optimize_model_proves_parity_and_states_the_lossy_cost(tmp_path, diamonds_8k, forest):
    model_path = tmp_path / "forest.joblib"
    joblib.dump(forest, model_path)
    sample = diamonds_8k.iloc[3000:]
    result = optimize_model(model_path, sample, tmp_path / "out", target="price", tolerance=0.05,
                            n_single=50, formats=("compact",))
    table = result.table()
    assert table["name"].tolist()[:2] == ["original", "compact"]
    compact = table.set_index("name").loc["compact"]
    assert compact["parity_ok"] and compact["max_abs_diff"] < 1e-6
    assert compact["probe_ok"] and compact["probe_max_abs_diff"] < 1e-6
    assert compact["size_smaller_x"] > 5 and compact["single_row_faster_x"] > 1
    assert result.best == "compact" and result.best_path.exists()
    lossy = result.lossy
    assert 1 <= lossy["n_trees"] <= 20 and lossy["metric"] == "rmse"
    assert lossy["selection_rows"] + lossy["holdout_rows"] == len(sample)
    assert lossy["rmse_lossy_holdout"] == pytest.approx(lossy["rmse_full_holdout"] * (1 + lossy["relative_cost_holdout"]))
    lossy_row = table.set_index("name").filter(like="lossy", axis=0)
    assert not lossy_row["lossless"].any() and not lossy_row["parity_ok"].any()
    report = json.loads((tmp_path / "out" / "optimize_report.json").read_text())
    assert report["best_lossless"] == "compact" and report["lossy"]["n_trees"] == lossy["n_trees"]
    text = format_report(result)
    assert "best lossless: compact" in text and "lossy:" in text


def test_optimize_serves_hist_gradient_boosting_as_onnx(tmp_path, diamonds_8k):
    # the issue's failing case: HistGradientBoosting with native categorical splits, handed as a skops file
    from mlhelpers.formats.skops_io import save_skops

    spec = {"model": "hist_gradient_boosting", "task": "regression", "seed": 0, "n_jobs": 1,
            "features": {"numeric": NUMERIC, "categorical": CATEGORICAL}, "estimator_params": {"max_iter": 40}}
    train = diamonds_8k.iloc[:3000]
    pipeline = build_pipeline(spec).fit(train, train["price"].to_numpy(float))
    path = save_skops(pipeline, tmp_path / "hgb.skops")
    result = optimize_model(path, diamonds_8k.iloc[3000:], tmp_path / "out", n_single=50)
    table = result.table().set_index("name")
    assert "compact: covers scikit-learn forests and decision trees, not HistGradientBoostingRegressor" in result.notes
    assert table.loc["onnx", "parity_ok"] and table.loc["onnx", "max_abs_diff"] < 1e-6
    assert result.best == "onnx"  # smaller on disk and in memory than compressed skops, and faster


def test_optimize_rejects_bad_requests(tmp_path, diamonds_8k, forest):
    model_path = tmp_path / "forest.joblib"
    joblib.dump(forest, model_path)
    with pytest.raises(OptimizeError, match="needs --target"):
        optimize_model(model_path, diamonds_8k, tmp_path / "out", tolerance=0.01)
    with pytest.raises(OptimizeError, match="'cost' is not in the sample"):
        optimize_model(model_path, diamonds_8k, tmp_path / "out", target="cost", tolerance=0.01)
    with pytest.raises(OptimizeError, match="unknown model format '.txt'"):
        (tmp_path / "model.txt").write_text("x")
        optimize_model(tmp_path / "model.txt", diamonds_8k, tmp_path / "out")
    with pytest.raises(OptimizeError, match="does not exist"):
        optimize_model(tmp_path / "absent.joblib", diamonds_8k, tmp_path / "out")


def test_cli_optimize(tmp_path, diamonds_8k, forest, capsys):
    model_path = tmp_path / "forest.joblib"
    joblib.dump(forest, model_path)
    sample = tmp_path / "sample.csv"
    diamonds_8k.iloc[3000:3400].to_csv(sample, index=False)
    assert main(["optimize", str(model_path), "--sample", str(sample), "--n-single", "30"]) == 0
    printed = capsys.readouterr().out
    assert "original" in printed and "compact" in printed and "best lossless" in printed
    # issue 15: any scikit-learn forest pipeline gets an exact ONNX candidate, held to the parity probe too,
    # and the report says where the compact format still wins
    report = json.loads((tmp_path / "forest.optimized" / "optimize_report.json").read_text())
    candidates = {row["name"]: row for row in report["candidates"]}
    assert candidates["onnx"]["parity_ok"] and candidates["onnx"]["max_abs_diff"] < 1e-9
    assert candidates["onnx"]["probe_ok"] and candidates["compact"]["probe_ok"] and report["probe_rows"] > 40
    assert "compact vs onnx: compact wins on disk" in printed
    assert report["best_lossless"] in ("compact", "onnx")
    # the C walk serves every call of `compact`: numba's compact-compiled would only add its memory
    assert "compact-compiled" not in candidates and "compact-compiled: not built, the C walk" in printed
    assert report["compact_walk"].startswith("c:")
    assert main(["optimize", str(model_path), "--sample", str(sample), "--tolerance", "0.01"]) == 2
    assert "needs --target" in capsys.readouterr().err


def test_models_that_cannot_be_optimized_exit_2_and_leave_no_folder(tmp_path, diamonds_8k, forest, capsys):
    sample = tmp_path / "sample.csv"
    diamonds_8k.iloc[3000:3200].to_csv(sample, index=False)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    foreign = tmp_path / "foreign.pkl"
    foreign.write_bytes(b"cno_such_package_xyz\nFittedModel\n)R.")  # a pickle of a class not installed here
    bare = tmp_path / "bare.joblib"
    joblib.dump(RandomForestRegressor(n_estimators=5, random_state=0).fit(
        diamonds_8k[NUMERIC].to_numpy(), diamonds_8k["price"]), bare)
    expected = {garbage: r"garbage\.pkl: cannot load this pickle: it is damaged or not a pickle at all",
                foreign: r"foreign\.pkl: cannot load this pickle: it needs a module, class or version that is not "
                         r"installed here \(ModuleNotFoundError: No module named 'no_such_package_xyz'\)\. Save the "
                         r"fitted pipeline again in this environment",
                bare: r"bare\.joblib holds a RandomForestRegressor fitted on a bare array: it records no column names"}
    for model, message in expected.items():
        assert main(["optimize", str(model), "--sample", str(sample), "--n-single", "5"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
        assert re.search(message, err), err
        assert not model.with_name(model.name.split(".")[0] + ".optimized").exists()
    # a sample the model cannot score, or a target it cannot read, is refused before anything is written
    joblib.dump(forest, tmp_path / "forest.joblib")
    broken = diamonds_8k.iloc[3000:3200].assign(carat="heavy")
    with pytest.raises(OptimizeError, match=r"cannot score --sample, or read its --target \(ValueError: could not "
                                            r"convert string to float: 'heavy'\)"):
        optimize_model(tmp_path / "forest.joblib", broken, tmp_path / "forest.optimized", n_single=5)
    with pytest.raises(OptimizeError, match=r"could not convert string to float: 'Ideal'"):
        optimize_model(tmp_path / "forest.joblib", diamonds_8k.iloc[3000:3200], tmp_path / "forest.optimized",
                       target="cut", tolerance=0.01, n_single=5)
    assert not (tmp_path / "forest.optimized").exists()


def test_the_best_candidate_balances_disk_memory_row_and_batch_gains():
    from mlhelpers.tools.optimize import choose_best

    # the Ames forest as measured by bench_export part 3: compact wins on disk and memory, ONNX per row and
    # in batches; the geometric mean of the four gains picks compact and the note says where each wins
    ames = pd.DataFrame({"name": ["compact", "onnx"], "path": ["a.npz", "a.onnx"],
                         "size_bytes": [3.9e6, 16.7e6], "peak_memory_mb": [161.0, 294.0],
                         "single_row_p50_ms": [9.8, 7.1], "batch_rows_per_second": [534.0, 1287.0],
                         "size_smaller_x": [25.3, 5.9], "memory_smaller_x": [2.46, 1.34],
                         "single_row_faster_x": [46.8, 64.6], "batch_faster_x": [0.54, 1.29]})
    notes = []
    assert choose_best(ames, notes)[0] == "compact"
    assert notes == ["compact vs onnx: compact wins on disk, peak memory; onnx wins on one row, batches; chosen: "
                     "compact (best geometric mean of the disk, memory, one-row and batch gains)"]
    # a forest whose ONNX graph is nearly as small: ONNX's speed decides
    close = ames.assign(size_bytes=[3.9e6, 5e6], size_smaller_x=[25.3, 19.7], peak_memory_mb=[161.0, 170.0],
                        memory_smaller_x=[2.46, 2.3])
    assert choose_best(close, [])[0] == "onnx"


def test_the_candidate_meeting_the_most_goals_is_recommended_and_the_report_says_what_each_misses():
    from mlhelpers.tools.goals import choose_best, judge_goals, memory_goal

    # the issue's Ames shape (pickle 121.8 MB, over 100 MB: the memory goal applies): compressed ONNX meets
    # disk, one row and batches; compact is smaller still but slower in batches, so ONNX is chosen even though
    # compact's geometric mean of the gains is higher
    before = {"size_bytes": 121.8 * 2**20, "peak_memory_mb": 483.0, "model_memory_mb": 330.0}
    rows = pd.DataFrame({"name": ["compact", "onnx"], "path": ["a.npz", "a.onnx.gz"], "lossless": [True, True],
                         "parity_ok": [True, True], "probe_ok": [True, True],
                         "size_bytes": [4.8e6, 7.0e6], "peak_memory_mb": [165.0, 300.0],
                         "floor_memory_mb": [125.0, 125.0], "model_memory_mb": [40.0, 175.0],
                         "single_row_p50_ms": [9.8, 7.1], "batch_rows_per_second": [534.0, 1287.0],
                         "size_smaller_x": [26.6, 18.2], "memory_smaller_x": [2.93, 1.61],
                         "single_row_faster_x": [46.8, 64.6], "batch_faster_x": [0.54, 1.29]})
    judged = judge_goals(rows, before)
    assert judged["goals_met"].tolist() == [3, 4]
    assert judged["goals_missed"].tolist() == ["batches, memory", "memory"]
    notes = []
    assert choose_best(judged, notes)[0] == "onnx"
    assert notes[0] == ("goals: compact meets 3 of 5 (misses batches, memory); peak 165 MB vs a third of the "
                        "original's 483 MB")
    assert notes[-1].endswith("chosen: onnx (most goals met, then best geometric mean of the disk, memory, one-row "
                              "and batch gains)")
    # a parity failure is a missed goal too
    assert judge_goals(rows.assign(probe_ok=[True, False]), before)["goals_missed"].tolist()[1] == "exact, memory"
    # under 100 MB the memory goal does not apply; when the floor alone is over the third, the memory above it
    # is judged, and the note names the floor
    assert memory_goal(rows.iloc[1], before | {"size_bytes": 97.8 * 2**20})[0] is None
    met, note = memory_goal(rows.iloc[0], before | {"peak_memory_mb": 300.0})
    assert met and note.startswith("the floor dominates: a serving process with no model holds 125 MB, over a third")
    assert memory_goal(rows.iloc[1], before | {"peak_memory_mb": 300.0})[0] is False  # 175 MB above it: over 110


def test_compact_preprocessing_keeps_column_names_with_dots(tmp_path, diamonds_8k):
    # skl2onnx renames inputs with dots (carat.weight -> carat_weight): the preprocessing graph was
    # refused and the compact model fell back to scikit-learn's preprocessing (a MinMaxScaler: the numpy
    # preprocessing does not cover it, so the ONNX graph is what serves it)
    dotted = {name: f"{name}.x" for name in CATEGORICAL + NUMERIC}
    frame = diamonds_8k.iloc[:3000].rename(columns=dotted)
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             [dotted[c] for c in CATEGORICAL]),
            ("numeric", MinMaxScaler(), [dotted[c] for c in NUMERIC])])),
        ("model", RandomForestRegressor(n_estimators=5, random_state=0, n_jobs=1))]).fit(frame, frame["price"])
    loaded = load_compact(save_compact(pipeline, frame, tmp_path / "model.compact.npz"))
    assert type(loaded.preprocess).__name__ == "OnnxPredictor"
    np.testing.assert_allclose(loaded.predict(frame), pipeline.predict(frame), rtol=1e-12)


def test_a_process_serving_single_rows_loads_neither_numba_nor_onnxruntime(tmp_path, diamonds_8k, forest):
    # the C walk serves every call; where it is missing (MLH_COMPACT_WALK=fallback) numba (~133 MB) comes with the
    # first batch of NUMBA_MIN_CELLS cells; onnxruntime only with ONNX preprocessing
    import os
    import subprocess
    import sys

    path = save_compact(forest, diamonds_8k, tmp_path / "model.compact.npz")
    diamonds_8k.iloc[:200].to_pickle(tmp_path / "rows.pkl")
    script = (f"import sys, pandas as pd; from mlhelpers.tools.compact import load_compact\n"
              f"model, rows = load_compact({str(path)!r}), pd.read_pickle({str(tmp_path / 'rows.pkl')!r})\n"
              f"[model.predict(rows.iloc[[i]]) for i in range(5)]; model.predict(rows)\n"
              f"print(sorted(m for m in ('numba', 'onnxruntime', 'sklearn') if m in sys.modules))\n"
              f"model.predict(pd.concat([rows] * (1 + {NUMBA_MIN_CELLS} // (200 * 20))))\n"
              f"print(sorted(m for m in ('numba', 'onnxruntime', 'sklearn') if m in sys.modules))\n"
              f"print(model.forest.wants_compiled(1), model.predict(rows.iloc[[7]])[0])")
    expected = forest.predict(diamonds_8k.iloc[[7]])[0]
    for walk, modules in (("c", ["[]", "[]"]), ("fallback", ["[]", "['numba']"])):
        env = os.environ | {"MLH_COMPACT_WALK": walk}
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env=env).stdout.split("\n")
        assert out[:2] == modules, walk
        compiled, value = out[2].split()  # C, or numba once loaded: single rows walk compiled, same value
        assert compiled == "True" and float(value) == pytest.approx(expected, rel=1e-12)


def test_a_compiled_compact_file_walks_compiled_from_its_first_row(tmp_path, diamonds_8k, forest):
    # walk="compiled": in C where built (numba never loads); where not, numba loads with the model and one row is
    # walked compiled (no large batch needed)
    import os
    import subprocess
    import sys

    path = save_compact(forest, diamonds_8k, tmp_path / "model.compact.npz", walk="compiled")
    diamonds_8k.iloc[:20].to_pickle(tmp_path / "rows.pkl")
    script = (f"import sys, pandas as pd; from mlhelpers.tools.compact import load_compact\n"
              f"model = load_compact({str(path)!r}); print('numba' in sys.modules, model.forest.wants_compiled(1))\n"
              f"print(model.predict(pd.read_pickle({str(tmp_path / 'rows.pkl')!r}).iloc[[7]])[0])")
    for walk, loaded in (("c", "False True"), ("fallback", "True True")):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env=os.environ | {"MLH_COMPACT_WALK": walk}).stdout.split("\n")
        assert out[0] == loaded, walk
        assert float(out[1]) == pytest.approx(forest.predict(diamonds_8k.iloc[[7]])[0], rel=1e-12)
    assert not load_compact(save_compact(forest, diamonds_8k, tmp_path / "auto.npz")).forest.compiled_always
    with pytest.raises(ValueError, match="walk='numba': expected one of"):
        save_compact(forest, diamonds_8k, tmp_path / "bad.npz", walk="numba")
