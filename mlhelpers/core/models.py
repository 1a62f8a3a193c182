"""Preprocessing built from column roles, and the baseline model zoo, as scikit-learn Pipelines.

Everything a fitted pipeline depends on is in ``model_spec.json`` (``features``, ``model``,
``task``, ``seed``, ``n_jobs``, ``estimator_params``), so ``build_pipeline(spec)`` rebuilds it exactly.

Preprocessing is hand-written with standard scikit-learn transformers rather than skrub's
``TableVectorizer``: the roles already come from ``eda.json`` (so TableVectorizer's own type
sniffing would duplicate, and could disagree with, the explore step), and standard transformers
keep the exported pipeline convertible to ONNX and loadable by skops without extra trusted types.
The exceptions are ``DatetimeParts`` below, used only when a datetime column is a feature, and
``mlhelpers.core.text.TextEncoder`` (TF-IDF of character n-grams + SVD), only when a free-text column is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURE_ROLES = ("numeric", "boolean", "categorical", "high_cardinality", "datetime", "text")
# The zoo, cheapest and simplest first: ties on the leaderboard go to the earlier model.
ZOO = ("dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost")
# The baseline's tuning stage (mlhelpers.baseline.tuning) adds "<model> (tuned)" to the leaderboard: the same
# family with other estimator parameters. ``model_family`` maps a leaderboard name back to its zoo model.
TUNED_SUFFIX = " (tuned)"
LEADERBOARD_MODELS = ZOO + tuple(model + TUNED_SUFFIX for model in ZOO if model != "dummy")
# Above twice this many training rows a random forest's trees each see a fixed-size bootstrap sample:
# as accurate, and far faster and smaller than full-size trees (diamonds, 27k rows per fold: RMSE 560.9
# with 15,000 rows per tree vs 560.4 with all, 64 vs 88 s); below it every tree sees a full bootstrap
# sample, as the library's default (half-size samples lost accuracy on mid-size tables).
FOREST_MAX_SAMPLES = 15_000
# Above this many rows the boosting models learn at 0.3 instead of 0.1: on 210k flight rows that
# scored within 0.003-0.007 ROC AUC of 0.1-0.2 at a third of the time; on small data 0.1 is better.
FAST_BOOSTING_ROWS = 50_000
DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "minute", "days_since_epoch")
# Tree models see a categorical column as integer codes of its most frequent levels: at most 254 codes, the
# last of them "infrequent" for the rest (levels outside the first 253, or seen in fewer than 5 rows), and -1 for
# missing and unknown levels: 255 values, HistGradientBoosting's native categorical limit (with 255 codes a
# column of hundreds of levels and missing values had 256, and native splits on it raised). The explore step
# uses the same numbers to tell free text (most rows would share that code) from a category.
ORDINAL_MAX_CATEGORIES = 254
MIN_CATEGORY_ROWS = 5
# Tree models see a free-text column as its first 5 SVD components, the linear model as 30 (the encoder's
# default). Trees split greedily on whichever column fits the fold's noise best, and the later components carry
# little signal: on typed job titles (openintro loans, interest rate, 5 folds) 30 components cost a default
# forest 2% RMSE against the plain ordinal-code reference (3.926 vs 3.852; 3.877 with 10, 3.859 with 5,
# 3.839 without the column) and HistGradientBoosting 1% (3.743 vs 3.703; 3.710 with 5), while on tweets,
# where the text tells the phone, 5 components kept the trees' ROC AUC within 0.002 of 30 (0.940 vs 0.943,
# fold std 0.005). The linear model weighs every component under one penalty: it keeps 30 (0.923 vs 0.921 with 5).
TREE_TEXT_COMPONENTS = 5


def model_family(name: str) -> str:
    """The zoo model behind a leaderboard name: ``"xgboost (tuned)"`` -> ``"xgboost"``."""
    return name.removesuffix(TUNED_SUFFIX)


def feature_columns(eda: dict[str, Any]) -> dict[str, list[str]]:
    """Columns the pipeline uses, grouped by role, from ``eda.json`` (dropped columns left out)."""
    groups: dict[str, list[str]] = {role: [] for role in FEATURE_ROLES}
    for name, info in eda["columns"].items():
        if not info["drop"] and info["role"] in groups:
            groups[info["role"]].append(name)
    return groups


class DatetimeParts:
    """Turn datetime (or date-like string) columns into numeric parts: year, month, day,
    day of week, hour, minute and days since 1970-01-01; unparseable values become NaN.

    A plain scikit-learn transformer (stateless apart from the input names), kept here so
    skops can trust it by name: ``mlhelpers.core.models.DatetimeParts`` (``mlhelpers.modeling.DatetimeParts``
    in models saved before the package layout of 2026-11; ``mlhelpers._legacy`` maps that name here).
    """

    def __init__(self, parts: tuple[str, ...] = DATETIME_PARTS):
        self.parts = parts

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"parts": self.parts}

    def set_params(self, **params: Any) -> "DatetimeParts":
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X, y=None) -> "DatetimeParts":
        unknown = set(self.parts) - set(DATETIME_PARTS)
        if unknown:
            raise ValueError(f"DatetimeParts: unknown parts {sorted(unknown)}; choose from {DATETIME_PARTS}.")
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        if not hasattr(self, "n_features_in_"):
            raise ValueError("DatetimeParts is not fitted yet; call fit first.")
        frame = pd.DataFrame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"DatetimeParts was fitted on {self.n_features_in_} columns, got {frame.shape[1]}.")
        blocks = []
        for column in frame.columns:
            values = frame[column]
            if not pd.api.types.is_datetime64_any_dtype(values):
                # utc=True: naive strings read as UTC, zoned ones converted, so mixed zones parse too
                values = pd.to_datetime(values.astype("object"), errors="coerce", format="mixed", utc=True)
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            parts = {"year": values.dt.year, "month": values.dt.month, "day": values.dt.day,
                     "dayofweek": values.dt.dayofweek, "hour": values.dt.hour, "minute": values.dt.minute,
                     "days_since_epoch": (values - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)}
            blocks.extend(parts[name].to_numpy(dtype=float, na_value=np.nan) for name in self.parts)
        return np.column_stack(blocks) if blocks else np.empty((len(frame), 0))

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{column}_{part}" for column in names for part in self.parts], dtype=object)


def _encoders(model: str):
    """(low-cardinality encoder, high-cardinality encoder, boolean encoder) for ``model``.

    Encoders handle missing values natively (a category of their own), whatever the dtype
    (object, category, bool, numbers), so no imputer runs on categorical columns.
    """
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if model == "linear":
        # one-hot for linear models; rare levels (< 5 rows) pool into one "infrequent" column
        # and a high-cardinality column keeps its 50 most frequent levels
        def one_hot(max_categories):
            return OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                 max_categories=max_categories, sparse_output=False)
        return one_hot(30), one_hot(50), one_hot(3)
    # trees: integer codes (``ORDINAL_MAX_CATEGORIES``: within HistGradientBoosting's native categorical limit),
    # the rest pooled as "infrequent"; unknown and missing levels become -1
    def ordinal():
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                              encoded_missing_value=-1, max_categories=ORDINAL_MAX_CATEGORIES,
                              min_frequency=MIN_CATEGORY_ROWS)
    return ordinal(), ordinal(), ordinal()


def build_preprocessor(features: dict[str, list[str]], model: str, seed: int = 0):
    """A ColumnTransformer for ``model`` from the column roles.

    Low-cardinality categorical and boolean columns come first (one output column each for tree
    models, so their indices are known before fitting: HistGradientBoosting treats them as native
    categoricals), then high-cardinality codes, numbers (median-imputed with missing-value
    indicators; standardized for the linear model), datetime parts and free text (``TextEncoder``:
    TF-IDF of character n-grams reduced by a ``seed``-ed SVD to 30 numbers for the linear model, standardized,
    and to ``TREE_TEXT_COMPONENTS`` for the trees).
    Unknown role keys are ignored; absent ones are empty.
    Every model but the linear one gets the same configuration (integer codes), so cross-validation
    can fit it once per fold for all of them.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlhelpers.core.text import TEXT_COMPONENTS, TextEncoder  # scikit-learn at import: only when building

    low, high, boolean = _encoders(model)
    text_components = TEXT_COMPONENTS if model == "linear" else TREE_TEXT_COMPONENTS

    def numeric_steps():
        steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
        if model == "linear":
            steps.append(StandardScaler())
        return make_pipeline(*steps)

    branches = [("categorical", low, list(features.get("categorical", []))),
                ("boolean", boolean, list(features.get("boolean", []))),
                ("high_cardinality", high, list(features.get("high_cardinality", []))),
                ("numeric", numeric_steps(), list(features.get("numeric", []))),
                ("datetime", make_pipeline(DatetimeParts(), numeric_steps()), list(features.get("datetime", []))),
                ("text", make_pipeline(TextEncoder(n_components=text_components, random_state=seed),
                                       *([StandardScaler()] if model == "linear" else [])),
                 list(features.get("text", [])))]
    branches = [branch for branch in branches if branch[2]]
    if not branches:
        raise ValueError("no feature columns: every column is dropped or has an unusable role; "
                         "check eda.json's columns (roles and drop) and drop_columns.")
    return ColumnTransformer(branches, remainder="drop", verbose_feature_names_out=False)


