"""Exploratory analysis for a new table: column roles, the target, relevance, leakage, recommendations.

Each function does one job and returns a DataFrame or a small dataclass the notebook shows;
``recommend`` ties them together into the ``explore/eda.json`` payload (docs/artifacts.md).
Exact on the whole data where exactness matters (counts, missing rates, class balance), on a seeded
sample where it adds nothing (mutual information, rank correlations, single-feature scores).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from mlhelpers.config import CLASSIFICATION_METRICS, MODEL_NAMES, REGRESSION_METRICS

__all__ = ["EdaError", "TargetSummary", "column_roles", "prepare_target", "associations",
           "feature_correlations", "redundant_pairs", "leakage_suspects", "recommend", "write_eda",
           "columns_table", "summarize", "write_profile"]

FEATURE_ROLES = ("numeric", "boolean", "categorical", "high_cardinality", "datetime")
MOSTLY_MISSING = 0.9        # share of missing values from which a column is "mostly missing"
NEAR_CONSTANT = 0.99        # share of the most frequent value from which a column is "near constant"
IDENTIFIER_UNIQUE = 0.99    # share of distinct values from which an integer/string column is an identifier
MAX_CATEGORIES = 30         # more distinct values than this: high cardinality
MAX_CLASSES = 20            # a numeric target with at most this many integer values is a class label
LEAK_SCORE = {"roc_auc": 0.98, "roc_auc_ovr": 0.98, "r2": 0.98}  # single-feature score that looks too good
MISSING_LEAK_AUC = 0.95     # missingness alone separating the classes this well looks recorded after the fact
SMALL_DATA_ROWS = 20_000    # profile in full detail up to this many rows
SAMPLE_ROWS = 20_000        # rows sampled for mutual information, correlations and single-feature scores

_ID_NAME = re.compile(r"^(id|uuid|guid|key|index|rownames|row_?(id|num|number)|unnamed: ?\d+)$"
                      r"|[_\s.-](id|uuid|guid|key|no|number)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](ID|Id)$")
_PERSON_NAME = re.compile(r"(?i)^(first|last|full|customer|user|person|passenger|employee)?[_ ]?name$")
_AFTER_OUTCOME = {"outcome", "result", "results", "final", "refund", "refunded", "chargeback",
                  "defaulted", "closed", "closure", "cancelled", "canceled", "cancellation",
                  "churned", "resolution", "resolved", "settled", "settlement", "recovery",
                  "recovered", "collection", "collections", "discharge", "discharged", "died",
                  "death", "deceased", "actual", "post", "after", "paid", "repaid", "writeoff"}
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}-\d{2}|\d{1,2}:\d{2}")


class EdaError(ValueError):
    """The data cannot be explored as asked: the message names the column or key and the fix."""


# --------------------------------------------------------------------------- column roles

def _show(value: Any) -> str:
    """A value as a reader wants to see it: 2013, not np.int16(2013)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _tokens(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t}


def _parse_dates(column: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(column.astype("string"), errors="coerce", format="mixed")


def _looks_like_dates(values: pd.Series) -> tuple[bool, str]:
    sample = values.dropna().astype(str).drop_duplicates().head(500)
    if sample.empty or not sample.str.contains(_DATE_LIKE).mean() >= 0.95:
        return False, ""
    parsed = _parse_dates(sample)
    share = parsed.notna().mean()
    return share >= 0.95, f"strings parsed as dates ({share:.0%} of {len(sample)} distinct values), e.g. {sample.iloc[0]!r}"


def _is_stringish(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype))


