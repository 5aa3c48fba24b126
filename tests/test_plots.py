"""Tests of verigrad.plots: figures have what a reader needs, PNGs have the promised size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.image as mpimg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from verigrad import plots  # noqa: E402


def _texts(fig: Figure) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            parts += [t.get_text() for t in leg.get_texts()]
    return "\n".join(parts)


def _main_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_save_figure_writes_png_of_figsize_times_dpi(tmp_path):
    fig = plots.plot_loss_curves({"a": [3.0, 2.0, 1.0]})
    path = plots.save_figure(fig, tmp_path / "sub" / "loss.png", dpi=50)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.shape[:2] == (round(4.8 * 50), round(6.4 * 50))
    # not a blank image
    assert img[..., :3].std() > 0.01


def test_save_figure_rejects_non_figures_and_bad_dpi(tmp_path):
    with pytest.raises(TypeError, match="Figure"):
        plots.save_figure("not a figure", tmp_path / "x.png")
    with pytest.raises(ValueError, match="dpi"):
        plots.save_figure(plots.plot_loss_curves({"a": [1.0, 0.5]}), tmp_path / "x.png", dpi=0)


def test_loss_curves_labels_baseline_and_divergence():
    curves = {"base": [1.0, 0.5, 0.25], "hot": [1.0, 5.0, np.inf], "cold": [1.0, 0.99, 0.98]}
    fig = plots.plot_loss_curves(curves, baseline="base", title="LR", ax_note="hot diverges")
    ax = _main_axes(fig)[0]
    text = _texts(fig)
    assert "LR" in text and "epoch" in text and "loss" in text
    assert "base (baseline)" in text
    assert "hot: diverged" in text
    assert "hot diverges" in text
    # the diverged curve stops at its last finite point (epoch 2)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["hot: diverged"].get_xdata()) == [1, 2]
    assert list(lines["cold"].get_xdata()) == [1, 2, 3]


def test_loss_curves_log_scale_is_automatic_for_wide_ranges():
    wide = plots.plot_loss_curves({"a": np.logspace(1, -4, 20)})
    narrow = plots.plot_loss_curves({"a": np.linspace(1.0, 0.5, 20)})
    assert _main_axes(wide)[0].get_yscale() == "log"
    assert _main_axes(narrow)[0].get_yscale() == "linear"
    assert "log scale" in _main_axes(wide)[0].get_ylabel()


def test_loss_curves_bad_input():
    with pytest.raises(ValueError, match="at least one curve"):
        plots.plot_loss_curves({})
    with pytest.raises(TypeError, match="curves: expected a mapping.*got int"):
        plots.plot_loss_curves(3)
    with pytest.raises(ValueError, match="baseline"):
        plots.plot_loss_curves({"a": [1.0]}, baseline="b")
    with pytest.raises(ValueError, match=r"curves\['a'\].*1-D"):
        plots.plot_loss_curves({"a": [[1.0, 2.0]]})


def test_loss_curves_from_a_list_or_a_history():
    from verigrad.train import History

    one = plots.plot_loss_curves([3.0, 2.0, 1.5])
    assert [line.get_label() for line in _main_axes(one)[0].get_lines()][:1] == ["loss"]
    hist = History(loss=[2.0, 1.0], val_loss=[2.5, 1.4])
    fig = plots.plot_loss_curves(hist)
    labels = [line.get_label() for line in _main_axes(fig)[0].get_lines()]
    assert "train" in labels and "validation" in labels
    ydata = {line.get_label(): list(line.get_ydata()) for line in _main_axes(fig)[0].get_lines()}
    assert ydata["validation"] == [2.5, 1.4]


class _History:
    def __init__(self):
        self.loss = [1.0, 0.5, 0.3]
        self.val_loss = [1.1, 0.6, 0.4]
        self.metrics = {"accuracy": [0.5, 0.8, 0.9]}


def test_history_curves_and_plot_history():
    series = plots.history_curves(_History())
    assert series == {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.4], "accuracy": [0.5, 0.8, 0.9]}
    fig = plots.plot_history(_History(), title="Run")
    axes = _main_axes(fig)
    assert len(axes) == 2
    assert {ln.get_label() for ln in axes[0].get_lines()} == {"training loss", "validation loss"}
    assert {ln.get_label() for ln in axes[1].get_lines()} == {"training accuracy"}
    assert plots.history_curves([3, 2, 1]) == {"loss": [3.0, 2.0, 1.0]}
    assert plots.history_curves({"loss": [2, 1], "metrics": {"accuracy": [0.5, 1]}}) == {
        "loss": [2.0, 1.0], "accuracy": [0.5, 1.0]}
    with pytest.raises(TypeError, match="history"):
        plots.history_curves(object())
    with pytest.raises(ValueError, match="'loss'"):
        plots.history_curves({"acc": [1.0]})


def test_decision_boundary_regions_follow_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)

    def predict(G):  # scores: class 1 where x1 > 0
        return np.column_stack([-G[:, 0], G[:, 0]])

    fig = plots.plot_decision_boundary(predict, X, y, title="DB", resolution=50)
    ax = _main_axes(fig)[0]
    text = _texts(fig)
    assert "DB" in text and "class 0" in text and "class 1" in text
    assert ax.get_xlabel() and ax.get_ylabel()
    # the axes cover the data with the padding
    assert ax.get_xlim()[0] == pytest.approx(X[:, 0].min() - 0.5)
    # single-column probabilities and label outputs are accepted too
    plots.plot_decision_boundary(lambda G: (G[:, :1] > 0).astype(float), X, y, resolution=20)
    plots.plot_decision_boundary(lambda G: (G[:, 0] > 0).astype(int), X, np.eye(2)[y], resolution=20)


def test_decision_boundary_bad_input():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"X: expected shape \(n_samples, 2\)"):
        plots.plot_decision_boundary(lambda G: G[:, 0], X, np.zeros(5))
    with pytest.raises(ValueError, match="y: expected 5 labels"):
        plots.plot_decision_boundary(lambda G: G[:, 0], np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="predict"):
        plots.plot_decision_boundary(lambda G: np.zeros((len(G), 2, 2)), np.zeros((5, 2)), np.zeros(5))


def test_grad_norms_accepts_both_layouts_and_uses_log_scale():
    by_name = {"W_0": [1.0, 0.1, 0.01], "b_0": [0.5, 0.05, 0.005]}
    per_step = [{"W_0": 1.0, "b_0": 0.5}, {"W_0": 0.1, "b_0": 0.05}, {"W_0": 0.01, "b_0": 0.005}]
    for data in (by_name, per_step):
        fig = plots.plot_grad_norms(data)
        ax = _main_axes(fig)[0]
        assert ax.get_yscale() == "log"
        got = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines()}
        assert got == by_name
    with pytest.raises(TypeError, match="grad_norms"):
        plots.plot_grad_norms(3.0)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_grad_norms({})


def test_layer_norms_bars_and_errors():
    fig = plots.plot_layer_norms({"small": [1e-5, 1e-3, 1e-1], "large": [1e3, 10.0, 1.0]}, title="V/E")
    ax = _main_axes(fig)[0]
    heights = sorted(round(float(np.log10(p.get_height()))) for p in ax.patches)
    assert heights == [-5, -3, -1, 0, 1, 3]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 1", "layer 2", "layer 3"]
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="same number of layers"):
        plots.plot_layer_norms({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="layer_labels"):
        plots.plot_layer_norms({"a": [1.0, 2.0]}, layer_labels=["x"])


def test_error_heatmap_marks_the_worst_entry():
    rng = np.random.default_rng(1)
    num = rng.normal(size=(4, 3))
    ana = num.copy()
    ana[2, 1] += 5.0
    fig = plots.plot_error_heatmap(ana, num, name="W_0", note="one entry wrong")
    text = _texts(fig)
    assert "largest error boxed: (2, 1)" in text
    assert "one entry wrong" in text and "Gradient check of W_0" in text
    assert len(_main_axes(fig)) == 3
    images = [ax.images[0].get_array() for ax in _main_axes(fig)]
    np.testing.assert_array_equal(images[0], ana)
    np.testing.assert_array_equal(images[1], num)
    boxed = plots.plot_error_heatmap(ana, num, name="W_0", worst=(0, 2))
    assert "worst entry boxed: (0, 2)" in _texts(boxed)
    rect = _main_axes(boxed)[2].patches[0]
    assert rect.get_xy() == (1.5, -0.5)
    with pytest.raises(ValueError, match="worst"):
        plots.plot_error_heatmap(ana, num, worst=(4, 0))


def test_error_heatmap_bad_input():
    with pytest.raises(ValueError, match="same shape as analytic"):
        plots.plot_error_heatmap(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty"):
        plots.plot_error_heatmap(np.zeros(0), np.zeros(0))


@settings(max_examples=6, deadline=None)
@given(shape=st.sampled_from([(), (1,), (7,), (3, 5), (16, 2), (2, 3, 4)]), exact=st.booleans(),
       seed=st.integers(0, 2**16))
def test_error_heatmap_any_shape(shape, exact, seed):
    rng = np.random.default_rng(seed)
    num = rng.normal(size=shape)
    ana = num if exact else num + rng.normal(size=shape) * 1e-6
    fig = plots.plot_error_heatmap(ana, num, name="p")
    axes = _main_axes(fig)
    assert len(axes) == 3
    flat_cols = int(np.prod(shape[1:])) if len(shape) >= 2 else (shape[0] if shape else 1)
    assert axes[2].images[0].get_array().shape[1] == flat_cols


def test_loss_curves_clip_runs_that_blow_up():
    curves = {"base": [0.7, 0.3, 0.1], "hot": [0.7, 1e150, 1e250, np.nan]}
    fig = plots.plot_loss_curves(curves, baseline="base")
    fig.canvas.draw()  # ticks and layout must survive huge values
    ax = _main_axes(fig)[0]
    hot = [ln for ln in ax.get_lines() if ln.get_label() == "hot: diverged"][0]
    cap = 0.7 * plots.CLIP_FACTOR
    assert max(hot.get_ydata()) == pytest.approx(cap)
    assert "drawn at the top" in _texts(fig)


def test_error_heatmap_with_unevaluated_entries():
    rng = np.random.default_rng(2)
    ana = rng.normal(size=(4, 5))
    num = ana.copy()
    num[1, :] = np.nan  # not evaluated (sample mode)
    num[2, 3] += 1.0
    fig = plots.plot_error_heatmap(ana, num, name="W_0")
    fig.canvas.draw()
    err_img = _main_axes(fig)[2].images[0]
    assert err_img.get_array().mask[1].all()  # unevaluated row masked
    assert "largest error boxed: (2, 3)" in _texts(fig)
    # the largest error sits at the top of the colour scale
    assert err_img.norm.vmax == pytest.approx(1.0)
    empty = plots.plot_error_heatmap(ana, np.full_like(ana, np.nan), name="W_0")
    assert "no entry evaluated" in _texts(empty)