def code_columns(features: dict[str, list[str]], high_cardinality: bool = False) -> list[int]:
    """The tree models' output columns that hold category codes: 0..k-1, the categorical and boolean columns
    (HistGradientBoosting's native categoricals by default), and with ``high_cardinality`` the high-cardinality
    codes after them. Those stay ordinal by default: native splits on hundreds of levels overfit (flights: ROC AUC
    0.773 -> 0.793 without); the tuning stage tries them as a candidate (``search_space``)."""
    roles = ("categorical", "boolean") + (("high_cardinality",) if high_cardinality else ())
    return list(range(sum(len(features.get(role, [])) for role in roles)))


def make_estimator(model: str, task: str, seed: int, n_jobs: int = -1, **params: Any):
    """The estimator named ``model`` for ``task``, with the zoo's defaults overridden by ``params``.

    ``zoo_params`` adds the data-dependent choices (class weights, forest sample size, boosting
    learning rate on big data); the baseline step adds the early-stopped number of boosting rounds.
    """
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression, Ridge
    from xgboost import XGBClassifier, XGBRegressor

    classification = task == "classification"
    zoo = {
        "dummy": (DummyClassifier, {"strategy": "prior"}) if classification
        else (DummyRegressor, {"strategy": "mean"}),
        "linear": (LogisticRegression, {"C": 1.0, "solver": "newton-cholesky", "max_iter": 100,
                                       "random_state": seed}) if classification
        else (Ridge, {"alpha": 1.0, "random_state": seed}),
        # the library's own max_features and (for regression) leaf size: a regression forest splitting on
        # sqrt(p) features scored RMSE 667 vs 561 on diamonds (2 folds, 9 features); classification keeps
        # leaves of 3 rows (smoother probabilities). max_samples: see zoo_params.
        "random_forest": (RandomForestClassifier if classification else RandomForestRegressor,
                          {"n_estimators": 100, "min_samples_leaf": 3 if classification else 1,
                           "max_features": "sqrt" if classification else 1.0, "max_samples": None,
                           "n_jobs": n_jobs, "random_state": seed}),
        "hist_gradient_boosting": (HistGradientBoostingClassifier if classification
                                   else HistGradientBoostingRegressor,
                                   {"max_iter": 100, "learning_rate": 0.1, "early_stopping": "auto",
                                    "random_state": seed}),
        "xgboost": (XGBClassifier if classification else XGBRegressor,
                    {"n_estimators": 300, "learning_rate": 0.1, "max_depth": 6, "tree_method": "hist",
                     "n_jobs": n_jobs, "random_state": seed}),
    }
    if model not in zoo:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(zoo)}.")
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}; expected 'classification' or 'regression'.")
    estimator_class, defaults = zoo[model]
    if model == "xgboost":
        # XGBoost has no class_weight: the fit gets balanced sample weights instead (``sample_weights``)
        params = {key: value for key, value in params.items() if key != "class_weight"}
    return estimator_class(**(defaults | params))


