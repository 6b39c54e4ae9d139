"""A digit drawn on the DrSAE page: the canvas's RGBA pixels become the run's input exactly as an
uploaded picture does (cropped to the ink, fitted into MNIST's 20-pixel box, centred on its centre
of mass, scaled like the run's rows); a blank canvas is refused with a hint; the page settles a
drawing like any other digit, and Clear empties the canvas. Then the same in a real browser, with
a stroke drawn by the mouse on the shipped drsae-mnist run.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from app_ui.drsae import UploadError, prepare_drawing, prepare_upload
from app_ui.testing import (
    MAIN,
    AppServer,
    browser_now,
    cli_train,
    open_app,
    open_page,
    png_bytes,
    private_runs,
    wait_rerun,
)
from sparse_models.models.drsae import DrSAE
from sparse_models.training.runs import load_run

CANVAS = 280  # the page's canvas, in pixels
DRAW = "Draw one"
HINT = "Draw a digit in the box"


def _canvas(strokes: list[tuple[slice, slice]]) -> np.ndarray:
    """(280, 280, 4) uint8 as the canvas sends it: white ink on an opaque black background."""
    a = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    a[..., 3] = 255
    for rows, cols in strokes:
        a[rows, cols] = 255
    return a


def _unit_rows(n: int = 50, p: int = 784) -> torch.Tensor:
    """Stand-in for a run's inputs scaled like drsae-mnist's: each row of length one."""
    r = torch.rand(n, p)
    return r / r.norm(dim=1, keepdim=True)


def _pixels(n: int = 50, p: int = 784) -> torch.Tensor:
    """Stand-in for a run's inputs left as pixels in 0–1 (no scaling)."""
    return torch.rand(n, p)


def _centre_of_mass(p: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(p.shape)
    return float((rows * p).sum() / p.sum()), float((cols * p).sum() / p.sum())


# --- the preparation ----------------------------------------------------------------------------


def test_a_stroke_in_a_corner_lands_in_the_middle_scaled_like_mnist() -> None:
    # a vertical bar 200 tall and 20 wide in the top-left corner of the canvas
    x, picture = prepare_drawing(_canvas([(slice(10, 210), slice(10, 30))]), (28, 28),
                                 _pixels())
    assert picture.shape == (28, 28) and x.shape == (784,)
    inked = picture > 0.5
    rows, cols = np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side fills MNIST's 20-pixel box
    assert cols[-1] - cols[0] + 1 == 2  # 20 of 200 canvas pixels: a pen stroke of about 2
    cy, cx = _centre_of_mass(picture)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # centred, as MNIST's digits are
    assert picture.max() == pytest.approx(1.0, abs=0.02) and picture.min() >= 0
    assert np.allclose(x, picture.reshape(-1), atol=1e-6)  # pixel data: no further scaling


def test_a_drawing_is_scaled_like_the_runs_rows() -> None:
    canvas = _canvas([(slice(60, 80), slice(60, 220)), (slice(80, 240), slice(190, 210))])
    x, picture = prepare_drawing(canvas, (28, 28), _unit_rows())
    assert np.linalg.norm(x) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(x, picture.reshape(-1) / np.linalg.norm(picture), atol=1e-6)


def test_a_drawing_is_prepared_exactly_as_the_same_picture_uploaded() -> None:
    """The reference: the canvas's pixels saved as a PNG and uploaded give the same input."""
    rng = np.random.default_rng(0)
    canvas = _canvas([(slice(40, 60), slice(70, 210)), (slice(60, 250), slice(150, 172))])
    canvas[..., :3] = (canvas[..., :3] * rng.uniform(0.6, 1.0, (CANVAS, CANVAS, 1))).astype(
        np.uint8)  # grey, antialiased-looking ink, the same in r, g and b
    ref = _unit_rows()
    drawn = prepare_drawing(canvas, (28, 28), ref)
    uploaded = prepare_upload(png_bytes(canvas[..., :3]), "seven.png", (28, 28), ref)
    for a, b in zip(drawn, uploaded, strict=True):
        assert np.allclose(a, b, atol=1e-6)


def test_ink_on_a_transparent_canvas_counts_by_its_alpha() -> None:
    a = np.zeros((CANVAS, CANVAS, 4), np.uint8)  # nothing painted: transparent = background
    a[50:230, 130:150] = 255
    x, picture = prepare_drawing(a, (28, 28), _pixels())
    opaque = prepare_drawing(_canvas([(slice(50, 230), slice(130, 150))]), (28, 28), _pixels())
    assert np.allclose(picture, opaque[1]) and np.allclose(x, opaque[0])


@pytest.mark.parametrize("canvas", [
    None,
    _canvas([]),  # black
    np.zeros((CANVAS, CANVAS, 4), np.uint8),  # transparent, as before the background is painted
    np.dstack([np.full((CANVAS, CANVAS, 3), 255, np.uint8),  # white but fully transparent
               np.zeros((CANVAS, CANVAS), np.uint8)]),
    np.dstack([np.full((CANVAS, CANVAS, 3), 10, np.uint8),  # a faint haze, no stroke
               np.full((CANVAS, CANVAS), 255, np.uint8)]),
])
def test_a_blank_canvas_is_refused_with_a_hint(canvas: np.ndarray | None) -> None:
    with pytest.raises(UploadError, match=f"^{HINT}"):
        prepare_drawing(canvas, (28, 28), _pixels())


def test_a_small_input_uses_the_whole_box() -> None:
    _, picture = prepare_drawing(_canvas([(slice(20, 260), slice(120, 160))]), (8, 8), _pixels())
    assert picture.shape == (8, 8)
    assert np.flatnonzero((picture > 0.5).any(1)).size == 8  # no MNIST margin at 8×8


# --- the page (AppTest) -----------------------------------------------------------------------


def _sent(canvas: np.ndarray) -> dict:
    """What streamlit-drawable-canvas 0.13 keeps as its value after a stroke: the drawing's
    objects and, with return_image_data, the canvas as a PNG data URL."""
    url = "data:image/png;base64," + base64.b64encode(png_bytes(canvas)).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url},
            "backgroundFit": None}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("drsae-draw-runs")
    with private_runs(d):
        cli_train(d, "drsae", "tiny-drsae", [f"{k}={v}" for k, v in DrSAE.tiny.items()])
        yield d


