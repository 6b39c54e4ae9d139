"""The DrSAE page's helpers: cached unit analysis per run, one input settling over the
iterations, uploaded or drawn digits, the LISTA code-error curves, and retraining in the
background.

The science is `sparse_models.analysis.drsae` (angles, unit kinds, ‖S − I‖, ‖C‖, late onset,
confusion matrix) and `sparse_models.models.lista` (ISTA/FISTA/LISTA code error); this module
only feeds them a run's arrays and caches the results per run path + stamp, like
`app_ui.analysis`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

from sparse_models.analysis.drsae import (
    class_averages,
    confusion_matrix,
    error_rate,
    unit_kinds,
    unit_measures,
)
from sparse_models.presets import build_run_config, default_sections, run_config_sections

from .runs import RunRef, _load_run_cached, all_runs, open_run
from .uploads import UploadError, open_picture

DRSAE, LISTA = "drsae", "lista"
UNIT_SAMPLES = 2000  # held-out inputs the per-unit measures (late onset, activity) use
CURVE_SAMPLES = 100  # held-out inputs the code-error curves average over
MESSAGE_KEY = "drsae_message"
MAX_UPLOAD_BYTES = 10 * 2**20
MAX_UPLOAD_PIXELS = 4096 * 4096


def _run(path: str, stamp: float):
    return _load_run_cached(path, stamp)


def model_of(ref: RunRef) -> str:
    return ref.load().config.model


def not_drsae_message(ref: RunRef) -> str:
    run = ref.load()
    layout = run.layout.kind
    what = {"map": "units on a 2-D map", "sheet": "units on a sheet over the image",
            "tree": "units on a tree"}.get(layout, "units without a classifier")
    return (f"{ref.name} is a {run.config.model!r} run ({what}), not a DrSAE: this page needs "
            f"an unrolled encoder with a classifier (the drsae model), or a LISTA run for the "
            f"code-error view.")


def kind_names(angle: np.ndarray, part_angle: float, categorical_angle: float) -> list[str]:
    """"part", "categorical" or "between" per unit, at these thresholds."""
    part, cat = unit_kinds(angle, part_angle, categorical_angle)
    return ["part" if p else "categorical" if c else "between" for p, c in zip(part, cat,
                                                                              strict=True)]


def _eval_split(ds) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    if ds.has_test:
        return ds.x_test.float(), ds.y_test, "held-out"
    return ds.x.float(), ds.y, "training"


@st.cache_data(max_entries=16, show_spinner="Analysing the DrSAE units…")
def units_view(path: str, stamp: float) -> dict[str, Any]:
    """Everything the page draws of a DrSAE run that does not depend on a control: per-unit
    measures on the held-out inputs (`unit_measures`), the encoder rows and decoder columns as
    pictures `(N, h, w)`, the classifier C `(classes, N)`, the class averages of the training
    inputs, test error and confusion matrix on the whole held-out split, and the data notice."""
    run = _run(path, stamp)
    model = run.model
    ds = run.dataset()
    h, w = model.input_shape[-2:]
    x, y, split = _eval_split(ds)
    x = x.reshape(x.shape[0], -1)
    with torch.no_grad():
        m = unit_measures(model, x[:UNIT_SAMPLES])
        preds = torch.cat([model.predict(x[s:s + 1000]) for s in range(0, x.shape[0], 1000)])
        l0 = float(np.mean([float((model.encode(x[s:s + 1000]) > 0).sum(1).float().mean())
                            for s in range(0, min(x.shape[0], UNIT_SAMPLES), 1000)]))
    n_classes = int(model.config.n_classes)
    out: dict[str, Any] = {k: np.asarray(v) for k, v in m.items()}
    out.update({
        "E": model.E.detach().cpu().numpy().reshape(-1, h, w),
        "D": model.D.detach().cpu().numpy().T.reshape(-1, h, w),
        "C": model.C.detach().cpu().numpy(),
        "class_avg": class_averages(ds.x.float().reshape(len(ds), -1), ds.y,
                                    n_classes).reshape(n_classes, h, w)
        if ds.y is not None else None,
        "split": split, "n_eval": int(x.shape[0]), "unit_samples": int(min(x.shape[0],
                                                                           UNIT_SAMPLES)),
        "l0": l0, "n_classes": n_classes,
    })
    if y is not None:
        out["error"] = error_rate(y, preds)
        out["confusion"] = confusion_matrix(y, preds, n_classes)
    else:
        out["error"], out["confusion"] = None, None
    out["notice"] = run.status.get("data_notice") or ds.info.get("notice")
    out["data_notice_now"] = ds.info.get("notice")
    return out


@torch.no_grad()
def settle(model: Any, x: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """One input x: (P,) through the unrolled encoder: `codes` (T, N) after each iteration,
    `probs` (T, classes) the classifier's softmax on each, `recon` (T, h, w) D zᵗ."""
    h, w = model.input_shape[-2:]
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)
    its = model.iterates(xt)[:, 0]  # (T, N)
    probs = torch.softmax(model.class_logits(its), dim=-1)
    recon = model.decode(its).reshape(its.shape[0], h, w)
    return {"codes": its.cpu().numpy(), "probs": probs.cpu().numpy(),
            "recon": recon.cpu().numpy()}


