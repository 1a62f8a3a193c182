"""How columns relate: each feature to the target, and features to each other.

``associations`` measures each feature against the target (mutual information, rank correlation or
Cramér's V, a single-feature CV score, missingness); ``feature_correlations`` and ``redundant_pairs``
find features that duplicate each other. ``mlhelpers.explore.leakage`` turns the evidence into suspects.
Computed on a seeded sample where exactness adds nothing (``sample_rows``); missingness is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlhelpers.core.tables import seeded_sample
from mlhelpers.explore.roles import parse_dates
from mlhelpers.explore.targets import TargetSummary

__all__ = ["associations", "feature_correlations", "redundant_pairs"]

SAMPLE_ROWS = 20_000        # rows sampled for mutual information, correlations and single-feature scores
EXACT_SPEARMAN_COLUMNS = 100  # above this many numeric features, ranks once instead of once per pair


# --------------------------------------------------------------------------- relevance

def _encode(column: pd.Series, role: str) -> tuple[np.ndarray, bool]:
    """A float array for ``column`` and whether it is discrete (codes) or continuous."""
    if role == "datetime":
        parsed = column if pd.api.types.is_datetime64_any_dtype(column.dtype) else parse_dates(column)
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
    from sklearn import config_context
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
    # Measured (py-spy, AmesHousing's 73 features): scikit-learn's checks of its own parameters, repeated for
    # every fold of every feature, cost about as much as the trees; the values are ours and fixed, so they are
    # checked once by these lines, not 219 times (the data checks stay on)
    with warnings.catch_warnings(), config_context(skip_parameter_validation=True):
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
    sample = seeded_sample(frame, sample_rows, seed)
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
    sample = seeded_sample(frame[usable], sample_rows, seed)
    numbers = pd.DataFrame({c: _encode(sample[c], roles.loc[c, "base_role"])[0] for c in usable}, index=sample.index)
    if len(usable) < 2:
        return pd.DataFrame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns have no correlation (NaN)
        if len(usable) <= EXACT_SPEARMAN_COLUMNS or not numbers.isna().any().any():
            return numbers.corr(method="spearman").round(3)
        return _rank_correlations(numbers).round(3)


def _rank_correlations(numbers: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of each column's ranks over the rows both columns hold, in four matrix products.

    pandas' Spearman re-ranks every pair's common rows: 6.5 minutes for 788 columns with missing values
    (survey: HELPfull, 1,472 x 788). Ranking each column once differs from it only where missing values
    shift the ranks, which an overview of redundant features can afford; without missing values both agree.
    """
    ranks = numbers.rank().to_numpy(dtype=float)
    present = ~np.isnan(ranks)
    held = present.astype(float)
    values = np.where(present, ranks, 0.0)
    pairs = held.T @ held                       # rows both columns hold
    sums = values.T @ held                      # [a, b]: sum of a over the rows b also holds
    squares = (values ** 2).T @ held
    products = values.T @ values
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = products - sums * sums.T / pairs
        spread = squares - sums ** 2 / pairs
        correlation = covariance / np.sqrt(spread * spread.T)
    correlation[pairs < 2] = np.nan
    return pd.DataFrame(np.clip(correlation, -1, 1), index=numbers.columns, columns=numbers.columns)


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
    sample = seeded_sample(frame[categorical], sample_rows, seed)
    codes = {c: pd.factorize(sample[c].astype(object), use_na_sentinel=False)[0] for c in categorical}
    for i, a in enumerate(categorical):
        for b in categorical[i + 1:]:
            v = _cramers_v(codes[a], codes[b])
            if v >= threshold:
                rows.append({"column": a, "other": b, "measure": "cramers_v", "value": round(v, 3)})
    table = pd.DataFrame(rows, columns=["column", "other", "measure", "value"])
    return table.sort_values("value", key=np.abs, ascending=False, ignore_index=True)



