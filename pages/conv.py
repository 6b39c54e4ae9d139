"""Convolutional: a convolutional auto-encoder with L2 pooling as its group sparsity, and a
second layer stacked on it (Kavukcuoglu et al., NIPS 2010).

This page shows a conv run's filters (a stacked run's layer-2 features as the image patches
that excite each map most, beside its frozen layer 1's filters), the feature maps and L2-pooled
maps of an image of the user's choice, the measured invariance of pooled against unpooled units
(phase, small shifts, small rotations), and retrains or stacks a layer in the background.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui import conv as cv
from app_ui.widgets import fmt, plain
from sparse_models.config import ConfigError
from sparse_models.data.images import available_images
from sparse_models.plotting import (
    filter_figure,
    filter_grid_figure,
    gallery_figure,
    invariance_figure,
    maps_figure,
)

SOURCES = ("A bundled photograph", "Upload a picture")
KINDS = {"phase": ("phase of its best grating (rad)", "Phase"),
         "translation": ("shift of the crop (dy, dx) px", "Translation"),
         "rotation": ("rotation of its best grating (°)", "Rotation")}


def numbers_ui(ref: app_ui.RunRef, v: dict) -> None:
    c = ref.load().config.model_config
    # The run's report: the same numbers as Compare and `analyze` show.
    s = analysis.summary(ref.path, ref.stamp)
    cols = st.columns(5 if c.stacked else 4)
    cols[0].metric("Feature maps K", c.maps)
    cols[1].metric("Filter size", f"{c.kernel}×{c.kernel}")
    cols[2].metric("Pools", f"{c.maps // c.pool_maps} × {c.pool_size}×{c.pool_size}/"
                            f"{c.pool_stride}",
                   help=f"{c.pool_maps} map(s) per pool × a {c.pool_size}×{c.pool_size} window "
                        f"of positions, every {c.pool_stride} positions.")
    cols[3].metric("Explained variance", fmt(s["explained_variance"]),
                   help="Of the images, by the run's analysis (as on Compare)"
                        + (": a stacked layer's code drawn back through layer 1's decoder, an "
                           "approximate top-down path." if c.stacked else "."))
    if c.stacked:
        cols[4].metric("EV of layer 1's pooled maps", fmt(s["layer_explained_variance"]),
                       help="How well this layer reconstructs its own input, the frozen layer "
                            "1's pooled maps.")


def layer1_filters_ui(ref: app_ui.RunRef, v: dict) -> None:
    left, right = st.columns(2)
    with left:
        st.plotly_chart(filter_grid_figure(v["decoder"], v["grid"], title="Decoder filters D",
                                           height=420), key="conv_decoder")
    with right:
        st.plotly_chart(filter_grid_figure(v["encoder"], v["grid"], title="Encoder filters W",
                                           height=420), key="conv_encoder")
    st.caption("Each tile is one map's filter, scaled to its own largest |value| (grey is 0). "
               "The decoder filters draw the image back from the maps; the encoder filters "
               "detect: convolutional training gives edges and, besides them, centre-"
               "surrounds, corners and gratings (Kavukcuoglu et al. 2010).")


def layer2_filters_ui(ref: app_ui.RunRef, v: dict) -> None:
    name, there = cv.layer1_name(ref)
    K, n = v["patches"].shape[:2]
    labels = [f"map {k}, patch {j + 1}: z = {v['responses'][k, j]:.3g}" for k in range(K)
              for j in range(n)]
    left, right = st.columns([3, 2])
    with left:
        field = v["patches"].shape[-1]
        st.plotly_chart(gallery_figure(v["patches"].reshape(K * n, field, field), labels,
                                       cols=n, width_px=560,
                                       title="Layer 2: the patches that excite each map most"),
                        key="conv_layer2")
        st.caption(f"One row per layer-2 map: the {n} {field}×{field} patches of the first "
                   f"{v['n_patch_images']} training crops on which it responds most, largest "
                   f"first (a layer-2 filter acts on layer 1's pooled maps, so it cannot be "
                   f"drawn as pixels; these show what it detects).")
    with right:
        l1 = v["layer1"]
        st.plotly_chart(filter_grid_figure(l1, cv._grid(len(l1)), height=420,
                                           title="Layer 1 (frozen): encoder filters"),
                        key="conv_layer1")
        st.caption(f"Copied from {name} when this run was made and frozen while layer 2 "
                   f"trained; this run's own weights hold them"
                   + ("." if there else f" (the folder {name} is gone)."))


def image_ui(ref: app_ui.RunRef) -> tuple[np.ndarray | None, str]:
    """The chosen image prepared as the run's data (`cv.prepare`), and its name; (None, "")
    when there is none yet or an upload is refused (the error is shown)."""
    style = cv.data_style(ref)
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    source = c1.radio("Image", SOURCES, key="conv_source", horizontal=True)
    min_side = cv.min_image_side(ref)
    if source == SOURCES[0]:
        names = available_images()
        run_images = list(getattr(ref.load().config.data, "images", ()) or ())
        default = run_images[0] if run_images and run_images[0] in names else names[0]
        if st.session_state.get("conv_image") not in names:
            st.session_state["conv_image"] = default
        name = c2.selectbox("Photograph", names, key="conv_image", bind="query-params")
        img = cv.bundled_image(name, style)
    else:
        up = c2.file_uploader("A PNG or JPG photograph", type=None, key="conv_upload",
                              help="Made grey, shrunk and whitened as the run's images were.")
        if up is None:
            st.info("Upload a picture to see its feature maps.")
            return None, ""
        name = up.name
        try:
            img = cv.uploaded_image(up.getvalue(), up.name, style, min_side)
        except cv.UploadError as exc:
            st.error(plain(str(exc)))
            return None, ""
    top = max(min(img.shape), min_side)
    side = int(c3.number_input("Window (px)", min_side, max(top, min_side),
                               min(96, top), 8, key="conv_window",
                               help="The centred square of the prepared image the maps are "
                                    "computed on."))
    prep = [f"downscaled ×{style['downscale']}", "whitened" if style["whitening"] ==
            "olshausen" else "standardised"]
    if style["contrast"] == "lcn":
        prep.append(f"locally contrast-normalised (σ = {style['lcn_sigma']:g} px)")
    st.caption(plain(f"{name}: {img.shape[1]}×{img.shape[0]} px after the run's preparation "
                     f"({', '.join(prep)}, scaled as its data set); the centred "
                     f"{min(side, img.shape[1])}×{min(side, img.shape[0])} window."))
    return cv.centre_window(img, side), name


def maps_ui(ref: app_ui.RunRef, image: np.ndarray, name: str) -> None:
    c = ref.load().config.model_config
    m = cv.maps_of(ref.path, ref.stamp, image)
    maps, pooled = m["maps"], m["pooled"]
    cols = int(np.ceil(np.sqrt(len(maps))))
    a, b, d = st.columns([2, 3, 3])
    with a:
        st.plotly_chart(filter_figure(image, title=f"Input: {name}", height=300),
                        key="conv_input")
    with b:
        st.plotly_chart(maps_figure(maps, [f"map {k}: max z = {maps[k].max():.3g}"
                                           for k in range(len(maps))], cols=cols,
                                    title=f"Feature maps z ({len(maps)})"), key="conv_maps")
    with d:
        pc = int(np.ceil(np.sqrt(len(pooled))))
        st.plotly_chart(maps_figure(pooled, [f"pool {j}: max = {pooled[j].max():.3g}"
                                             for j in range(len(pooled))], cols=pc,
                                    title=f"L2-pooled maps ({len(pooled)})"),
                        key="conv_pooled")
    silent = int((maps.reshape(len(maps), -1).max(1) <= 0).sum())
    st.caption(f"Each map from 0 (dark) to its own largest value (bright){' — ' + str(silent) + ' map(s) are silent on this image' if silent else ''}. "
               f"{'Layer-2 maps, computed on layer 1’s pooled maps of the image. ' if c.stacked else ''}"
               f"A pooled map is the square root of the summed squares of {c.pool_maps} map(s) "
               f"over {c.pool_size}×{c.pool_size} positions every {c.pool_stride}: smoother "
               f"and coarser, it keeps where an edge is but not its exact phase.")


def invariance_ui(ref: app_ui.RunRef) -> None:
    v = cv.invariance_view(ref.path, ref.stamp)
    s = v["summary"]
    cols = st.columns(3)
    for col, (kind, (_, label)) in zip(cols, KINDS.items(), strict=True):
        ratio = s.get(f"{kind}_invariance_ratio")
        u, p = s.get(f"{kind}_modulation_unpooled"), s.get(f"{kind}_modulation_pooled")
        col.metric(f"{label} invariance ratio", fmt(ratio),
                   delta=(f"pooled {fmt(p)} / unpooled {fmt(u)}" if ratio is not None
                          else None), delta_color="off", delta_arrow="off",
                   help="Mean modulation (max − min)/(max + min) of the live pooled units over "
                        "that of the unpooled ones: below 1, pooling made the response more "
                        "invariant; near 0, a pooled unit keeps its response (a complex cell).")
    figs = st.columns(3)
    for col, (kind, (x_title, label)) in zip(figs, KINDS.items(), strict=True):
        u, p = v["sweeps"].get(f"{kind}_unpooled"), v["sweeps"].get(f"{kind}_pooled")
        with col:
            if u is None or p is None:
                st.info(plain(f"No translation sweep: {v['why_no_translation']}."))
                continue
            xs = u["xs"]
            text = cv.shift_labels() if kind == "translation" else None
            st.plotly_chart(invariance_figure(
                xs, {"unpooled": u["curves"], "pooled": p["curves"]},
                live={"unpooled": u["live"], "pooled": p["live"]}, x_title=x_title,
                x_text=text, title=label),
                key=f"conv_inv_{kind}")
    st.caption(f"Units at the centre of a {v['size']}×{v['size']} image. Phase: each unit's "
               f"best grating (orientation and frequency) as its phase runs over a period. "
               f"Translation: the first {cv.SWEEP_IMAGES} training crops shifted by up to "
               f"{cv.MAX_SHIFT} px each way, averaged over the quarter that drives each unit "
               f"most. Rotation: the best grating turned by up to 20°, averaged over phase. "
               f"Thin lines are units (live ones only), each divided by its own largest "
               f"response; thick lines their mean.")


def retrain_ui(ref: app_ui.RunRef) -> None:
    run = ref.load()
    m = run.config.model_config
    c = st.columns(5)
    maps = c[0].number_input("Feature maps K", 1, 256, int(m.maps), key="conv_re_maps")
    kernel = c[1].number_input("Filter size k (px)", 1, 32, int(m.kernel), key="conv_re_kernel")
    pool = c[2].number_input("Pool window (positions)", 1, 64, int(m.pool_size),
                             key="conv_re_pool")
    stride = c[3].number_input("Pool stride", 1, 64, int(m.pool_stride), key="conv_re_stride")
    lam = c[4].number_input("λ (group sparsity)", 0.0, 100.0, float(m.lam), 0.05,
                            key="conv_re_lam", format="%.3g")
    c = st.columns([1, 2, 2], vertical_alignment="bottom")
    steps = c[0].number_input("Steps", 1, 1_000_000, int(run.config.train.steps),
                              key="conv_re_steps")
    stack = c[1].toggle("Stack a second layer on this run", False, key="conv_re_stack",
                        disabled=m.stacked,
                        help="Freeze this run's encoder and L2 pooling and train the new layer "
                             "on its pooled maps." if not m.stacked else
                        "This run is already a second layer; its retrain keeps its layer 1.")
    name = c[2].text_input("Run name (optional)", key="conv_re_name", placeholder="conv-<time>")
    config = None
    try:
        config = cv.retrain_config(ref, maps, kernel, pool, stride, lam, steps, stack)
        what = config.model_cls.summarize_config(config.model_config)
        st.caption(plain(f"These settings make: {what}"
                         + (f", on the pooled maps of {ref.name}" if stack else "")
                         + f", on {config.data.source} data (as {ref.name}), from scratch."))
    except ConfigError as exc:
        st.error(plain(str(exc)))
    label = "Stack and train" if stack else "Train"
    st.button(label, key="conv_retrain", type="primary", disabled=config is None,
              on_click=cv.start_job,
              args=(config, name, "a stacked layer" if stack else "conv"))


st.title("Convolutional")
ref = app_ui.require_run()
if not cv.is_conv(ref):
    st.info(plain(cv.not_conv_message(ref)))
    others = cv.conv_runs()
    if others:
        st.button(f"Show the conv run {others[0].name}", key="conv_show_other",
                  on_click=app_ui.select_run, args=(others[0].name,))
    else:
        st.caption("There is no conv run yet: train one on the Train page (model conv), or "
                   "with `python -m sparse_models train conv`.")
    st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

msg = st.session_state.pop(cv.MESSAGE_KEY, None)
if msg is not None:
    (st.success if msg[0] == "success" else st.error)(plain(msg[1]))

cfg = ref.load().config.model_config
st.caption(plain(ref.load().model.summarize_config(cfg)
                 + (f" · layer 2 on {cv.layer1_name(ref)[0]}" if cfg.stacked else " · layer 1")))
view = cv.filters_view(ref.path, ref.stamp)
numbers_ui(ref, view)

st.subheader("Filters" if not cfg.stacked else "Layer-2 features and layer-1 filters")
if cfg.stacked:
    layer2_filters_ui(ref, view)
else:
    layer1_filters_ui(ref, view)

st.subheader("Feature maps of an image")
image, image_name = image_ui(ref)
if image is not None:
    maps_ui(ref, image, image_name)

st.subheader("Invariance: pooled against unpooled units")
invariance_ui(ref)

st.subheader("Retrain, or stack a layer")
st.caption("Training runs in the background, like on the Train page; the new run keeps this "
           "run's data settings.")
retrain_ui(ref)