@st.cache_data(max_entries=64, show_spinner=False)
def settle_eval_input(path: str, stamp: float, index: int) -> dict[str, Any]:
    """`settle` on the held-out input number `index`, with the input `x` (h, w) and `label`."""
    run = _run(path, stamp)
    model = run.model
    x, y, split = _eval_split(run.dataset())
    x = x.reshape(x.shape[0], -1)[index]
    h, w = model.input_shape[-2:]
    return {**settle(model, x), "x": x.numpy().reshape(h, w),
            "label": None if y is None else int(y[index]), "split": split}


def eval_size(ref: RunRef) -> tuple[int, str]:
    ds = ref.load().dataset()
    x, _, split = _eval_split(ds)
    return int(x.shape[0]), split


# --- an uploaded or drawn digit -----------------------------------------------------------


def _data_style(reference: torch.Tensor) -> tuple[bool, bool]:
    """(mean removed, unit norm) of the rows of a run's inputs, as its data source prepared
    them: an upload is prepared the same way."""
    r = reference.float().reshape(reference.shape[0], -1)[:200]
    mean_removed = bool(r.mean(1).abs().max() < 1e-3)
    unit_norm = bool(((r.norm(dim=1) - 1).abs() < 1e-3).all())
    return mean_removed, unit_norm


def prepare_upload(data: bytes, name: str, shape: tuple[int, int],
                   reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A PNG/JPG of one digit as the run's input: grey, light ink on a dark background (a dark
    digit on paper is inverted), cropped to its ink, fitted into the digit box of the input
    (20 of 28 pixels, as MNIST; the whole input when it is small), centred on its centre of
    mass, then scaled as the run's data are (`_data_style`).

    Returns (x (h·w,), picture (h, w) in 0–1 before the scaling); UploadError in words."""
    img = open_picture(data, name, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS,
                       of_what=" of one digit", ask="of one digit")
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(back, rgba)  # transparent = paper
    grey = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    if grey.max() - grey.min() < 0.05:
        raise UploadError(f"{name} is one flat colour: there is no digit on it.")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: MNIST's digits are light on dark
        grey, border = 1.0 - grey, 1.0 - border
    ink = np.clip(grey - np.median(border), 0.0, None)
    if ink.max() <= 0.05:
        raise UploadError(f"{name} shows no digit: nothing stands out from its background.")
    return _fit_digit(ink, shape, reference)


def prepare_drawing(rgba: np.ndarray | None, shape: tuple[int, int],
                    reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A digit drawn on the page's canvas as the run's input, prepared as an upload is
    (`prepare_upload`): the canvas is light ink on black, as MNIST's digits are.

    rgba: (H, W, 4) uint8 from the canvas, or None before anything was drawn.
    Returns (x (h·w,), picture (h, w) in 0–1 before the scaling); UploadError asking for a
    digit when the canvas is blank."""
    blank = UploadError("Draw a digit in the box: the canvas is empty.")
    if rgba is None or rgba.size == 0:
        raise blank
    a = np.asarray(rgba, dtype=np.float64) / 255.0
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"canvas image data must be (H, W, 3 or 4); got {a.shape}")
    alpha = a[..., 3] if a.shape[2] == 4 else 1.0
    ink = a[..., :3].max(axis=2) * alpha  # transparent = the black background
    if ink.max() <= 0.05:
        raise blank
    return _fit_digit(ink, shape, reference)


def _fit_digit(ink: np.ndarray, shape: tuple[int, int],
               reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Ink (H, W) ≥ 0 with some ink above 0.05: cropped to it, fitted into the digit box of the
    input (20 of 28 pixels, as MNIST; the whole input when it is small), centred on its centre
    of mass, then scaled as the run's data are (`_data_style`)."""
    ink = ink / ink.max()
    rows, cols = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = int(shape[0]), int(shape[1])
    box = max(1, round(min(h, w) * 20 / 28)) if min(h, w) >= 16 else min(h, w)
    scale = box / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(
        size, Image.Resampling.LANCZOS), dtype=np.float64) / 255.0
    small = np.clip(small, 0.0, 1.0)
    out = np.zeros((h, w))
    total = small.sum()
    if total > 0:  # centre of mass to the middle, as MNIST's digits are
        cy = (small.sum(1) * np.arange(small.shape[0])).sum() / total
        cx = (small.sum(0) * np.arange(small.shape[1])).sum() / total
    else:
        cy, cx = (small.shape[0] - 1) / 2, (small.shape[1] - 1) / 2
    top = int(np.clip(round((h - 1) / 2 - cy), 0, h - small.shape[0]))
    left = int(np.clip(round((w - 1) / 2 - cx), 0, w - small.shape[1]))
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    x = out.reshape(-1).copy()
    mean_removed, unit_norm = _data_style(reference)
    if mean_removed:
        x -= x.mean()
    if unit_norm:
        x /= max(float(np.linalg.norm(x)), 1e-12)
    return x.astype(np.float32), out


