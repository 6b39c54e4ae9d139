"""DrSAE: the discriminative recurrent sparse auto-encoder (Rolfe & LeCun, ICLR 2013).

An encoder that iterates zᵗ⁺¹ = ReLU(Ex + Szᵗ − b) T times, a linear decoder D and a linear
classifier C. This page shows its units as part-units (Eᵢ close to Dᵢ, pen strokes) and
categorical units (Eᵢ far from Dᵢ, strong recurrent input and classifier weights, whole-digit
decoders), one digit settling over the iterations (a test digit, one drawn on a canvas or an
uploaded picture), the test error, a LISTA view (code error against iterations of ISTA, FISTA
and LISTA on one dictionary), and retrains in the background.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui
from app_ui import drsae as dv
from app_ui.widgets import fmt, plain
from sparse_models.config import ConfigError
from sparse_models.plotting import (
    class_bar_figure,
    code_bars_figure,
    code_error_figure,
    confusion_figure,
    filter_figure,
    gallery_figure,
    iterations_heatmap_figure,
    unit_scatter_figure,
)

SCATTER_KEY = "drsae_scatter"
UNIT_KEY = "drsae_unit"
GALLERY_MAX = 64  # part-unit decoders shown
PER_CLASS = 6  # categorical decoders shown beside each class average
DRAW = "Draw one"
CANVAS_SIZE = 280  # px: ten canvas pixels to each of MNIST's 28
CANVAS_STROKE = 20  # px: about two of MNIST's pixels once fitted, as its pen strokes
CANVAS_CLEARS_KEY = "drsae_canvas_clears"


# --- the units -------------------------------------------------------------------------------


def _pick_unit_from_click() -> None:
    event = st.session_state.get(SCATTER_KEY)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        if p.get("curve_number") == 0:
            idx = p.get("point_index", p.get("point_number"))
            if idx is not None:
                st.session_state[UNIT_KEY] = int(idx)
                return


def numbers_ui(v: dict, part: np.ndarray, cat: np.ndarray, dead: np.ndarray, T: int) -> None:
    c = st.columns(5)
    c[0].metric("Test error", f"{100 * v['error']:.2f} %" if v["error"] is not None else "—",
                help=f"Misclassified {v['split']} inputs, all {v['n_eval']} of them (paper, "
                     f"full MNIST: 1.08 % with 400 units, T = 11).")
    c[1].metric("Part-units", int((part & ~dead).sum()), help="Units that fire with the "
                "angle between Eᵢ and Dᵢ below the part threshold: they act as in ISTA; their "
                "decoders are pen strokes.")
    c[2].metric("Categorical units", int((cat & ~dead).sum()),
                help="Units that fire with the angle above the categorical threshold: strong "
                     "recurrent input and "
                     "classifier weights; their decoders are whole-digit prototypes.")
    c[3].metric("Active units per input", fmt(v["l0"]),
                help=f"Mean over the first {v['unit_samples']} {v['split']} inputs, at t = T.")
    c[4].metric("Iterations T", T)
    if dead.any():
        st.caption(f"{int(dead.sum())} of {dead.size} units never fire on the first "
                   f"{v['unit_samples']} {v['split']} inputs: no gradient reaches them, so "
                   f"they keep their initial E ∥ D (angle near 0, as a part-unit's). They are "
                   f"not counted in either kind, are crosses in the scatter and are left out "
                   f"of the galleries.")


def thresholds_ui(cfg) -> tuple[float, float]:
    lo, hi = st.slider(
        "Part / categorical angle thresholds (rad)", 0.0, 1.6,
        (float(cfg.part_angle), float(cfg.categorical_angle)), 0.05, key="drsae_thresholds",
        help="Units whose encoder row and decoder column are closer than the first value are "
             "part-units; farther than the second, categorical units (paper: 0.5 and 0.7, "
             "called heuristic). View only: the run's own settings are "
             f"{cfg.part_angle:g} and {cfg.categorical_angle:g}.")
    return float(lo), float(hi)


def unit_detail_ui(v: dict, unit: int, kinds: list[str]) -> None:
    kind = (f"{kinds[unit]} unit" if v["activity"][unit] > 0
            else f"never fires (by its angle, {kinds[unit]})")
    st.markdown(f"**Unit {unit}** · {kind} · angle {v['angle'][unit]:.2f} rad")
    c1, c2 = st.columns(2)
    c1.plotly_chart(filter_figure(v["E"][unit], title="encoder row Eᵢ", height=220),
                    key="drsae_unit_E")
    c2.plotly_chart(filter_figure(v["D"][unit], title="decoder column Dᵢ", height=220),
                    key="drsae_unit_D")
    w = v["C"][:, unit]
    st.plotly_chart(class_bar_figure(w, title="classifier weights Cᵢ (to each class)",
                                     y_label="weight", highlight=int(np.argmax(w)),
                                     height=230), key="drsae_unit_C")
    st.caption(f"‖(S − I)ᵢ‖ = {v['s_norm'][unit]:.3g} · ‖Cᵢ‖ = {v['c_norm'][unit]:.3g} · "
               f"active on {100 * v['activity'][unit]:.1f} % of the inputs at t = T · off at "
               f"t = 1 and on at t = 2 on {100 * v['late_onset'][unit]:.1f} %.")


def units_ui(v: dict, lo: float, hi: float, kinds: list[str], dead: np.ndarray) -> None:
    n = len(v["angle"])
    left, right = st.columns([3, 2])
    with right:
        if UNIT_KEY not in st.session_state:
            st.session_state[UNIT_KEY] = int(np.argmax(v["c_norm"]))
        unit = int(st.number_input("Unit", 0, n - 1, key=UNIT_KEY, bind="query-params",
                                   help="Or click a point in the scatter."))
        unit_detail_ui(v, unit, kinds)
    with left:
        fig = unit_scatter_figure(
            v["angle"], v["s_norm"], v["c_norm"], lo, hi, selected=unit,
            hover={"late onset (%)": 100 * v["late_onset"], "active (%)": 100 * v["activity"]},
            dead=dead,
            title="Units: angle(Eᵢ, Dᵢ) against recurrent input, coloured by ‖Cᵢ‖")
        st.plotly_chart(fig, key=SCATTER_KEY, on_select=_pick_unit_from_click,
                        selection_mode="points")
        st.caption("Each point is a unit. Part-units (left of the blue line) have encoder ≈ "
                   "decoder, as in ISTA; categorical units (right of the red line) are driven "
                   "by the other units through S and weigh heavily in the classifier (bright). "
                   "Crosses: units that never fire. Click a unit to inspect it.")


def galleries_ui(v: dict, part: np.ndarray, cat: np.ndarray, dead: np.ndarray) -> None:
    left, right = st.columns(2)
    with left:
        idx = np.flatnonzero(part & ~dead)
        st.markdown(f"**Part-units** ({idx.size} that fire)")
        idx = idx[np.argsort(-v["activity"][idx], kind="stable")][:GALLERY_MAX]
        if idx.size == 0:
            live = v["activity"] > 0
            closest = f"{v['angle'][live].min():.2f} rad" if live.any() else "none fires"
            st.caption(f"No part-unit that fires, at this threshold: of the units that fire, "
                       f"the smallest angle between Eᵢ and Dᵢ is {closest}. Raise the part "
                       f"threshold above it to see the most ISTA-like units.")
        else:
            st.plotly_chart(gallery_figure(v["D"][idx], [f"unit {i}: active on "
                                                         f"{100 * v['activity'][i]:.1f} %"
                                                         for i in idx], cols=8),
                            key="drsae_part_gallery")
            st.caption("Decoder columns, the most active first"
                       + (f" ({GALLERY_MAX} shown)" if idx.size == GALLERY_MAX else "")
                       + ". The paper finds strokes and parts of digits here. They come "
                         "with long unsupervised pre-training (the shipped run has the "
                         "paper's 100 epochs); the default's 15 give noisier partial digits, "
                         "and a unit that fires on only a few inputs keeps a noisy, barely "
                         "trained decoder.")
    with right:
        idx = np.flatnonzero(cat & ~dead)
        st.markdown(f"**Categorical units** ({idx.size} that fire), by the class they vote for")
        if idx.size == 0:
            st.caption("No categorical unit that fires, at this threshold.")
        elif v["class_avg"] is None:
            st.caption("The data has no labels: no class averages to compare with.")
        else:
            votes = v["C"][:, idx].argmax(0)
            k_classes = v["class_avg"].shape[0]
            h, w = v["D"].shape[1:]
            cells, labels = [], []
            for k in range(k_classes):
                mine = idx[votes == k]
                mine = mine[np.argsort(-v["c_norm"][mine], kind="stable")][:PER_CLASS]
                cells.append(v["class_avg"][k])
                labels.append(f"average training digit {k}")
                for u in mine:
                    cells.append(v["D"][u])
                    labels.append(f"unit {u} → class {k} (‖Cᵢ‖ = {v['c_norm'][u]:.2f})")
                for _ in range(PER_CLASS - mine.size):
                    cells.append(np.full((h, w), np.nan))
                    labels.append(f"no more categorical units for class {k}")
            st.plotly_chart(gallery_figure(np.stack(cells), labels, cols=PER_CLASS + 1),
                            key="drsae_cat_gallery")
            st.caption(f"One row per class: first the mean training digit of the class, then "
                       f"the decoder columns of up to {PER_CLASS} categorical units whose "
                       f"classifier weights favour it (strongest ‖Cᵢ‖ first): whole-digit "
                       f"prototypes in a trained DrSAE.")


# --- one digit settling ---------------------------------------------------------------------


def draw_ui(ref: app_ui.RunRef) -> dict | None:
    """A digit drawn with the mouse or a finger, settled (`dv.settle`); None with a hint while
    the canvas is blank."""
    from streamlit_drawable_canvas import st_canvas  # a component: only under Streamlit

    st.session_state.setdefault(CANVAS_CLEARS_KEY, 0)
    left, right = st.columns([1, 2])
    with left:
        st.caption("Draw one digit, large, with the mouse or a finger (hover over the box "
                   "for undo).")
        # A fresh key is a fresh, empty canvas: the sure way to clear it.
        canvas = st_canvas(stroke_width=CANVAS_STROKE, stroke_color="#fff",
                           background_color="#000", height=CANVAS_SIZE, width=CANVAS_SIZE,
                           drawing_mode="freedraw", return_image_data=True,
                           key=f"drsae_canvas_{st.session_state[CANVAS_CLEARS_KEY]}")
        st.button("Clear", key="drsae_canvas_clear", on_click=_clear_canvas,
                  icon=":material/ink_eraser:")
    run = ref.load()
    shape = tuple(run.model.input_shape[-2:])
    try:
        x, _ = dv.prepare_drawing(canvas.image_data, shape, run.dataset().x)
    except dv.UploadError as exc:
        right.info(plain(str(exc)))
        return None
    right.caption("Drawn light on dark, as MNIST's digits are; it is cropped to the ink, "
                  "fitted and centred as the run's digits are, and settles below. Draw over "
                  "it to change it, or Clear to start again.")
    return {**dv.settle(run.model, x), "x": x.reshape(shape), "label": None,
            "what": "Your drawing"}


def _clear_canvas() -> None:
    st.session_state[CANVAS_CLEARS_KEY] = st.session_state.get(CANVAS_CLEARS_KEY, 0) + 1


def input_ui(ref: app_ui.RunRef) -> dict | None:
    """The chosen input settled over the iterations (`dv.settle`), or None with a message."""
    n, split = dv.eval_size(ref)
    source = st.radio("Input", [f"A {split} digit", DRAW, "Upload a picture"],
                      horizontal=True, key="drsae_source")
    if source == DRAW:
        return draw_ui(ref)
    if source.startswith("Upload"):
        up = st.file_uploader("A PNG or JPG of one digit", type=["png", "jpg", "jpeg"],
                              key="drsae_upload",
                              help="Dark ink on paper or light on dark; it is cropped to the "
                                   "ink, fitted and centred as the run's digits are.")
        if up is None:
            st.caption("Upload a picture of one handwritten digit to watch the code settle.")
            return None
        run = ref.load()
        shape = tuple(run.model.input_shape[-2:])
        try:
            x, picture = dv.prepare_upload(up.getvalue(), up.name, shape, run.dataset().x)
        except dv.UploadError as exc:
            st.error(plain(str(exc)))
            return None
        s = dv.settle(run.model, x)
        return {**s, "x": x.reshape(shape), "label": None, "what": plain(up.name)}
    index = int(st.number_input(f"{split.capitalize()} digit number", 0, n - 1, 0, 1,
                                key="drsae_digit", bind="query-params"))
    s = dv.settle_eval_input(ref.path, ref.stamp, index)
    return {**s, "what": f"{split} digit {index}"}


def settle_ui(s: dict, kinds: list[str], T: int) -> None:
    t = int(st.slider("Iteration t", 1, T, T, key="drsae_t", bind="query-params",
                      help="The encoder's code after t of its T iterations (t = 1: one "
                           "feed-forward step, ReLU(Ex − b)).")) if T > 1 else 1
    if T == 1:
        st.caption("This run has one iteration (T = 1): its code does not change.")
    z = s["codes"][t - 1]
    active = np.flatnonzero(z > 0)
    probs = s["probs"][t - 1]
    guess = int(np.argmax(probs))
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.plotly_chart(filter_figure(s["x"], title="input", height=230), key="drsae_input")
    c2.plotly_chart(filter_figure(s["recon"][t - 1], title=f"reconstruction D z at t = {t}",
                                  height=230), key="drsae_recon")
    c3.plotly_chart(class_bar_figure(probs, title=f"class probabilities at t = {t}",
                                     y_label="probability", highlight=guess, y_range=(0, 1),
                                     height=230), key="drsae_probs")
    label = f"; its label is {s['label']}" if s.get("label") is not None else ""
    st.markdown(f"{s['what']}: at t = {t}, **{active.size} active units**, classified as "
                f"**{guess}** ({100 * probs[guess]:.0f} %){label}.")
    ever = np.flatnonzero((s["codes"] > 0).any(0))
    if ever.size == 0:
        st.info("No unit is active on this input at any iteration: its code is all zero.")
        return
    order = sorted(ever, key=lambda u: ({"part": 0, "between": 1, "categorical": 2}[kinds[u]],
                                        int(u)))
    c1, c2 = st.columns(2)
    c1.plotly_chart(code_bars_figure(z[order], np.asarray(order), [kinds[u] for u in order],
                                     title=f"code at t = {t} (units active at any t)",
                                     y_max=float(s["codes"].max()) * 1.05),
                    key="drsae_code")
    c2.plotly_chart(iterations_heatmap_figure(s["codes"][:, order], np.asarray(order), t,
                                              title="code after each iteration"),
                    key="drsae_iterations")
    first = {u: int(np.flatnonzero(s["codes"][:, u] > 0)[0]) + 1 for u in ever}
    late = [u for u in ever if first[u] >= 2]
    cats_late = sum(1 for u in late if kinds[u] == "categorical")
    st.caption(f"{len(late)} of the {ever.size} units ever active switch on only at t ≥ 2 "
               f"({cats_late} of them categorical): they need the others' input through S.")


# --- LISTA ----------------------------------------------------------------------------------


def curves_ui(ref: app_ui.RunRef, lista: app_ui.RunRef | None) -> None:
    """Code error against iterations: ISTA and FISTA on the dictionary (and the LISTA run's T
    steps when given)."""
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    n_iter = int(c1.select_slider("ISTA / FISTA iterations", [20, 50, 100, 200, 500], 100,
                                  key="drsae_curve_iters"))
    tuned = c2.toggle("FISTA with a tuned threshold too", False, key="drsae_curve_tuned",
                      help="FISTA's shrinkage tuned for each iteration count (0.25–4 × λ/L, "
                           "the best on these inputs): the fair baseline for an unrolled "
                           "encoder, since λ/L is far from best after few iterations.")
    src = lista or ref
    c = dv.code_error(src.path, src.stamp, n_iter, bool(tuned))
    curves = {"ISTA": c["ista"], "FISTA": c["fista"]}
    if "fista_tuned" in c:
        curves["FISTA, tuned threshold"] = c["fista_tuned"]
    if "lista" in c:
        curves[f"LISTA (T = {c['T']})"] = c["lista"]
    st.plotly_chart(code_error_figure(curves, title=f"Code error on {c['samples']} held-out "
                                                    f"inputs (λ = {c['lam']:g}"
                                                    f"{', z ≥ 0' if c['positive'] else ''})"),
                    key="drsae_curves" if lista is None else f"drsae_curves_{lista.name}")
    if "lista" in c:
        final = float(c["lista"][-1])
        ni = dv.matching_iterations(c["ista"], final)
        nf = dv.matching_iterations(c["fista"], final)
        say = lambda k, name: (f"{name} needs {k} iterations" if k is not None  # noqa: E731
                               else f"{name} does not get there in {n_iter} iterations")
        k_tuned = dv.matching_iterations(c["fista_tuned"], final) if "fista_tuned" in c else None
        tuned_say = (f"; {say(k_tuned, 'FISTA with a tuned threshold')}."
                     if "fista_tuned" in c else
                     ". These baselines use the untuned threshold λ/L: switch on the tuned one "
                     "for the fair comparison.")
        st.caption(f"LISTA reaches a code error of {final:.3g} in {c['T']} steps; "
                   f"{say(nf, 'FISTA')} and {say(ni, 'ISTA')} to match it (the paper: about "
                   f"10× fewer){tuned_say}")
    else:
        st.caption("z* is the lasso's optimum on this dictionary (FISTA to convergence); "
                   "ISTA and FISTA start from z = 0 with the step 1/L.")


def lista_section_ui(ref: app_ui.RunRef, model: str) -> None:
    if model == dv.LISTA:
        teacher = dv.teacher_ref(ref)
        cfg = ref.load().config.model_config
        who = (f"the dictionary of {teacher.name}" if teacher is not None else
               f"the teacher {cfg.teacher}" if cfg.teacher else "a random dictionary")
        st.caption(plain(f"{ref.name} is a LISTA run (T = {cfg.n_iter}) trained to give the "
                         f"optimal sparse codes of {who}."))
        curves_ui(ref, ref)
        return
    listas = dv.lista_runs_for(ref)
    if listas:
        names = [r.name for r in listas]
        name = st.selectbox("LISTA run on this dictionary", names, key="drsae_lista")
        curves_ui(ref, listas[names.index(name)])
    else:
        st.caption(plain(f"No LISTA run has learned {ref.name}'s dictionary yet: here are "
                         f"ISTA and FISTA on its decoder D alone. Train one below to add "
                         f"LISTA's curve."))
        curves_ui(ref, None)
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    T = c[0].number_input("LISTA iterations T", 1, 20, 3, key="drsae_lista_T")
    steps = c[1].number_input("LISTA steps", 1, 100_000, dv.lista_default_steps(),
                              key="drsae_lista_steps")
    name = c[2].text_input("LISTA run name (optional)", key="drsae_lista_name",
                           placeholder="lista-<time>")
    config = None
    try:
        config = dv.lista_config(ref, int(T), int(steps))
    except ConfigError as exc:
        st.error(plain(str(exc)))
    st.button("Train LISTA on this dictionary", key="drsae_lista_train",
              disabled=config is None, on_click=dv.start_job, args=(config, name, "LISTA"))


# --- retraining -----------------------------------------------------------------------------


def retrain_ui(ref: app_ui.RunRef) -> None:
    run = ref.load()
    m, tr = run.config.model_config, run.config.train
    c = st.columns(4)
    units = c[0].number_input("Units", 1, 4096, int(m.n_units), key="drsae_re_units",
                              help="Code units N (paper: 400).")
    T = c[1].number_input("Iterations T", 1, 100, int(m.n_iter), key="drsae_re_T",
                          help="Unrolled encoder iterations (paper: 11).")
    lam = c[2].number_input("λ", 0.0, 10.0, float(m.lam), 0.01, format="%.3f",
                            key="drsae_re_lam", help="Weight of the L1 penalty on the code.")
    steps = c[3].number_input("Steps", 1, 10_000_000, int(tr.steps), key="drsae_re_steps",
                              help=f"Optimiser steps of {tr.batch_size} inputs each.")
    c = st.columns(4, vertical_alignment="bottom")
    pretrain = c[0].toggle("Unsupervised pre-training", bool(m.pretrain),
                           key="drsae_re_pretrain",
                           help="First reconstruction + L1 only, then the classification "
                                "loss joins (the paper does).")
    pre_steps = c[1].number_input("Pre-training steps", 0, 10_000_000, int(m.pretrain_steps),
                                  key="drsae_re_pre_steps", disabled=not pretrain)
    name = c[2].text_input("Run name (optional)", key="drsae_re_name",
                           placeholder="drsae-<time>")
    config = None
    try:
        config = dv.retrain_config(ref, int(units), int(T), float(lam), int(steps),
                                   bool(pretrain), int(pre_steps))
        n_train = len(run.dataset())
        ep = dv.epochs(int(steps), int(tr.batch_size), n_train)
        pre_ep = dv.epochs(int(pre_steps), int(tr.batch_size), n_train)
        st.caption(plain(f"These settings make: "
                         f"{config.model_cls.summarize_config(config.model_config)}, "
                         f"{int(steps)} steps ≈ {ep:.3g} epochs of {n_train} inputs"
                         + (f" (the first {int(pre_steps)} ≈ {pre_ep:.3g} epochs "
                            f"unsupervised)" if pretrain else " (no pre-training)")
                         + f", on {config.data.source} data as {ref.name}, from scratch."))
    except ConfigError as exc:
        st.error(plain(str(exc)))
    c[3].button("Train this DrSAE", key="drsae_retrain", type="primary",
                disabled=config is None, on_click=dv.start_job, args=(config, name, "DrSAE"))


# --- the page -------------------------------------------------------------------------------


st.title("DrSAE")
st.caption("Discriminative recurrent sparse auto-encoder (Rolfe & LeCun, ICLR 2013): "
           "zᵗ⁺¹ = ReLU(Ex + Szᵗ − b) for T iterations, a linear decoder D and a classifier C.")
ref = app_ui.require_run()
msg = st.session_state.pop(dv.MESSAGE_KEY, None)
if msg is not None:
    (st.success if msg[0] == "success" else st.error)(plain(msg[1]))

model = dv.model_of(ref)
if model == dv.LISTA:
    st.subheader("LISTA: code error against iterations")
    lista_section_ui(ref, model)
    st.stop()
if model != dv.DRSAE:
    st.info(plain(dv.not_drsae_message(ref)) + " Train one on the Train page (model "
            "*drsae*), or pick a DrSAE run in the sidebar.")
    others = [r for r in app_ui.all_runs() if r.model == dv.DRSAE and r.state == "completed"]
    if others:
        st.button(f"Show the DrSAE run {others[0].name}", key="drsae_show_other",
                  on_click=app_ui.select_run, args=(others[0].name,))
    st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

run = ref.load()
cfg = run.config.model_config
v = dv.units_view(ref.path, ref.stamp)
if v["notice"]:
    st.info(plain(v["notice"]))
    if v["data_notice_now"] and v["data_notice_now"] != v["notice"]:
        st.caption(plain(f"Evaluated now on: {v['data_notice_now']}"))

lo, hi = thresholds_ui(cfg)
kinds = dv.kind_names(v["angle"], lo, hi)
part = np.array([k == "part" for k in kinds])
cat = np.array([k == "categorical" for k in kinds])
dead = v["activity"] <= 0
numbers_ui(v, part, cat, dead, int(cfg.n_iter))

st.subheader("Units")
units_ui(v, lo, hi, kinds, dead)

st.subheader("Decoders of the two kinds")
galleries_ui(v, part, cat, dead)

st.subheader("Watch a digit settle")
s = input_ui(ref)
if s is not None:
    settle_ui(s, kinds, int(cfg.n_iter))

st.subheader("Accuracy")
if v["confusion"] is None:
    st.caption("This run's data has no labels: no test error to show.")
else:
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(confusion_figure(v["confusion"], title=f"Confusion matrix on the "
                                                           f"{v['n_eval']} {v['split']} inputs"),
                    key="drsae_confusion")
    with c2:
        st.markdown(f"**{100 * v['error']:.2f} %** of the {v['n_eval']} {v['split']} inputs "
                    f"misclassified ({int(round(v['error'] * v['n_eval']))} digits).")
        worst = v["confusion"].astype(float)
        np.fill_diagonal(worst, 0)
        i, j = np.unravel_index(int(np.argmax(worst)), worst.shape)
        if worst[i, j] > 0:
            st.caption(f"The most frequent mistake: {int(worst[i, j])} {i}s taken for {j}s.")
        st.caption("Rows are the true classes, columns the predicted ones; the colour is the "
                   "share of each row.")

st.subheader("LISTA: code error against iterations")
lista_section_ui(ref, model)

st.subheader("Retrain a DrSAE")
st.caption("Starts from scratch with the run's other settings; training runs in the "
           "background, like on the Train page.")
retrain_ui(ref)
