"""The baseline step on the Dask engine: the zoo's rows as a seeded sample of the training partitions, and XGBoost
trained on every training row with ``xgboost.dask``, scored next to its sample-trained twin on held-out partitions.

Whole partitions are held out (``mlhelpers.core.lazy.partition_split``): ``test_size`` of them for the test,
one in ten for early stopping, the rest for training. The zoo cross-validates on ``dask_sample_rows`` rows drawn
by content from the training and validation partitions (``load_inputs``). ``train_full_xgboost`` then fits the
zoo's XGBoost preprocessor on that sample, runs it on every partition on the workers (features and label from
one ``map_partitions``, so their partitions always match), trains with ``DaskQuantileDMatrix`` and early stopping
on the validation partitions (those of them that fit the workers' memory: ``mlhelpers.baseline.trainmemory``), and scores the full-data model, its sample twin and the zoo's selected model on
the test partitions in one pass. Under the pandas engine every function here returns ``None``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.baseline.crossval import XGB_MAX_TREES, ZooResult
from mlhelpers.baseline.inputs import BaselineData, load_baseline_data, prepare_baseline_data
from mlhelpers.baseline.stopping import XGB_EARLY_STOPPING
from mlhelpers.baseline.trainmemory import bytes_per_training_row, fit_partitions, worker_room
from mlhelpers.core import engine, hashsample, lazy
from mlhelpers.core.artifacts import read_artifact
from mlhelpers.core.classes import merge_rare_classes
from mlhelpers.core.metrics import LOWER_IS_BETTER, scores
from mlhelpers.core.models import build_pipeline, build_preprocessor, fit_params
from mlhelpers.core.provenance import check_data
from mlhelpers.core.quiet import quiet_libraries
from mlhelpers.core.values import apply_conversions

__all__ = ["DaskInputs", "HoldoutResult", "load_inputs", "train_full_xgboost", "design_partition"]

MAX_BIN = 256


@dataclass
class DaskInputs:
    """The lazy table, its partitions by role (train / valid / test) and the sample the zoo works on."""

    table: Any                       # mlhelpers.core.lazy.LazyTable
    partitions: dict[str, list[int]]
    sample_rows: int
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)  # eda.json's, applied on every partition
    sample: pd.DataFrame | None = None  # the zoo's sample as drawn (before conversions): export reads it back
    target_missing: int = 0            # rows of the whole table with a missing target (eda.json)

    def summary(self) -> pd.DataFrame:
        lengths = lazy.partition_lengths(self.table)
        rows = {side: f"{len(numbers)} partitions, {sum(lengths[i] for i in numbers):,} rows"
                for side, numbers in self.partitions.items()}
        rows["sample for the zoo"] = f"{self.sample_rows:,} rows (seeded by content, from the train and valid partitions)"
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def load_inputs(params) -> tuple[BaselineData, DaskInputs | None]:
    """The zoo's data and, under Dask, the lazy table with its partition split.

    pandas: ``mlhelpers.baseline.inputs.load_baseline_data`` and None. Dask: the seeded content-hash sample of
    ``params.dask_sample_rows`` rows with a known target, drawn only from the training and validation
    partitions (the test partitions stay unseen until ``train_full_xgboost`` scores them).
    """
    if params.engine != "dask":
        return load_baseline_data(params), None
    check_data(params.run_path, params.data_file, "baseline")
    eda = read_artifact(params.run_path, "eda")
    if eda["target"] != params.target:
        raise BaselineError(f"eda.json in {params.run_path} is for target {eda['target']!r}, params say "
                            f"{params.target!r}; rerun 01_explore with this target and run_dir.")
    engine.current_client()
    table = lazy.read_lazy(params.data_file)
    parts = lazy.partition_split(table.npartitions, params.test_size, params.seed)
    sample = lazy.lazy_sample(table, params.dask_sample_rows, params.seed, known=params.target,
                              partitions=sorted(parts["train"] + parts["valid"]))
    conversions = eda.get("conversions") or {}  # the values as explore read them (its sample's conversions)
    data = prepare_baseline_data(apply_conversions(sample, conversions), eda, task=params.task,
                                 primary_metric=params.primary_metric, drop_columns=list(params.drop_columns),
                                 rare_classes=params.rare_classes, cv_folds=params.cv_folds, test_size=params.test_size)
    return data, DaskInputs(table=table, partitions=parts, sample_rows=len(sample), conversions=conversions,
                            sample=sample, target_missing=int(eda.get("n_rows_missing_target") or 0))


def design_partition(frame: pd.DataFrame, preprocess, target: str, task: str, classes: list | None,
                     conversions: dict[str, dict[str, Any]] | None = None,
                     rare_plan: dict[str, Any] | None = None) -> pd.DataFrame:
    """One partition as XGBoost takes it: the fitted ``preprocess`` output as float32 columns f0..fk, and
    ``label`` (class index or value, rare classes merged by ``rare_plan``); rows with a missing target left
    out; eda.json's value ``conversions`` applied first, as on the sample. Runs on the workers."""
    names = [f"f{i}" for i in range(len(preprocess.get_feature_names_out()))]
    frame = frame[~frame[target].isna()]
    if conversions and len(frame):
        frame = apply_conversions(frame, conversions)
    if len(frame) == 0:  # scikit-learn refuses 0 rows (Dask's meta, an empty file)
        out = pd.DataFrame({name: pd.Series(dtype="float32") for name in names}, index=frame.index)
        out["label"] = pd.Series(dtype="float32", index=frame.index)
        return out
    Z = preprocess.transform(lazy.sklearn_frame(frame[list(preprocess.feature_names_in_)]))
    out = pd.DataFrame(np.asarray(Z, dtype="float32"), index=frame.index, columns=names)
    y = lazy.pandas_like(frame[[target]])[target]
    if task == "classification":
        y = merge_rare_classes(y, rare_plan)
        index = {label: i for i, label in enumerate(classes)}
        out["label"] = y.map(lambda value: index.get(value, index.get(str(value), -1))).astype("float32").to_numpy()
    else:
        out["label"] = y.astype("float32").to_numpy()
    return out