def build_pipeline(spec: dict[str, Any]):
    """Rebuild the exact unfitted Pipeline a ``model_spec.json`` describes."""
    from sklearn.pipeline import Pipeline

    params = dict(spec.get("estimator_params", {}))
    if spec["model"] == "hist_gradient_boosting" and "categorical_features" not in params:
        params["categorical_features"] = code_columns(spec["features"]) or None
    return Pipeline([
        ("preprocess", build_preprocessor(spec["features"], spec["model"], seed=spec["seed"])),
        ("model", make_estimator(spec["model"], spec["task"], spec["seed"],
                                 spec.get("n_jobs", -1), **params)),
    ])


def class_weighting(y: np.ndarray, task: str, primary_metric: str) -> str | None:
    """``"balanced"`` when classes should be reweighted, else None, with the rule in one place.

    Reweight when the primary metric judges hard decisions (balanced accuracy, F1) on an
    imbalanced target, or when the minority class is rare (< 10% of rows): there the trees would
    otherwise hardly split on it. Ranking and probability metrics (ROC AUC, average precision,
    log loss) on a moderately imbalanced target are left unweighted: weights would only distort the
    predicted probabilities, and the decision threshold is chosen afterwards instead.
    """
    if task != "classification":
        return None
    shares = np.bincount(np.asarray(y, dtype=int)) / len(y)
    shares = shares[shares > 0]
    if len(shares) < 2:
        return None
    minority = shares.min()
    balanced_share = 1 / len(shares)
    threshold_metric = primary_metric in ("balanced_accuracy", "f1")
    if (threshold_metric and minority < 0.8 * balanced_share) or minority < 0.1:
        return "balanced"
    return None