def _base_role(column: pd.Series, n_unique: int, nonnull: int, values: pd.Index) -> tuple[str, str]:
    """The role a column has as a feature, ignoring flags such as identifier or constant."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return "datetime", "datetime dtype"
    if pd.api.types.is_numeric_dtype(column.dtype):
        if n_unique <= 2 and set(values.tolist()) <= {0, 1}:
            return "boolean", "numeric 0/1 values"
        return "numeric", f"numeric, {n_unique:,} distinct values"
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
        return "categorical", "true/false values stored as objects"
    is_date, evidence = _looks_like_dates(pd.Series(values[:500]))  # distinct values, most frequent first
    if is_date:
        return "datetime", evidence
    sample = pd.Series(values[:2000].astype(str))
    lengths, words = sample.str.len().mean(), sample.str.count(r"\s+").mean() + 1
    if nonnull and n_unique / nonnull > 0.5 and lengths >= 30 and words >= 4:
        return "text", f"free text: {lengths:.0f} characters and {words:.0f} words on average"
    if n_unique <= MAX_CATEGORIES:
        shown = ", ".join(map(str, values[:4])) + (", ..." if n_unique > 4 else "")
        return "categorical", f"{n_unique} categories ({shown})"
    return "high_cardinality", f"{n_unique:,} categories (more than {MAX_CATEGORIES})"


def _same_information(a: pd.Series, b: pd.Series, nonnull: int, n_unique: int) -> str:
    """How ``b`` duplicates ``a`` ('' if it does not)."""
    missing_a, missing_b = a.isna().to_numpy(), b.isna().to_numpy()
    if not np.array_equal(missing_a, missing_b):
        return ""
    values_a, values_b = a.to_numpy(dtype=object)[~missing_a], b.to_numpy(dtype=object)[~missing_b]
    if bool((values_a == values_b).all()):
        return "identical values"
    if n_unique <= 0.5 * nonnull:
        pairs = pd.DataFrame({"a": pd.factorize(a)[0], "b": pd.factorize(b)[0]}).drop_duplicates()
        if len(pairs) == pairs["a"].nunique() == pairs["b"].nunique():
            return "the same values under other labels (one-to-one)"
    return ""


def column_roles(frame: pd.DataFrame, target: str | None = None) -> pd.DataFrame:
    """Each column's role with its evidence, computed exactly on the whole frame.

    Returns a DataFrame indexed by column: ``role`` (numeric, boolean, categorical,
    high_cardinality, datetime, text, identifier, constant, near_constant, mostly_missing,
    duplicate, target), ``base_role`` (what the column would be as a feature), ``dtype``,
    ``missing_pct``, ``n_unique``, ``top_pct`` (share of the most frequent value) and ``evidence``.
    """
    if target is not None and target not in frame.columns:
        raise EdaError(f"target {target!r} is not a column; columns: {', '.join(map(str, frame.columns))}.")
    n = len(frame)
    rows, seen = [], []
    for name in frame.columns:
        column = frame[name]
        counts = column.value_counts(dropna=True, sort=True)
        nonnull = int(counts.sum())
        n_unique = len(counts)
        missing = 1 - nonnull / n if n else 0.0
        top = counts.iloc[0] / nonnull if nonnull else 0.0
        base, base_evidence = ("numeric", "no values") if not nonnull else _base_role(column, n_unique, nonnull, counts.index)
        missing_note = f", {_pct(missing)} missing" if missing else ""
        role, evidence = base, base_evidence + missing_note
        if name == target:
            role, evidence = "target", "the column to predict" + missing_note
        elif nonnull == 0:
            role, evidence = "mostly_missing", "all values missing"
        elif n_unique == 1 and missing == 0:
            role, evidence = "constant", f"a single value ({_show(counts.index[0])}) in every row"
        elif missing >= MOSTLY_MISSING:
            role, evidence = "mostly_missing", f"{missing:.1%} missing (from {MOSTLY_MISSING:.0%} on)"
        else:
            duplicate_of = ""
            for other, other_unique, other_nonnull in seen:
                if other_unique == n_unique and other_nonnull == nonnull:
                    how = _same_information(frame[other], column, nonnull, n_unique)
                    if how:
                        duplicate_of = f"duplicate of {other!r}: {how}"
                        break
            identifier = _identifier_evidence(name, column, base, n_unique, nonnull)
            if duplicate_of:
                role, evidence = "duplicate", duplicate_of
            elif identifier:
                role, evidence = "identifier", identifier
            elif n_unique == 1:
                evidence = f"a single value plus {missing:.0%} missing: only missingness carries information"
            elif top >= NEAR_CONSTANT and base != "text":
                role = "near_constant"
                evidence = f"{top:.1%} of known values are {_show(counts.index[0])}{missing_note}"
        if name != target and nonnull:
            seen.append((name, n_unique, nonnull))
        rows.append({"column": name, "role": role, "base_role": base, "dtype": str(column.dtype),
                     "missing_pct": round(100 * missing, 2), "n_unique": n_unique,
                     "top_pct": round(100 * top, 2), "evidence": evidence})
    return pd.DataFrame(rows).set_index("column")


def _identifier_evidence(name: str, column: pd.Series, base: str, n_unique: int, nonnull: int) -> str:
    unique_share = n_unique / nonnull if nonnull else 0.0
    if base in ("boolean", "datetime", "text"):
        return ""
    named = bool(_ID_NAME.search(str(name)) or _CAMEL_ID.search(str(name)) or _PERSON_NAME.match(str(name)))
    integral = pd.api.types.is_integer_dtype(column.dtype) or _is_stringish(column)
    unique = integral and unique_share >= IDENTIFIER_UNIQUE and nonnull >= 20
    if not (unique or (named and unique_share >= 0.5)):
        return ""
    evidence = [f"unique for {unique_share:.0%} of rows ({n_unique:,} distinct)"]
    if named:
        evidence.append("its name looks like a key or a name")
    if pd.api.types.is_numeric_dtype(column.dtype) and column.is_monotonic_increasing:
        evidence.append("it increases with the row order (a row number)")
    return ", ".join(evidence)


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.2%}"


# --------------------------------------------------------------------------- target

@dataclass
class TargetSummary:
    """The target: task and metric with their reasons, rows dropped, class balance or spread."""

    target: str
    task: str
    task_reason: str
    primary_metric: str
    metric_reason: str
    n_rows: int
    n_rows_missing_target: int
    classes: list | None
    distribution: pd.DataFrame = field(repr=False)

    def _repr_html_(self) -> str:
        facts = pd.DataFrame({"value": {
            "target": self.target, "task": f"{self.task} ({self.task_reason})",
            "primary metric": f"{self.primary_metric} ({self.metric_reason})",
            "rows with a known target": f"{self.n_rows:,}",
            "rows dropped (target missing)": f"{self.n_rows_missing_target:,}"}})
        return facts.to_html() + self.distribution.to_html()


def _infer_task(y: pd.Series, task: str, target: str) -> tuple[str, str]:
    n_unique = y.nunique()
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if task == "regression":
        if not numeric:
            raise EdaError(f"task is 'regression' but target {target!r} holds {y.dtype} values, not numbers; "
                           "set task: classification (or auto), or pick a numeric target.")
        return task, "set by the task parameter"
    if task == "classification":
        return task, "set by the task parameter"
    if task != "auto":
        raise EdaError(f"task {task!r} is unknown; use auto, classification or regression.")
    if not numeric:
        return "classification", f"target has {n_unique} distinct {'true/false' if pd.api.types.is_bool_dtype(y.dtype) else 'string'} values"
    integral = bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
    if n_unique == 2:
        return "classification", "target has 2 distinct numeric values"
    if integral and n_unique <= MAX_CLASSES:
        return "classification", f"target has {n_unique} distinct integer values (at most {MAX_CLASSES})"
    return "regression", f"numeric target with {n_unique:,} distinct values"


def _choose_metric(task: str, y: pd.Series, primary_metric: str, shares: pd.Series | None) -> tuple[str, str]:
    if primary_metric != "auto":
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        if primary_metric not in allowed:
            raise EdaError(f"primary_metric {primary_metric!r} does not fit a {task} task; choose one of "
                           f"{', '.join(allowed)} or auto.")
        return primary_metric, "set by the primary_metric parameter"
    if task == "regression":
        skew = float(y.astype(float).skew())
        if abs(skew) > 2:
            return "mae", f"heavy-tailed target (skew {skew:.1f}): MAE is not dominated by the few extreme values"
        return "rmse", f"target spread is moderate (skew {skew:.1f}): RMSE, in the target's unit"
    minority = float(shares.min())
    if len(shares) == 2:
        if minority < 0.2:
            return "average_precision", (f"binary target, {minority:.0%} minority class: average precision "
                                         "focuses on the rare class where ROC AUC looks flattering")
        return "roc_auc", f"binary target, {minority:.0%} minority class"
    ratio = minority / float(shares.max())
    if ratio < 0.5:
        return "balanced_accuracy", (f"{len(shares)} classes, the smallest {ratio:.0%} the size of the "
                                     "largest: balanced accuracy weighs every class equally")
    return "log_loss", f"{len(shares)} fairly balanced classes: log loss rewards calibrated probabilities"


def prepare_target(frame: pd.DataFrame, target: str, task: str = "auto",
                   primary_metric: str = "auto") -> tuple[pd.DataFrame, TargetSummary]:
    """Drop rows with a missing target, infer the task and pick the primary metric, each with a reason.

    Returns the rows with a known target (original row labels kept) and a ``TargetSummary``.
    Raises ``EdaError`` for an unknown target, a target with one class or too few rows.
    """
    from mlhelpers.data import drop_missing_target

    if target not in frame.columns:
        raise EdaError(f"target {target!r} is not a column; columns: {', '.join(map(str, frame.columns))}.")
    known, n_missing = drop_missing_target(frame, target)
    if len(known) < 10:
        raise EdaError(f"only {len(known)} row(s) have a known target {target!r} ({n_missing} missing); "
                       "exploring and modelling need at least 10.")
    y = known[target]
    task, task_reason = _infer_task(y, task, target)
    shares, classes = None, None
    if task == "classification":
        counts = y.value_counts(dropna=True)
        counts = counts[counts > 0]
        if len(counts) < 2:
            raise EdaError(f"target {target!r} has a single class ({_show(counts.index[0])}) in all {len(known):,} "
                           "rows with a known target; a classifier needs at least two classes. Check the "
                           "target column or the data selection.")
        shares = counts / counts.sum()
        classes = sorted(pd.unique(y.astype(object)).tolist(), key=str)
        distribution = pd.DataFrame({"count": counts, "share": shares.round(4)})
        distribution.index.name = target
    else:
        stats = y.astype(float).describe()
        stats["skew"] = y.astype(float).skew()
        distribution = stats.round(4).to_frame(target)
    metric, metric_reason = _choose_metric(task, y, primary_metric, shares)
    if n_missing:
        task_reason += f"; {n_missing:,} rows with a missing target dropped"
    return known, TargetSummary(target=target, task=task, task_reason=task_reason, primary_metric=metric,
                                metric_reason=metric_reason, n_rows=len(known), n_rows_missing_target=n_missing,
                                classes=classes, distribution=distribution)


# --------------------------------------------------------------------------- relevance

def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()


def _encode(column: pd.Series, role: str) -> tuple[np.ndarray, bool]:
    """A float array for ``column`` and whether it is discrete (codes) or continuous."""
    if role == "datetime":
        parsed = column if pd.api.types.is_datetime64_any_dtype(column.dtype) else _parse_dates(column)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(None)
        values = parsed.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        values[parsed.isna().to_numpy()] = np.nan
        return values, False
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan), role == "boolean"
    codes = pd.factorize(column.astype(object), use_na_sentinel=False)[0]
    return codes.astype(float), True


def _target_codes(y: pd.Series, task: str) -> np.ndarray:
    if task == "classification":
        return pd.factorize(y.astype(object), sort=True)[0]
    return y.to_numpy(dtype=float)


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = pd.factorize(a)[0], pd.factorize(b)[0]
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    return table


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma) between two code arrays."""
    table = _contingency(a, b)
    n = table.sum()
    if n < 2 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.nansum((table - expected) ** 2 / expected)
    r, k = table.shape
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_c - 1, r_c - 1)
    return float(np.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def _mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information in nats between two code arrays: the plug-in estimate minus the
    Miller-Madow bias ((rows - 1)(cols - 1) / 2n), floored at 0."""
    table = _contingency(a, b)
    n = table.sum()
    joint = table / n
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nonzero = joint > 0
    mi = float(np.sum(joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])))
    r, k = table.shape
    return max(0.0, mi - (r - 1) * (k - 1) / (2 * n))


def _bins(values: np.ndarray, discrete: bool, bins: int = 20) -> np.ndarray:
    if discrete:
        return np.nan_to_num(values, nan=-1)
    ranks = pd.Series(values).rank(pct=True).to_numpy()
    binned = np.minimum(np.nan_to_num(ranks * bins, nan=0).astype(int), bins - 1)
    return np.where(np.isnan(ranks), -1, binned)


def _single_feature_score(x: np.ndarray, discrete: bool, y: np.ndarray, task: str, n_classes: int,
                          seed: int) -> tuple[float, str]:
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import TargetEncoder
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classification = task == "classification"
    scoring = ("roc_auc" if n_classes == 2 else "roc_auc_ovr") if classification else "r2"
    tree = (DecisionTreeClassifier if classification else DecisionTreeRegressor)(
        max_depth=8, min_samples_leaf=5, random_state=seed)
    X = x.reshape(-1, 1)
    if discrete and len(np.unique(x)) > 2:
        target_type = ("binary" if n_classes == 2 else "multiclass") if classification else "continuous"
        model = make_pipeline(TargetEncoder(target_type=target_type, random_state=seed), tree)
        X = np.nan_to_num(X, nan=-1).astype(int)
    else:
        model = tree
    cv = (StratifiedKFold if classification else KFold)(3, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(model, X, y, cv=cv, scoring=scoring, error_score=np.nan)
    return float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan"), scoring


def associations(frame: pd.DataFrame, target_info: TargetSummary, roles: pd.DataFrame, seed: int = 42,
                 sample_rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """Each feature's association with the target, on a seeded sample of ``sample_rows`` rows.

    Returns a DataFrame indexed by column, strongest first: ``mutual_info`` (nats; plug-in estimate
    on categories or 20 equal-frequency bins, Miller-Madow bias-corrected, missing values as a bin),
    ``association`` with its ``measure`` (Spearman's rho between numbers, bias-corrected Cramér's V
    otherwise, numbers binned in deciles), ``single_feature_score`` (3-fold CV score of a depth-8
    tree on that feature alone; ``score`` names it: ROC AUC or R²) and ``missing_auc`` (how well
    missingness alone separates the classes; binary and multiclass targets).
    """
    target, task = target_info.target, target_info.task
    skip = {"target", "constant", "text", "duplicate"}
    features = [c for c in roles.index if roles.loc[c, "role"] not in skip and c in frame.columns]
    if not features:
        return pd.DataFrame(columns=["role", "mutual_info", "association", "measure", "single_feature_score",
                                     "score", "missing_auc"])
    sample = _sample(frame, sample_rows, seed)
    y = _target_codes(sample[target], task)
    n_classes = len(target_info.classes or [])
    target_discrete = task == "classification"
    y_bins = _bins(y.astype(float), target_discrete)
    rows = []
    for name in features:
        values, is_discrete = _encode(sample[name], roles.loc[name, "base_role"])
        x_bins = _bins(values, is_discrete)
        if not is_discrete and (not target_discrete or n_classes == 2):
            both = ~np.isnan(values)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a constant sample has no correlation: reported as 0
                rho = pd.Series(values[both]).corr(pd.Series(y[both].astype(float)), method="spearman")
            association, measure = (0.0 if np.isnan(rho) else float(rho)), "spearman"
        else:
            association = _cramers_v(_bins(values, is_discrete, bins=10), _bins(y.astype(float), target_discrete, bins=10))
            measure = "cramers_v"
        score, scoring = _single_feature_score(values, is_discrete, y, task, n_classes, seed)
        missing_auc = np.nan
        if target_discrete and 0 < roles.loc[name, "missing_pct"] < 100:
            missing_auc = _missing_auc(frame[name].isna().to_numpy(), frame[target], n_classes)
        rows.append({"column": name, "role": roles.loc[name, "role"], "mutual_info": _mutual_info(x_bins, y_bins),
                     "association": association, "measure": measure, "single_feature_score": score,
                     "score": scoring, "missing_auc": missing_auc})
    table = pd.DataFrame(rows).set_index("column")
    return table.sort_values("mutual_info", ascending=False, kind="stable").round(4)


def _missing_auc(missing: np.ndarray, y: pd.Series, n_classes: int) -> float:
    """ROC AUC of the missingness indicator alone (one-vs-rest, best class), exact on all rows."""
    from sklearn.metrics import roc_auc_score

    codes = pd.factorize(y.astype(object), sort=True)[0]
    best = 0.5
    for k in range(n_classes if n_classes > 2 else 1):
        positive = codes == (k if n_classes > 2 else 1)
        if positive.all() or not positive.any():
            continue
        auc = roc_auc_score(positive, missing.astype(float))
        best = max(best, auc, 1 - auc)
    return round(float(best), 4)


def feature_correlations(frame: pd.DataFrame, roles: pd.DataFrame, seed: int = 42,
                         sample_rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """Spearman rank correlations between numeric, boolean and datetime features (seeded sample).

    Returns a square DataFrame (empty when fewer than two such features).
    """
    usable = [c for c in roles.index if roles.loc[c, "role"] in ("numeric", "boolean", "datetime")]
    sample = _sample(frame[usable], sample_rows, seed)
    numbers = pd.DataFrame({c: _encode(sample[c], roles.loc[c, "base_role"])[0] for c in usable}, index=sample.index)
    if len(usable) < 2:
        return pd.DataFrame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns have no correlation (NaN)
        return numbers.corr(method="spearman").round(3)


def redundant_pairs(frame: pd.DataFrame, roles: pd.DataFrame, threshold: float = 0.9, seed: int = 42,
                    sample_rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """Feature pairs that carry nearly the same information: |Spearman| between numbers or
    Cramér's V between categorical columns at or above ``threshold`` (seeded sample).

    Returns a DataFrame with ``column``, ``other``, ``measure``, ``value``, strongest first.
    """
    rows = []
    corr = feature_correlations(frame, roles, seed=seed, sample_rows=sample_rows)
    for i, a in enumerate(corr.columns):
        for b in corr.columns[i + 1:]:
            if abs(corr.loc[a, b]) >= threshold:
                rows.append({"column": a, "other": b, "measure": "spearman", "value": float(corr.loc[a, b])})
    categorical = [c for c in roles.index if roles.loc[c, "role"] in ("categorical", "boolean")
                   and not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    sample = _sample(frame[categorical], sample_rows, seed)
    codes = {c: pd.factorize(sample[c].astype(object), use_na_sentinel=False)[0] for c in categorical}
    for i, a in enumerate(categorical):
        for b in categorical[i + 1:]:
            v = _cramers_v(codes[a], codes[b])
            if v >= threshold:
                rows.append({"column": a, "other": b, "measure": "cramers_v", "value": round(v, 3)})
    table = pd.DataFrame(rows, columns=["column", "other", "measure", "value"])
    return table.sort_values("value", key=np.abs, ascending=False, ignore_index=True)


# --------------------------------------------------------------------------- leakage

def leakage_suspects(roles: pd.DataFrame, relevance: pd.DataFrame, target: str,
                     keep_columns: Iterable[str] = (), drop_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Columns that may leak the target, each with its evidence; dropped unless in ``keep_columns``.

    Flags features that alone predict the target almost perfectly (single-feature score at or above
    0.98), identifier-like columns, columns whose missingness alone separates the classes, and
    columns whose names say they are known only after the outcome (or contain the target's name).
    Returns a DataFrame indexed by column with ``kind``, ``evidence`` and ``drop``.
    """
    keep, skip = set(keep_columns), set(drop_columns) | {target}
    target_tokens = _tokens(target)
    found: dict[str, list[tuple[str, str]]] = {}
    for name in roles.index:
        if name in skip:
            continue
        if name in relevance.index:
            row = relevance.loc[name]
            score = row["single_feature_score"]
            if not np.isnan(score) and score >= LEAK_SCORE.get(row["score"], 1.0):
                found.setdefault(name, []).append(
                    ("predicts the target alone", f"alone scores {row['score']} {score:.3f} (3-fold CV, one tree)"))
            if not np.isnan(row["missing_auc"]) and row["missing_auc"] >= MISSING_LEAK_AUC:
                found.setdefault(name, []).append(
                    ("known only after the outcome?", f"whether it is missing alone separates the classes "
                                                      f"(ROC AUC {row['missing_auc']:.3f})"))
        if roles.loc[name, "role"] == "identifier":
            found.setdefault(name, []).append(("identifier", roles.loc[name, "evidence"]))
        tokens = _tokens(name)
        after = sorted(tokens & _AFTER_OUTCOME)
        if after:
            found.setdefault(name, []).append(
                ("known only after the outcome?", f"name contains {', '.join(map(repr, after))}"))
        if target_tokens and target_tokens <= tokens:
            found.setdefault(name, []).append(
                ("known only after the outcome?", f"name contains the target's name {target!r}"))
    rows = [{"column": name, "kind": "; ".join(dict.fromkeys(k for k, _ in items)),
             "evidence": "; ".join(e for _, e in items), "drop": name not in keep}
            for name, items in found.items()]
    return pd.DataFrame(rows, columns=["column", "kind", "evidence", "drop"]).set_index("column")


# --------------------------------------------------------------------------- recommendation

def _column_decision(name: str, info: pd.Series, relevance: pd.DataFrame, leakage: pd.DataFrame,
                     keep: set[str], drop: set[str]) -> tuple[str, bool, str]:
    role, base, evidence = info["role"], info["base_role"], info["evidence"]
    if role == "target":
        return "target", True, "the target"
    if name in drop:
        return role, True, f"listed in drop_columns ({evidence})"
    if name in leakage.index and leakage.loc[name, "drop"]:
        return role, True, f"leakage suspect: {leakage.loc[name, 'evidence']}"
    if role == "constant":
        return role, True, evidence
    if name in keep and role in ("identifier", "mostly_missing", "duplicate", "near_constant", "text"):
        usable = base if base != "text" else "high_cardinality"
        return usable, False, f"kept (keep_columns) although {role.replace('_', ' ')}: {evidence}"
    if name in keep and name in leakage.index:
        return role, False, f"kept (keep_columns) although a leakage suspect: {leakage.loc[name, 'evidence']}"
    if role in ("identifier", "mostly_missing", "duplicate"):
        return role, True, evidence
    if role == "near_constant":
        score = relevance["single_feature_score"].get(name, np.nan)
        useful = not np.isnan(score) and score >= (0.55 if relevance.loc[name, "score"] != "r2" else 0.01)
        if useful:
            return base, False, f"{evidence}; kept: alone it scores {score:.2f}"
        return role, True, f"{evidence}; alone it scores {score:.2f}, no signal"
    if role == "text":
        return role, True, f"{evidence}; the baseline has no text features"
    if role == "datetime":
        return role, False, f"{evidence}; the baseline can derive calendar features"
    return role, False, evidence


def _models(task: str, n_rows: int) -> tuple[list[str], dict[str, str]]:
    reasons = {"dummy": "the floor any model must beat",
               "linear": "fast, interpretable, strong when effects are additive",
               "random_forest": "robust non-linear baseline with little tuning",
               "hist_gradient_boosting": "usually the strongest on tables, handles missing values natively",
               "xgboost": "gradient boosting with a Dask interface for data beyond one machine"}
    models = list(MODEL_NAMES)
    if n_rows > 200_000:
        models.remove("random_forest")
        reasons["random_forest"] = f"left out: slow on {n_rows:,} rows, boosting covers it"
    return models, reasons


def recommend(frame: pd.DataFrame, *, target: str, task: str = "auto", primary_metric: str = "auto",
              drop_columns: Iterable[str] = (), keep_columns: Iterable[str] = (), seed: int = 42,
              sample_rows: int = SAMPLE_ROWS, target_info: TargetSummary | None = None,
              roles: pd.DataFrame | None = None, relevance: pd.DataFrame | None = None,
              leakage: pd.DataFrame | None = None, redundancy: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ``explore/eda.json`` payload for ``frame``: task, metric, column roles and drops with
    reasons, leakage suspects and the model families worth trying.

    Computes every piece it is not given. When passing ``target_info``, pass the frame
    ``prepare_target`` returned (rows with a known target).
    """
    drop, keep = set(drop_columns), set(keep_columns)
    for key, names in (("drop_columns", drop), ("keep_columns", keep)):
        missing = sorted(names - set(map(str, frame.columns)))
        if missing:
            raise EdaError(f"{key} names {missing}, not columns of the table; columns: {', '.join(map(str, frame.columns))}.")
    if target_info is None:
        frame, target_info = prepare_target(frame, target, task=task, primary_metric=primary_metric)
    if roles is None:
        roles = column_roles(frame, target=target)
    if relevance is None:
        relevance = associations(frame, target_info, roles, seed=seed, sample_rows=sample_rows)
    if leakage is None:
        leakage = leakage_suspects(roles, relevance, target, keep_columns=keep, drop_columns=drop)
    if redundancy is None:
        redundancy = redundant_pairs(frame, roles, seed=seed, sample_rows=sample_rows)
    columns = {}
    for name, info in roles.iterrows():
        role, dropped, reason = _column_decision(name, info, relevance, leakage, keep, drop)
        columns[name] = {"role": role, "drop": bool(dropped), "reason": reason, "dtype": info["dtype"],
                         "missing_pct": float(info["missing_pct"]), "n_unique": int(info["n_unique"])}
    models, model_reasons = _models(target_info.task, target_info.n_rows)
    ranking = relevance.reset_index()[["column", "mutual_info", "association", "measure", "single_feature_score", "score"]]
    return {
        "target": target, "task": target_info.task, "task_reason": target_info.task_reason,
        "primary_metric": target_info.primary_metric, "metric_reason": target_info.metric_reason,
        "n_rows": target_info.n_rows, "n_rows_missing_target": target_info.n_rows_missing_target,
        "n_cols": int(frame.shape[1]), "classes": target_info.classes,
        "class_counts": ({str(k): int(v) for k, v in target_info.distribution["count"].items()}
                         if target_info.task == "classification" else None),
        "columns": columns,
        "leakage_suspects": [str(c) for c in leakage.index],
        "leakage": {str(c): {"kind": r["kind"], "evidence": r["evidence"], "drop": bool(r["drop"])}
                    for c, r in leakage.iterrows()},
        "redundant_pairs": redundancy.to_dict(orient="records"),
        "feature_ranking": ranking.replace({np.nan: None}).to_dict(orient="records"),
        "recommended_models": models, "model_reasons": model_reasons, "seed": seed,
    }


def write_eda(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``explore/eda.json`` in ``run_dir`` (atomic, with schema_version); return its path."""
    from mlhelpers.artifacts import artifact_path, write_json

    return write_json(artifact_path(run_dir, "eda"), payload)


def columns_table(payload: dict[str, Any]) -> pd.DataFrame:
    """The payload's column decisions as a table: dropped columns first, then features by role."""
    table = pd.DataFrame(payload["columns"]).T[["role", "drop", "reason", "missing_pct", "n_unique"]]
    table.index.name = "column"
    return table.sort_values(["drop", "role"], ascending=[False, True], kind="stable")


def summarize(payload: dict[str, Any]):
    """A short Markdown report of the recommendation (an ``IPython.display.Markdown``)."""
    from IPython.display import Markdown

    columns = payload["columns"]
    features = [c for c, info in columns.items() if not info["drop"]]
    dropped = {c: info["reason"] for c, info in columns.items() if info["drop"] and info["role"] != "target"}
    leaks = [c for c in payload["leakage_suspects"] if payload["leakage"][c]["drop"]]
    kept = [c for c in payload["leakage_suspects"] if not payload["leakage"][c]["drop"]]
    top = [r["column"] for r in payload["feature_ranking"][:3] if r["column"] in features]
    lines = [
        f"**{payload['n_rows']:,} rows** with a known `{payload['target']}`"
        f" ({payload['n_rows_missing_target']:,} dropped for a missing target), {payload['n_cols']} columns.",
        f"- **Task:** {payload['task']} ({payload['task_reason']}).",
        f"- **Primary metric:** `{payload['primary_metric']}` ({payload['metric_reason']}).",
        f"- **Features used:** {len(features)}" + (f"; most informative: {', '.join(f'`{c}`' for c in top)}." if top else "."),
        f"- **Dropped:** {len(dropped)} column(s)" + ("".join(f"\n  - `{c}`: {r}" for c, r in dropped.items()) or "."),
        "- **Leakage suspects dropped:** " + (", ".join(f"`{c}`" for c in leaks) if leaks else "none")
        + (f"; kept because you vouched for them: {', '.join(f'`{c}`' for c in kept)}" if kept else "") + ".",
        f"- **Next step** (02_baseline) cross-validates: {', '.join(payload['recommended_models'])}.",
    ]
    return Markdown("\n".join(lines))


# --------------------------------------------------------------------------- profile report

def write_profile(frame: pd.DataFrame, run_dir: str | Path, *, sample_rows: int = 50_000, seed: int = 42,
                  title: str = "Data profile") -> Path:
    """Write a ydata-profiling report to ``explore/profile.html`` and return its path.

    Small data (at most 20,000 rows and ``sample_rows``): full detail (correlations, missing values,
    duplicates), without the pairwise scatter plots that dominate ydata's run time. Larger data:
    ydata's minimal mode on a seeded sample of ``sample_rows`` rows, so the report never
    dominates the step.
    """
    import contextlib
    import io

    from mlhelpers.artifacts import atomic_path, step_dir

    if sample_rows < 1:
        raise EdaError(f"profile_sample_rows must be positive, got {sample_rows}.")
    small = len(frame) <= min(sample_rows, SMALL_DATA_ROWS)
    data = _sample(frame, sample_rows, seed)
    if small:
        # PNG histograms and no string-length plots: the same detail in about half the time.
        settings: dict[str, Any] = {"explorative": False, "interactions": None, "vars": {"cat": {"length": False}},
                                    "plot": {"image_format": "png", "dpi": 80}}
        subtitle = f"all {len(frame):,} rows, full detail"
    else:
        # Histograms dominate ydata's minimal mode: fewer bins and small PNGs halve its time.
        settings = {"minimal": True, "vars": {"cat": {"length": False}},
                    "plot": {"image_format": "png", "dpi": 60, "histogram": {"bins": 20, "max_bins": 20}}}
        subtitle = (f"minimal mode on a {len(data):,}-row sample of {len(frame):,} rows (seed {seed})"
                    if len(data) < len(frame) else f"all {len(frame):,} rows, minimal mode")
    path = step_dir(run_dir, "explore") / "profile.html"
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from ydata_profiling import ProfileReport

        report = ProfileReport(data, title=f"{title}: {subtitle}", progress_bar=False, **settings)
        html = report.to_html()
    with atomic_path(path) as temp:
        temp.write_text(html, encoding="utf-8")
    return path