def _label_weights(labels: pd.Series, per_class: np.ndarray) -> pd.Series:
    """Each row's class weight from its ``label`` (class index; -1, an unknown class, weighs 0). On the workers."""
    codes = labels.to_numpy().astype(int)
    known = (codes >= 0) & (codes < len(per_class))
    return pd.Series(np.where(known, per_class[np.clip(codes, 0, len(per_class) - 1)], 0.0).astype("float32"),
                     index=labels.index, name="label")


def _quiet_xgboost_logs() -> None:
    # On each worker: "Worker ... has an empty DMatrix" (a worker holding no training partition) is expected.
    import logging

    logging.getLogger("[xgboost.dask]").setLevel(logging.ERROR)


def _predict_partition(frame: pd.DataFrame, models: dict[str, Any], target: str, task: str,
                       classes: list | None, conversions: dict[str, dict[str, Any]] | None = None,
                       rare_plan: dict[str, Any] | None = None, keep: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Each model's predictions for one held-out partition, with the encoded target (rows with one); with ``keep``
    (seed, key threshold, partition number) also the partition's candidates for the held-out sample, ``sample``
    (``lazy.sample_candidates``: export's test rows, drawn in this pass instead of another one there)."""
    out: dict[str, Any] = {}
    if keep is not None:
        out["sample"] = lazy.sample_candidates(frame, keep[2], keep[0], keep[1], known=target)
    frame = frame[~frame[target].isna()]
    if len(frame) == 0:
        return out
    if conversions:
        frame = apply_conversions(frame, conversions)
    y = lazy.pandas_like(frame[[target]])[target]
    if task == "classification":
        y = merge_rare_classes(y, rare_plan)
        index = {label: i for i, label in enumerate(classes)}
        out["y"] = y.map(lambda value: index.get(value, index.get(str(value), -1))).to_numpy()
    else:
        out["y"] = y.to_numpy(dtype=float)
    X = lazy.sklearn_frame(frame.drop(columns=[target]))  # what the pipelines were fitted on
    for name, pipeline in models.items():
        X_model = X[list(pipeline.feature_names_in_)]
        out[name] = pipeline.predict_proba(X_model) if task == "classification" \
            else pipeline.predict(X_model)  # float64: float32 would create ties that move ROC AUC
    return out


@dataclass
class HoldoutResult:
    """The held-out partitions' scores of the full-data XGBoost, its sample twin and the zoo's selected model."""

    table: pd.DataFrame              # one row per model: trained_on, rows, held-out metrics, seconds
    full_pipeline: Any               # preprocess (fitted on the sample) + the booster as an XGBoost estimator
    winner: str                      # "full" or "sample"
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    # the zoo's sample ("train") and a seeded sample of the held-out rows ("test"), for export to read back
    samples: dict[str, pd.DataFrame] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return f"<p>Full-data XGBoost: {self.details.get('memory_note', '')}</p><p>{self.reason}</p>" + self.table.to_html()

    def __repr__(self) -> str:
        return f"Full-data XGBoost: {self.details.get('memory_note', '')}\n{self.reason}\n{self.table.to_string()}"


def _xgb_objective(task: str, n_classes: int | None) -> dict[str, Any]:
    if task == "regression":
        return {"objective": "reg:squarederror", "eval_metric": "rmse"}
    if n_classes == 2:
        return {"objective": "binary:logistic", "eval_metric": "logloss"}
    return {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}


def train_full_xgboost(inputs: DaskInputs | None, data: BaselineData, zoo: ZooResult, params,
                       workers: list | None = None) -> HoldoutResult | None:
    """XGBoost on every row of the training partitions (``xgboost.dask``, early stopping on the validation
    partitions, the zoo's XGBoost settings), scored on the test partitions next to the sample-trained XGBoost
    and the zoo's selected model (both refit on the sample's training rows, as export would refit them).
    None under the pandas engine. The full-data model wins when its held-out primary score is better.

    It trains on the training partitions whose rows fit the workers' memory (``trainmemory.fit_partitions``;
    ``workers``: each worker's ``trainmemory.WorkerMemory``, measured on the cluster when None)."""
    if inputs is None:
        return None
    import dask
    import xgboost
    import xgboost.dask as dxgb
    from sklearn.pipeline import Pipeline

    client = engine.current_client()
    started = time.perf_counter()
    train_rows = data.X.index.get_indexer(zoo.split.train_index)
    X_sample, y_sample = data.X.iloc[train_rows], data.y[train_rows]
    preprocess = build_preprocessor(data.features, "xgboost").fit(lazy.sklearn_frame(X_sample), y_sample)
    table, parts, target = inputs.table, inputs.partitions, data.target
    frame = table.frame[list(data.X.columns) + [target]]
    extra = (inputs.conversions, data.rare_classes)
    meta = design_partition(frame._meta, preprocess, target, data.task, data.classes, *extra)
    design = frame.map_partitions(design_partition, preprocess, target, data.task, data.classes, *extra, meta=meta)
    xgb_spec = zoo.spec("xgboost") if "xgboost" in zoo.results else None
    settings = dict(xgb_spec["estimator_params"]) if xgb_spec else {}
    booster_params = {"tree_method": "hist", "max_depth": 6, "learning_rate": settings.get("learning_rate", 0.1),
                      "seed": params.seed, "nthread": 1, "verbosity": 0, "max_bin": MAX_BIN} \
        | _xgb_objective(data.task, data.n_classes)
    if "scale_pos_weight" in settings:
        booster_params["scale_pos_weight"] = settings["scale_pos_weight"]
    per_class = None
    if settings.get("class_weight") == "balanced":  # as the zoo's sample weights, from the sample's class counts
        counts = np.bincount(np.asarray(y_sample, dtype=int), minlength=data.n_classes)
        per_class = len(y_sample) / (max(int((counts > 0).sum()), 1) * np.maximum(counts, 1))
    lengths = lazy.partition_lengths(table)
    n_outputs = data.n_classes if data.task == "classification" and data.n_classes > 2 else 1
    fit = fit_partitions(lengths, parts["train"], parts["valid"], bytes_per_training_row(
        len(meta.columns) - 1, n_outputs, weighted=per_class is not None), workers or worker_room(client), params.seed)
    with quiet_libraries(), xgboost.config_context(verbosity=0):  # the config travels to the workers
        client.run(_quiet_xgboost_logs)
        train_part, valid_part = design.partitions[fit.train], design.partitions[fit.valid]
        weights = [None, None] if per_class is None else [
            part["label"].map_partitions(_label_weights, per_class, meta=("label", "float32"))
            for part in (train_part, valid_part)]
        dtrain = dxgb.DaskQuantileDMatrix(client, train_part.drop(columns="label"), train_part["label"],
                                          max_bin=MAX_BIN, weight=weights[0])
        dvalid = dxgb.DaskQuantileDMatrix(client, valid_part.drop(columns="label"), valid_part["label"], ref=dtrain,
                                          max_bin=MAX_BIN, weight=weights[1])
        output = dxgb.train(client, booster_params, dtrain, num_boost_round=XGB_MAX_TREES,
                            evals=[(dvalid, "valid")], early_stopping_rounds=XGB_EARLY_STOPPING, verbose_eval=False)
    booster = output["booster"]
    train_seconds = time.perf_counter() - started
    estimator = (xgboost.XGBClassifier() if data.task == "classification" else xgboost.XGBRegressor())
    estimator.load_model(bytearray(booster.save_raw("ubj")))  # the same trees, predict_proba as scikit-learn's
    full_pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])
    n_train = fit.train_rows

    # The sample-trained twins, fitted as export refits them: on the sample's training rows.
    twins = {}
    for model in dict.fromkeys(["xgboost", zoo.selected]):
        if model in zoo.results:
            spec = zoo.spec(model)
            twins[model] = build_pipeline(spec).fit(lazy.sklearn_frame(X_sample), y_sample,
                                                    **fit_params(spec, y_sample))
    started_scoring = time.perf_counter()
    models = {"full": full_pipeline} | {f"sample:{model}": pipeline for model, pipeline in twins.items()}
    threshold = _holdout_threshold(params.dask_sample_rows, [lengths[i] for i in parts["test"]], sum(lengths),
                                   inputs.target_missing)
    with quiet_libraries():
        shared = client.scatter(models, broadcast=True)  # sent once, not inside every task
        pieces = [dask.delayed(_predict_partition)(part, shared, target, data.task, data.classes, *extra,
                                                   keep=(params.seed, threshold, number))
                  for number, part in zip(parts["test"], table.frame.partitions[parts["test"]].to_delayed())]
        (pieces,) = dask.compute(pieces)
    candidates = [piece.pop("sample") for piece in pieces]
    pieces = [piece for piece in pieces if piece]
    if not pieces:
        raise BaselineError("the held-out partitions hold no row with a known target; use more files or another seed.")
    y_test = np.concatenate([piece["y"] for piece in pieces])
    holdout_sample = _holdout_sample(table, candidates, params.dask_sample_rows, params.seed, len(y_test), target,
                                     parts["test"])
    known = y_test >= 0 if data.task == "classification" else np.ones(len(y_test), bool)
    rows = []
    for name in models:
        prediction = np.concatenate([piece[name] for piece in pieces])[known]
        score = scores(data.metrics, y_test[known], prediction, data.n_classes)
        model = "xgboost" if name == "full" else name.split(":", 1)[1]
        rows.append({"model": model,
                     "trained_on": (f"full data ({n_train:,} rows)" if not fit.capped else
                                    f"full data ({n_train:,} of {fit.available_rows:,} training rows: memory cap)")
                     if name == "full"
                     else f"sample ({len(X_sample):,} rows)",
                     **{f"holdout_{metric}": value for metric, value in score.items()}})
    scoring_seconds = time.perf_counter() - started_scoring
    board = pd.DataFrame(rows)
    metric = data.primary_metric
    column = f"holdout_{metric}"
    full_score = board.loc[0, column]
    best_sample = board.iloc[1:][column]
    sample_best = best_sample.min() if metric in LOWER_IS_BETTER else best_sample.max()
    better = full_score < sample_best if metric in LOWER_IS_BETTER else full_score > sample_best
    winner = "full" if better else "sample"
    reason = (f"held out: {len(parts['test'])} partitions, {int(known.sum()):,} rows; full-data XGBoost {metric} "
              f"{full_score:.4f} against {sample_best:.4f} for the best sample-trained model: "
              + ("the full-data XGBoost is exported." if better else f"the zoo's choice ({zoo.selected}) stays."))
    board = board.sort_values(column, ascending=metric in LOWER_IS_BETTER, kind="stable").reset_index(drop=True)
    details = {"partitions": parts, "train_rows": n_train, "test_rows": int(known.sum()),
               "trained_partitions": {"train": fit.train, "valid": fit.valid}, "available_train_rows": fit.available_rows,
               "memory_capped": fit.capped, "memory_note": fit.note(), "bytes_per_row": fit.bytes_per_row,
               "best_iteration": int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)),
               "booster_params": booster_params, "train_seconds": round(train_seconds, 2),
               "scoring_seconds": round(scoring_seconds, 2), "sample_seed": params.seed,
               "test_sample_requested": params.dask_sample_rows}
    return HoldoutResult(table=board, full_pipeline=full_pipeline, winner=winner, reason=reason, details=details,
                         samples={"train": inputs.sample, "test": holdout_sample})


