"""The Convolutional page's helpers: cached filters, top patches and invariance sweeps per run,
one image (bundled or uploaded) prepared as the run's data were, and retraining in the
background.

The science is `sparse_models.models.conv` (feature and pooled maps),
`sparse_models.analysis.invariance` (phase, translation and rotation sweeps) and
`sparse_models.analysis.conv_features` (the patches that excite each map most); this module
feeds them a run's arrays and caches the results per run path + stamp, like `app_ui.analysis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from sparse_models.config import ConfigError
from sparse_models.data import DataError
from sparse_models.presets import build_run_config, run_config_sections

from .runs import RunInfo, RunRef, _load_run_cached, all_runs
from .uploads import UploadError, open_picture

CONV = "conv"
MESSAGE_KEY = "conv_message"
PATCH_IMAGES = 500  # training crops searched for the patches that excite each map most
TOP_PATCHES = 8  # patches shown per map
SWEEP_IMAGES = 200  # training crops the translation sweep shifts (as the run's report)
MAX_SHIFT = 2  # px, each way, in the translation sweep (as the run's report)
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_UPLOAD_PIXELS = 6000 * 6000


def _run(path: str, stamp: float):
    return _load_run_cached(path, stamp)


def is_conv(ref: RunRef) -> bool:
    return ref.load().config.model == CONV


def conv_runs() -> list[RunInfo]:
    """Finished conv runs, first layers before stacked ones."""
    runs = [r for r in all_runs() if r.model == CONV and r.state == "completed"]
    return sorted(runs, key=lambda r: "layer-1 maps" in r.summary)  # stacked: "on K layer-1 maps"


def not_conv_message(ref: RunRef) -> str:
    return (f"{ref.name} is a {ref.load().config.model!r} run, not a convolutional one: this "
            f"page needs a run of the conv model (a convolutional auto-encoder with L2 "
            f"pooling, trained on whole images), a first layer or one stacked on another.")


def layer1_name(ref: RunRef) -> tuple[str, bool]:
    """A stacked run's layer-1 folder (its name) and whether that folder is still there."""
    p = Path(ref.load().config.model_config.layer1)
    return p.name, p.is_dir()


def _grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


# --- filters and what excites the maps ------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Reading the filters…")
def filters_view(path: str, stamp: float) -> dict[str, Any]:
    """What the page draws of a conv run's filters: decoder and encoder filters (K, C, k, k),
    a stacked run's frozen layer-1 encoder filters (K1, 1, k1, k1) (else None), the patches of
    the first PATCH_IMAGES training crops that excite each map most (K, n, f, f) with their
    responses (K, n) and the grid. (Explained variances are the run's analysis', shown as on
    Compare.)"""
    run = _run(path, stamp)
    model = run.model
    ds = run.dataset()
    h, w = model.config.input_shape
    from sparse_models.analysis.conv_features import top_patches

    crops = ds.x[:PATCH_IMAGES].float().reshape(-1, h, w).numpy()
    with torch.no_grad():
        patches, responses = top_patches(model, crops, n=TOP_PATCHES)
    l1 = model.layer1_filters()
    return {"decoder": model.filters("decoder").numpy(), "encoder": model.filters("encoder").numpy(),
            "layer1": None if l1 is None else l1.numpy(), "patches": patches,
            "responses": responses, "grid": _grid(model.config.maps),
            "n_patch_images": int(crops.shape[0])}


# --- one image, prepared as the run's data were -----------------------------------------------




def data_style(ref: RunRef) -> dict[str, Any]:
    """How the run's data source prepared its images (defaults where it has no such setting):
    downscale factor, whitening, local contrast normalisation, and the data set's scale."""
    run = ref.load()
    d = run.config.data
    info = run.dataset().info
    return {"downscale": int(getattr(d, "downscale", 1)),
            "whitening": str(getattr(d, "whitening", "none")),
            "contrast": str(getattr(d, "contrast", "none")),
            "lcn_sigma": float(getattr(d, "lcn_sigma", 2.0)),
            "scale": info.get("scale"), "source": getattr(d, "source", "?")}


def prepare(grey: np.ndarray, style: dict[str, Any]) -> np.ndarray:
    """A grey image (H, W) in [0, 1], already downscaled, as the run's data source prepares its
    images: whitened (or standardised), locally contrast-normalised when the run's data were,
    mean-free and times the data set's scale (float32)."""
    from sparse_models.data.images import whiten_image
    from sparse_models.data.whole import local_contrast_normalise

    kind = "olshausen" if style["whitening"] == "olshausen" else "none"
    x = whiten_image(grey, kind)
    if style["contrast"] == "lcn":
        x = local_contrast_normalise(x, style["lcn_sigma"])
    x = x - x.mean()
    if style["scale"]:
        x = x * float(style["scale"])
    else:
        x = x / max(float(x.std()), 1e-12)
    return x.astype(np.float32)


@st.cache_data(max_entries=16, show_spinner="Preparing the image…")
def bundled_image(name: str, style: dict[str, Any]) -> np.ndarray:
    """A bundled photograph, prepared as the run's images (`prepare`)."""
    from sparse_models.data.images import load_grey_image

    return prepare(load_grey_image(name, style["downscale"]), style)