def zoo_params(model: str, task: str, y: np.ndarray, primary_metric: str) -> dict[str, Any]:
    """Data-dependent estimator parameters for ``model`` (recorded in ``model_spec.json``).

    Class weights (``class_weight``; XGBoost's ``scale_pos_weight`` for a binary target, and for more classes
    ``class_weight`` fitted as sample weights: ``sample_weights``) follow
    ``class_weighting``; a random forest on more than ``FOREST_MAX_SAMPLES`` rows bootstraps that
    many rows per tree; boosting on more than ``FAST_BOOSTING_ROWS`` rows learns faster; a logistic regression
    over more than two classes uses L-BFGS.
    """
    params: dict[str, Any] = {}
    weighting = class_weighting(y, task, primary_metric)
    if weighting and model in ("linear", "random_forest", "hist_gradient_boosting"):
        params["class_weight"] = weighting
    if weighting and model == "xgboost":
        counts = np.bincount(np.asarray(y, dtype=int))
        if len(counts) == 2:
            params["scale_pos_weight"] = round(float(counts[0] / max(counts[1], 1)), 6)
        else:  # no multiclass equivalent: recorded as class_weight, fitted with balanced sample weights
            params["class_weight"] = weighting
    if model == "linear" and task == "classification" and len(np.unique(y)) > 2:
        # Newton-Cholesky builds the full Hessian, (features x classes) squared: on 32 leaf species (modeldata's
        # leaf_id_flavia, 1,525 rows) its 5-fold CV took 39.5 s against 2.4 s with L-BFGS, log loss 0.2852 vs
        # 0.2855; on 4 and 6 classes (hpc, Ecdat's Car) L-BFGS was as good and as fast
        params |= {"solver": "lbfgs", "max_iter": 1000}
    if model == "random_forest" and len(y) > FOREST_MAX_SAMPLES * 2:
        params["max_samples"] = FOREST_MAX_SAMPLES
    if model in ("hist_gradient_boosting", "xgboost") and len(y) > FAST_BOOSTING_ROWS:
        params["learning_rate"] = 0.3
    return params


def sample_weights(spec: dict[str, Any], y: np.ndarray) -> np.ndarray | None:
    """Per-row weights the fit of ``spec``'s model needs, or None: balanced class weights for an XGBoost spec
    whose ``estimator_params`` hold ``class_weight="balanced"`` (XGBClassifier has no such parameter; multiclass
    XGBoost without them scored balanced accuracy 0.751 vs 0.772 for library defaults on 4-class hpc).
    Computed on the rows being fitted, as scikit-learn's own ``class_weight="balanced"`` is."""
    if spec["model"] != "xgboost" or spec.get("estimator_params", {}).get("class_weight") != "balanced":
        return None
    from sklearn.utils.class_weight import compute_sample_weight

    return compute_sample_weight("balanced", y)


def fit_params(spec: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    """Keyword arguments for ``build_pipeline(spec).fit(X, y, **fit_params(spec, y))``: the sample weights of
    ``sample_weights`` routed to the pipeline's model step, else nothing."""
    weights = sample_weights(spec, y)
    return {} if weights is None else {"model__sample_weight": weights}


def encode_target(y: pd.Series, task: str, classes: list | None = None) -> tuple[np.ndarray, list | None]:
    """Targets as numbers: class indices (0..k-1, sorted classes) for classification."""
    if task != "classification":
        return y.to_numpy(dtype=float), None
    classes = classes if classes is not None else sorted(y.unique().tolist(), key=str)
    index = {label: i for i, label in enumerate(classes)}
    unknown = set(y.unique()) - set(index)
    if unknown:
        raise ValueError(f"target has classes {sorted(map(str, unknown))} not seen in training: {classes}.")
    return y.map(index).to_numpy(dtype=int), classes