# --- LISTA: code error against iterations ---------------------------------------------------


def _teacher_path(teacher: str) -> Path | None:
    from sparse_models.models.lista import find_teacher

    p = find_teacher(teacher) if teacher else None
    return None if p is None else p.resolve()


def lista_runs_for(ref: RunRef) -> list[RunRef]:
    """Finished LISTA runs trained on this run's dictionary (their teacher is this folder)."""
    me = Path(ref.path).resolve()
    out = []
    for info in all_runs():
        if info.model != LISTA or info.state != "completed":
            continue
        try:
            from sparse_models.training.runs.format import read_run_config

            teacher = read_run_config(info.path).model_config.teacher
        except Exception:  # a damaged folder is simply not listed
            continue
        if teacher and _teacher_path(teacher) == me:
            lref, _ = open_run(info)
            if lref is not None:
                out.append(lref)
    return out


def teacher_ref(ref: RunRef) -> RunRef | None:
    """The run a LISTA run's dictionary came from, when it is among the listed runs."""
    teacher = ref.load().config.model_config.teacher
    p = _teacher_path(teacher)
    if p is None:
        return None
    for info in all_runs():
        if Path(info.path).resolve() == p:
            return open_run(info)[0]
    return None


@st.cache_data(max_entries=16, show_spinner="Running ISTA and FISTA to convergence…")
def code_error(path: str, stamp: float, n_iter: int, tuned: bool = False) -> dict[str, Any]:
    """Relative code error against iterations on the first CURVE_SAMPLES held-out inputs of
    the run's data: ISTA and FISTA on the run's dictionary (a DrSAE's decoder D with its λ and
    non-negative codes, or a LISTA run's teacher dictionary with its λ and sign), and the LISTA
    model's own T steps for a LISTA run; with `tuned`, FISTA with its threshold tuned per
    iteration count too (`tuned_threshold_errors`, tuned on the same inputs: the baseline at its
    best). Keys: ista, fista, (fista_tuned), (lista), lam, positive, T, samples."""
    from sparse_models.analysis.code_error import code_error_curves, tuned_threshold_errors

    run = _run(path, stamp)
    model = run.model
    x, _, _ = _eval_split(run.dataset())
    x = x.reshape(x.shape[0], -1)[:CURVE_SAMPLES]
    cfg = model.config
    if run.config.model == LISTA:
        D, lam, positive, lista = model.D.detach(), float(cfg.lam), bool(cfg.positive), model
    else:
        D, lam, positive, lista = model.D.detach().T, float(cfg.lam), True, None
    curves = code_error_curves(x, D, lam, positive, n_iter=int(n_iter), lista=lista,
                               target_iter=3000, target_tol=1e-7)
    if tuned:
        t = tuned_threshold_errors(x, D, lam, positive, n_iter=int(n_iter), target_iter=3000,
                                   target_tol=1e-7)
        curves["fista_tuned"] = t["fista"]
    return {**{k: np.asarray(v) for k, v in curves.items()}, "lam": lam, "positive": positive,
            "T": int(cfg.n_iter) if lista is not None else None, "samples": int(x.shape[0])}


def matching_iterations(errors: np.ndarray, target: float) -> int | None:
    from sparse_models.analysis.code_error import iterations_to_match

    return iterations_to_match(errors, target)


# --- retraining in the background ----------------------------------------------------------


def retrain_config(ref: RunRef, n_units: int, n_iter: int, lam: float, steps: int,
                   pretrain: bool, pretrain_steps: int):
    """A DrSAE RunConfig from the run's settings with these changed (ConfigError in words)."""
    sections = run_config_sections(ref.load().config)
    sections["model"].update(n_units=int(n_units), n_iter=int(n_iter), lam=float(lam),
                             pretrain=bool(pretrain), pretrain_steps=int(pretrain_steps))
    sections["train"]["steps"] = int(steps)
    return build_run_config(DRSAE, {}, base=sections, command="app: DrSAE page")


def lista_default_steps() -> int:
    """The LISTA model's own default number of training steps (its preset's)."""
    return int(default_sections(LISTA)["train"]["steps"])


def lista_config(ref: RunRef, n_iter: int, steps: int):
    """A LISTA RunConfig that learns to encode for this run's dictionary, on its data."""
    sections = default_sections(LISTA)
    sections["data"] = run_config_sections(ref.load().config)["data"]
    sections["model"].update(teacher=str(Path(ref.path).resolve()), n_iter=int(n_iter))
    sections["train"]["steps"] = int(steps)
    return build_run_config(LISTA, {}, base=sections, command="app: DrSAE page (LISTA)")


def start_job(config: Any, name: str, what: str) -> None:
    """Button callback: train `config` as a background job; a message for the next run."""
    from .jobs import start_job as submit

    submit(config, name, MESSAGE_KEY, what)


def epochs(steps: int, batch_size: int, n_train: int) -> float:
    return steps * batch_size / max(n_train, 1) if n_train else math.nan