def _holdout_threshold(n: int, test_lengths: list[int], rows: int, target_missing: int) -> int:
    """The key threshold for the held-out sample's candidates before their rows with a target are counted: set from
    fewer rows than expected (every missing target in the held-out partitions, or 20% below their expected share,
    whichever is more), so the candidates hold the ``n`` smallest keys; ``_holdout_sample`` checks it."""
    held_out = sum(test_lengths)
    expected = held_out * (1 - target_missing / max(rows, 1))
    return hashsample.sample_threshold(n, max(held_out - target_missing, expected / 1.25, 1))


def _holdout_sample(table, candidates: list[pd.DataFrame], n: int, seed: int, known_rows: int, target: str,
                    partitions: list[int]) -> pd.DataFrame:
    """The seeded sample of ``n`` held-out rows with a target export takes as its test rows
    (``lazy.lazy_sample`` of the test partitions: the same rows), from the scoring pass's candidates; drawn in a
    pass of its own when they fall short (far more missing targets in the held-out partitions than elsewhere)."""
    if sum(len(piece) for piece in candidates) >= min(n, known_rows):
        return lazy.smallest_rows(table, candidates, n, min(n, known_rows))
    return lazy.lazy_sample(table, n, seed, total=known_rows, known=target, partitions=partitions)