@st.cache_data(max_entries=8, show_spinner="Preparing the image…")
def uploaded_image(data: bytes, name: str, style: dict[str, Any], min_side: int) -> np.ndarray:
    """An uploaded PNG/JPG, grey and downscaled like the bundled photographs, then prepared as
    the run's images; UploadError in words for a file that is not a picture, is empty, is too
    large, or is smaller than `min_side` pixels after downscaling."""
    from sparse_models.data.images import downscale, to_grey

    img = open_picture(data, name, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS)
    if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
        img = img.convert("RGB")
    arr = np.asarray(img)
    try:
        grey = downscale(to_grey(arr), style["downscale"])
    except DataError as exc:
        raise UploadError(f"{name}: {exc}") from None
    if min(grey.shape) < min_side:
        raise UploadError(f"{name} is {grey.shape[1]}×{grey.shape[0]} pixels after the run's "
                          f"downscaling by {style['downscale']}; this model needs at least "
                          f"{min_side}×{min_side}. Upload a larger picture.")
    if float(grey.max() - grey.min()) < 1e-3:
        raise UploadError(f"{name} is one flat colour: there is nothing for the filters to "
                          f"respond to.")
    return prepare(grey, style)


def centre_window(img: np.ndarray, side: int) -> np.ndarray:
    """The centred side×side window of img (H, W) (the whole side where it is shorter)."""
    h, w = img.shape
    sh, sw = min(side, h), min(side, w)
    r0, c0 = (h - sh) // 2, (w - sw) // 2
    return img[r0:r0 + sh, c0:c0 + sw]


@st.cache_data(max_entries=32, show_spinner="Computing the feature maps…")
def maps_of(path: str, stamp: float, image: np.ndarray) -> dict[str, np.ndarray]:
    """The run's feature maps (K, ·, ·) and L2-pooled maps (K/pool_maps, ·, ·) of one prepared
    image (h, w) (a stacked run's: its own layer's, on layer 1's pooled maps)."""
    model = _run(path, stamp).model
    x = torch.as_tensor(image, dtype=torch.float32)[None, None]
    with torch.no_grad():
        z = model.feature_maps(x)
        p = model.pooled(z)
    return {"maps": z[0].numpy(), "pooled": p[0].numpy()}


def min_image_side(ref: RunRef) -> int:
    """The smallest image side the model's filters (and a stacked run's layer 1) fit in."""
    from sparse_models.analysis.conv_features import unit_field

    return int(unit_field(ref.load().model)[0])


# --- invariance ----------------------------------------------------------------------------


@st.cache_data(max_entries=8, show_spinner="Measuring invariance (phase, shifts, rotations)…")
def invariance_view(path: str, stamp: float) -> dict[str, Any]:
    """The run's invariance sweeps (`conv_invariance`, as its report measures them: the first
    SWEEP_IMAGES training crops shifted by up to MAX_SHIFT px), each as arrays `xs`, `curves`,
    `live`, `modulation`; the summary (`invariance_summary`), and why there is no translation
    sweep when the crops are too small for it."""
    from sparse_models.analysis.invariance import (
        conv_invariance,
        conv_responders,
        invariance_summary,
    )

    run = _run(path, stamp)
    model = run.model
    h, w = model.config.input_shape
    size = conv_responders(model)[2]
    fits = min(h, w) >= size + 2 * MAX_SHIFT
    images = run.dataset().x[:SWEEP_IMAGES].float().reshape(-1, h, w).numpy()
    with torch.no_grad():
        sweeps = conv_invariance(model, images if fits else None, MAX_SHIFT)
    out: dict[str, Any] = {"summary": invariance_summary(sweeps), "size": int(size),
                           "why_no_translation": None if fits else (
                               f"its {h}×{w} crops are smaller than a centre pool's "
                               f"{size}×{size} field shifted by {MAX_SHIFT} px each way"),
                           "sweeps": {}}
    for key, s in sweeps.items():
        out["sweeps"][key] = {"xs": s.xs, "curves": s.curves, "live": s.live,
                              "modulation": s.modulation}
    return out


def shift_labels(max_shift: int = MAX_SHIFT) -> list[str]:
    """The translation sweep's shifts in its order: (dy, dx) row-major from (−m, −m)."""
    m = int(max_shift)
    return [f"({dy},{dx})" for dy in range(-m, m + 1) for dx in range(-m, m + 1)]


# --- retraining in the background ----------------------------------------------------------


def retrain_config(ref: RunRef, maps: int, kernel: int, pool_size: int, pool_stride: int,
                   lam: float, steps: int, stack: bool):
    """A conv RunConfig from the run's settings with these changed, on the same data.
    `stack`: a second layer on this (first-layer) run; otherwise the same kind of layer as this
    run (a stacked run's retrain keeps its layer 1). ConfigError in words."""
    cfg = ref.load().config
    sections = run_config_sections(cfg)
    m = sections["model"]
    if stack:
        if cfg.model_config.stacked:
            raise ConfigError(f"{ref.name} is itself a stacked run; stack on a first layer")
        m.update(layer1=str(Path(ref.path).resolve()), layer1_arch=[])
    m.update(maps=int(maps), kernel=int(kernel), pool_size=int(pool_size),
             pool_stride=int(pool_stride), lam=float(lam))
    sections["train"]["steps"] = int(steps)
    what = "stack" if stack else "retrain"
    return build_run_config(CONV, {}, base=sections, command=f"app: Convolutional page ({what})")


def start_job(config: Any, name: str, what: str) -> None:
    """Button callback: train `config` as a background job; a message for the next run."""
    from .jobs import start_job as submit

    submit(config, name, MESSAGE_KEY, what)