def _charts(at) -> dict[str, dict]:
    """The page's Plotly charts by title."""
    out = {}
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        title = spec.get("layout", {}).get("title", {})
        out[title.get("text", "") if isinstance(title, dict) else str(title or "")] = spec
    return out


def _texts(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind)).replace("\\", "")


def test_the_page_settles_a_drawing_and_clear_empties_the_canvas(runs: Path) -> None:
    at = open_app("../pages/drsae.py", run="tiny-drsae")
    at.radio(key="drsae_source").set_value(DRAW).run()
    assert not at.exception, [e.message for e in at.exception]
    assert HINT in _texts(at, "info")
    assert not [t for t in _charts(at) if t.startswith("class probabilities")]  # none settled

    canvas = _canvas([(slice(30, 250), slice(130, 150))])  # a "1"
    at.session_state["drsae_canvas_0"] = _sent(canvas)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert HINT not in _texts(at, "info") and not at.error
    run = load_run(runs / "tiny-drsae")
    x, _ = prepare_drawing(canvas, (8, 8), run.dataset().x)
    with torch.no_grad():
        z = run.model.iterates(torch.as_tensor(x).reshape(1, -1))[-1]  # (1, N) at t = T
        guess = int(run.model.class_logits(z).argmax())
    assert (f"Your drawing: at t = 3, **{int((z > 0).sum())} active units**, classified as "
            f"**{guess}**") in _texts(at, "markdown")
    charts = _charts(at)
    assert "class probabilities at t = 3" in charts
    shown = charts["input"]["data"][0]["z"]
    if isinstance(shown, dict):  # plotly ≥ 6 sends arrays as base64
        shown = np.frombuffer(base64.b64decode(shown["bdata"]), dtype=shown["dtype"])
    assert np.allclose(np.asarray(shown, dtype=float).reshape(-1), x, atol=1e-6)

    at.button(key="drsae_canvas_clear").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert HINT in _texts(at, "info")
    assert "Your drawing" not in _texts(at, "markdown")


# --- a real browser ---------------------------------------------------------------------------

_SURFACE = '[data-testid="stBidiComponentIsolated"] canvas.upper-canvas'  # Fabric's input layer


def _stroke(page: Any, points: list[tuple[float, float]]) -> None:
    """Draw one stroke through `points` (canvas pixels) with the mouse, button held down."""
    box = page.locator(MAIN).locator(_SURFACE).bounding_box()
    at = [(box["x"] + px, box["y"] + py) for px, py in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(at, at[1:], strict=False):
        for k in range(1, 11):
            page.mouse.move(ax + (bx - ax) * k / 10, ay + (by - ay) * k / 10)
    page.mouse.up()


def _screenshot(page: Any, folder: Path, name: str) -> None:
    """The "Watch a digit settle" section: the canvas and what the drawing settled into."""
    size = page.viewport_size
    page.mouse.move(0, 0)  # no chart's hover toolbar over the picture
    page.set_viewport_size({"width": size["width"], "height": 1700})
    page.locator(MAIN).get_by_role("heading", name="Watch a digit settle").evaluate(
        "h => h.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)  # let the charts re-lay themselves out
    page.screenshot(path=str(folder / f"{name}.png"))
    page.set_viewport_size(size)


@pytest.mark.browser
@pytest.mark.slow
def test_a_seven_drawn_with_the_mouse_settles_and_is_read_as_a_seven(
        browser_page: Any, lab_server: AppServer, screenshot_dir: Path) -> None:
    page = browser_page
    open_page(page, lab_server.url, "drsae?run=drsae-mnist", "DrSAE")
    main = page.locator(MAIN)
    since = browser_now(page)
    main.get_by_text(DRAW, exact=True).click()
    wait_rerun(page, since)
    main.locator(_SURFACE).wait_for(state="visible")
    assert main.get_by_text(HINT).count() == 1  # blank: nothing settles yet
    assert main.get_by_text("Your drawing").count() == 0
    main.locator(_SURFACE).scroll_into_view_if_needed()

    since = browser_now(page)
    _stroke(page, [(80, 60), (200, 60), (120, 230)])  # a 7: the bar, then the stem
    wait_rerun(page, since)
    said = main.get_by_text("Your drawing").inner_text()
    assert said.startswith("Your drawing: at t = 11,") and "classified as 7" in said, said
    assert main.get_by_text(HINT).count() == 0
    assert main.locator("text=class probabilities at t = 11").count() == 1
    assert main.locator("text=reconstruction D z at t = 11").count() == 1
    _screenshot(page, screenshot_dir, "drsae-drawn-seven")

    since = browser_now(page)
    main.get_by_role("button", name="Clear").click()
    wait_rerun(page, since)
    assert main.get_by_text(HINT).count() == 1
    assert main.get_by_text("Your drawing").count() == 0
