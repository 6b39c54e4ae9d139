"""Plotly figure builders for the app: arrays in, figures out (house style 9).

Nothing here computes science: orientation, pinwheels, spectra and sparsity statistics come from
`sparse_models.analysis`; these functions only lay arrays out and colour them. No streamlit.

Map conventions match the analysis: unit i sits at (row, col) = (i // cols, i % cols), row 0 at
the top; a pinwheel at (r + ½, c + ½) lies between four map pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from skimage.color import hsv2rgb

GREY = [[0.0, "#000000"], [1.0, "#ffffff"]]
POS_COLOR = "#ffffff"  # +½ pinwheels
NEG_COLOR = "#111111"  # −½ pinwheels
MARGIN = dict(l=10, r=10, t=40, b=10)


# --- filter tiles ---------------------------------------------------------------------------


def as_images(filters: np.ndarray) -> np.ndarray:
    """Filters `(N, h, w)` or `(N, C, h, w)` as one grey picture each, `(N, h, C·w)`: a
    single-channel filter as it is, the channels of a multi-channel one side by side."""
    f = np.asarray(filters)
    if f.ndim == 3:
        return f
    if f.ndim != 4:
        raise ValueError(f"filters must have shape (N, h, w) or (N, C, h, w), got {f.shape}")
    n, c, h, w = f.shape
    return f.transpose(0, 2, 1, 3).reshape(n, h, c * w)


def tile_filters(filters: np.ndarray, grid: tuple[int, int], pad: int = 1) -> np.ndarray:
    """Lay filters `(N, h, w)` (or `(N, C, h, w)`, see `as_images`) out on a `(rows, cols)` grid,
    each scaled to [-1, 1].

    Unit i goes to tile (i // cols, i % cols). Returns `(rows·(h+pad)+pad, cols·(w+pad)+pad)`
    float32 with NaN in the padding and in tiles past N. Each filter is divided by its own
    largest |value| (a zero filter stays 0), so weak and strong filters are equally visible.
    """
    f = as_images(np.asarray(filters, dtype=np.float32))
    n, h, w = f.shape
    rows, cols = int(grid[0]), int(grid[1])
    if rows * cols < n:
        raise ValueError(f"a {rows}×{cols} grid has no room for {n} filters")
    scale = np.abs(f).reshape(n, -1).max(axis=1)
    f = f / np.where(scale > 0, scale, 1.0)[:, None, None]
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), np.nan, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = f[i]
    return out


def tiles_to_uint8(tiles: np.ndarray, upscale: int = 1, background: int = 128) -> np.ndarray:
    """A [-1, 1] tile image (NaN = padding) as a grey uint8 picture, each pixel `upscale`² px."""
    img = np.where(np.isnan(tiles), (background / 127.5) - 1.0, tiles)
    img = np.clip((img + 1.0) * 127.5, 0, 255).astype(np.uint8)
    if upscale > 1:
        img = img.repeat(upscale, axis=0).repeat(upscale, axis=1)
    return img


def filter_grid_image(filters: np.ndarray, grid: tuple[int, int], pad: int = 1,
                      upscale: int = 3) -> np.ndarray:
    """`tile_filters` as a uint8 picture, for a quick `st.image` (live snapshots, overview)."""
    return tiles_to_uint8(tile_filters(filters, grid, pad), upscale)


def filter_grid_figure(
    filters: np.ndarray,
    grid: tuple[int, int],
    pad: int = 1,
    title: str | None = None,
    hover: Mapping[str, np.ndarray] | None = None,
    selected: int | None = None,
    height: int = 620,
) -> go.Figure:
    """Zoomable grid of filters `(N, h, w)` on `grid` (rows, cols).

    Trace 0 is the tile heatmap; trace 1 a scatter with one (invisible until selected) marker per
    unit at its tile centre, carrying the unit index as `customdata[0]`, so hovering shows the
    unit's details and clicking selects it. `hover`: extra per-unit values `(N,)` by label.
    """
    f = as_images(filters)
    n, h, w = f.shape
    rows, cols = int(grid[0]), int(grid[1])
    tiles = tile_filters(f, (rows, cols), pad)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=tiles, colorscale=GREY, zmin=-1, zmax=1, showscale=False,
                             hoverinfo="skip", name="filters"))
    idx = np.arange(n)
    r, c = np.divmod(idx, cols)
    xs = pad + c * (w + pad) + (w - 1) / 2.0
    ys = pad + r * (h + pad) + (h - 1) / 2.0
    labels = list(hover or {})
    custom = np.column_stack([idx, r, c] + [np.asarray(hover[k], dtype=float) for k in labels])
    template = "unit %{customdata[0]} (row %{customdata[1]}, col %{customdata[2]})"
    for j, k in enumerate(labels):
        template += f"<br>{k}: %{{customdata[{3 + j}]:.3g}}"
    marker_size = max(4.0, min(40.0, 560.0 / max(rows, cols)))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=custom, hovertemplate=template + "<extra></extra>",
        marker=dict(symbol="square-open", size=marker_size, color="#ff2b2b", opacity=0.0,
                    line=dict(width=2)),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.0)),
        selectedpoints=[selected] if selected is not None and 0 <= selected < n else None,
        name="units", showlegend=False))
    H, W = tiles.shape
    fig.update_yaxes(range=[H - 0.5, -0.5], scaleanchor="x", showticklabels=False,
                     showgrid=False, zeroline=False, constrain="domain")
    fig.update_xaxes(range=[-0.5, W - 0.5], showticklabels=False, showgrid=False, zeroline=False,
                     constrain="domain")
    fig.update_layout(title=title, height=height, margin=MARGIN, dragmode="zoom",
                      clickmode="event+select", plot_bgcolor="#808080")
    return fig


def filter_figure(filt: np.ndarray, title: str | None = None, height: int = 260) -> go.Figure:
    """One filter `(h, w)` or `(C, h, w)` (channels side by side) as a grey heatmap, symmetric
    around 0."""
    f = np.asarray(filt, dtype=float)
    if f.ndim == 3:
        f = as_images(f[None])[0]
    m = float(np.abs(f).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=f, colorscale=GREY, zmin=-m, zmax=m, showscale=False,
                               hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, height=height, margin=MARGIN)
    return fig


# --- orientation maps -----------------------------------------------------------------------


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV -> RGB (scikit-image's `hsv2rgb`), inputs in [0, 1] broadcast together (hue wraps);
    returns (..., 3) floats."""
    h, s, v = np.broadcast_arrays(np.mod(np.asarray(h, dtype=float), 1.0),
                                  np.asarray(s, dtype=float), np.asarray(v, dtype=float))
    return hsv2rgb(np.stack([h, s, v], axis=-1))


def orientation_rgb(theta_map: np.ndarray, selectivity_map: np.ndarray | None = None,
                    brightness_max: float | None = None) -> np.ndarray:
    """Colour a map: hue = orientation θ ∈ [0, π), brightness = selectivity. (rows, cols, 3) uint8.

    Selectivity is divided by `brightness_max` (default: its 99th percentile) and clipped to 1,
    so the map uses the full brightness range whatever the model's typical selectivity.
    """
    theta = np.asarray(theta_map, dtype=float)
    if selectivity_map is None:
        v = np.ones_like(theta)
    else:
        sel = np.asarray(selectivity_map, dtype=float)
        top = brightness_max if brightness_max else float(np.percentile(sel, 99)) if sel.size else 1.0
        v = np.clip(sel / top, 0.0, 1.0) if top > 0 else np.zeros_like(sel)
    rgb = hsv_to_rgb(theta / math.pi, np.ones_like(theta), v)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def orientation_map_image(theta_map: np.ndarray, selectivity_map: np.ndarray | None = None,
                          pinwheels: Sequence[tuple[float, float, float]] = (),
                          cell: int = 24) -> np.ndarray:
    """The orientation map as a static picture `(rows·cell, cols·cell, 3)` uint8, pinwheels
    drawn as in `orientation_map_figure` (+½ white circles, −½ black squares).

    For places that need no hover (the Overview): a picture is drawn by the browser at once,
    where a Plotly chart first loads the Plotly library.
    """
    from PIL import Image, ImageDraw

    rgb = orientation_rgb(theta_map, selectivity_map)
    rows, cols = rgb.shape[:2]
    img = Image.fromarray(rgb).resize((cols * cell, rows * cell), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    r = max(3, cell // 3)
    for row, col, charge in pinwheels:
        # Map coordinates are cell centres: (row, col) -> pixel ((col + 0.5)·cell, ...).
        x, y = (col + 0.5) * cell, (row + 0.5) * cell
        box = (x - r, y - r, x + r, y + r)
        if charge > 0:
            draw.ellipse(box, fill=POS_COLOR, outline="#000000", width=2)
        else:
            draw.rectangle(box, fill=NEG_COLOR, outline="#ffffff", width=2)
    return np.asarray(img)


def orientation_colorscale(n: int = 13) -> list[list]:
    """The hue wheel of `orientation_rgb` (full brightness) as a Plotly colorscale over [0, 180°]."""
    hs = np.linspace(0.0, 1.0, n)
    rgb = hsv_to_rgb(hs, np.ones(n), np.ones(n))
    return [[float(x), "rgb({},{},{})".format(*(int(round(255 * c)) for c in col))]
            for x, col in zip(hs, rgb, strict=True)]


def orientation_map_figure(
    theta_map: np.ndarray,
    selectivity_map: np.ndarray | None = None,
    pinwheels: Sequence[tuple[float, float, float]] = (),
    title: str | None = None,
    height: int = 520,
    show_colorbar: bool = True,
    dead: np.ndarray | None = None,
) -> go.Figure:
    """The orientation map (hue θ, brightness selectivity) with pinwheel centres marked.

    pinwheels: `[(row, col, charge)]` as from `find_pinwheels`; +½ drawn as white circles,
    −½ as black squares. dead: (rows, cols) bool, units that never fire: drawn black, and their
    hover says so instead of giving an orientation. Traces: 0 the map image, then one scatter
    per charge sign present, then (with `show_colorbar`) an empty scatter that only carries the
    hue colorbar.
    """
    theta = np.asarray(theta_map, dtype=float)
    rgb = orientation_rgb(theta, selectivity_map)
    sel = np.zeros_like(theta) if selectivity_map is None else np.asarray(selectivity_map, float)
    dead = np.zeros(theta.shape, bool) if dead is None else np.asarray(dead, bool)
    rgb[dead] = 0
    text = np.where(dead, "dead unit: never fires, no orientation",
                    np.char.add(np.char.add("θ = ", np.char.mod("%.0f", np.degrees(theta))),
                                np.char.add("°<br>selectivity ", np.char.mod("%.2f", sel))))
    fig = go.Figure(go.Image(
        z=rgb, customdata=text[..., None], name="map",
        hovertemplate="row %{y}, col %{x}<br>%{customdata[0]}<extra></extra>"))
    pw = np.asarray(list(pinwheels), dtype=float).reshape(-1, 3)
    for sign, name, symbol, color, edge in ((1, "+½ pinwheel", "circle", POS_COLOR, "#000000"),
                                            (-1, "−½ pinwheel", "square", NEG_COLOR, "#ffffff")):
        sel_pw = pw[np.sign(pw[:, 2]) == sign]
        if len(sel_pw) == 0:
            continue
        fig.add_trace(go.Scatter(
            x=sel_pw[:, 1], y=sel_pw[:, 0], mode="markers", name=name,
            marker=dict(symbol=symbol, size=11, color=color, line=dict(width=2, color=edge)),
            hovertemplate=name + " at (%{y:.1f}, %{x:.1f})<extra></extra>"))
    if show_colorbar:
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker=dict(colorscale=orientation_colorscale(), cmin=0, cmax=180, color=[0],
                        showscale=True, colorbar=dict(
                            title="θ", tickvals=[0, 45, 90, 135, 180],
                            ticktext=["0°", "45°", "90°", "135°", "180°"], thickness=14, len=0.8))))
    rows, cols = theta.shape
    fig.update_xaxes(range=[-0.5, cols - 0.5], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[rows - 0.5, -0.5], showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      legend=dict(orientation="h", yanchor="top", y=-0.02, x=0))
    return fig


def power_spectrum_figure(
    spectrum: np.ndarray,
    radial_k: np.ndarray,
    radial_power: np.ndarray,
    spacing: float | None = None,
    height: int = 640,
) -> go.Figure:
    """The 2-D power spectrum of e^{2iθ} (fft-shifted, log scale, top) and its radial average
    (bottom). A ring at |k| = 1/Λ (dashed circle) and a vertical line mark the column spacing.
    """
    spec = np.asarray(spectrum, dtype=float)
    rows, cols = spec.shape
    ky = np.fft.fftshift(np.fft.fftfreq(rows))
    kx = np.fft.fftshift(np.fft.fftfreq(cols))
    floor = spec[spec > 0].min() if (spec > 0).any() else 1.0
    fig = make_subplots(rows=2, cols=1, row_heights=[0.6, 0.4], vertical_spacing=0.16,
                        subplot_titles=("power, log scale", "radial average"))
    fig.add_trace(go.Heatmap(z=np.log10(np.maximum(spec, floor)), x=kx, y=ky,
                             colorscale="Viridis", showscale=False,
                             hovertemplate="kx %{x:.3f}, ky %{y:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=radial_k, y=radial_power, mode="lines+markers", name="power",
                             showlegend=False), 2, 1)
    ok = spacing is not None and math.isfinite(spacing) and spacing > 0
    if ok:
        k0 = 1.0 / spacing
        t = np.linspace(0, 2 * np.pi, 90)
        fig.add_trace(go.Scatter(x=k0 * np.cos(t), y=k0 * np.sin(t), mode="lines",
                                 line=dict(color="white", dash="dash"), hoverinfo="skip",
                                 showlegend=False), 1, 1)
        fig.add_vline(x=k0, line_dash="dash", line_color="#ff4b4b", row=2, col=1,
                      annotation_text=f"1/Λ, Λ = {spacing:.1f}", annotation_position="top right")
    fig.update_xaxes(title_text="|k|, cycles / unit", row=2, col=1)
    fig.update_yaxes(title_text="power", row=2, col=1)
    fig.update_xaxes(range=[kx.min(), kx.max()], constrain="domain", title_text="kx", row=1,
                     col=1)
    fig.update_yaxes(range=[ky.min(), ky.max()], scaleanchor="x", row=1, col=1)
    fig.update_layout(height=height, margin=MARGIN)
    return fig


# --- curves, histograms, maps of values -----------------------------------------------------


def loss_curves_figure(steps: np.ndarray, terms: Mapping[str, np.ndarray], log_y: bool = False,
                       title: str | None = None, height: int = 320) -> go.Figure:
    """One line per loss term against the training step (the total, `loss`, drawn thicker)."""
    fig = go.Figure()
    for name, values in terms.items():
        fig.add_trace(go.Scatter(x=np.asarray(steps), y=np.asarray(values, dtype=float),
                                 mode="lines", name=name,
                                 line=dict(width=3 if name == "loss" else 1.5)))
    fig.update_layout(title=title, height=height, margin=MARGIN, xaxis_title="step",
                      yaxis_type="log" if log_y else "linear",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


def histogram_figure(counts: np.ndarray, edges: np.ndarray, title: str | None = None,
                     x_label: str = "", log_y: bool = False, name: str = "",
                     height: int = 300) -> go.Figure:
    """Bars for a histogram given as `(counts (n,), edges (n+1,))`."""
    return overlay_histograms_figure({name or "count": (counts, edges)}, title, x_label, log_y,
                                     height)


def overlay_histograms_figure(series: Mapping[str, tuple[np.ndarray, np.ndarray]],
                              title: str | None = None, x_label: str = "", log_y: bool = False,
                              height: int = 300, normalize: bool = False) -> go.Figure:
    """Several histograms `{name: (counts, edges)}` overlaid; `normalize` shows fractions."""
    fig = go.Figure()
    for name, (counts, edges) in series.items():
        c = np.asarray(counts, dtype=float)
        e = np.asarray(edges, dtype=float)
        if normalize and c.sum() > 0:
            c = c / c.sum()
        fig.add_trace(go.Bar(x=(e[:-1] + e[1:]) / 2, y=c, width=np.diff(e), name=name,
                             opacity=0.6 if len(series) > 1 else 1.0))
    fig.update_layout(title=title, height=height, margin=MARGIN, barmode="overlay",
                      bargap=0, xaxis_title=x_label,
                      yaxis_title="fraction" if normalize else "count",
                      yaxis_type="log" if log_y else "linear",
                      showlegend=len(series) > 1,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


def sorted_bar_figure(values: np.ndarray, title: str | None = None, y_label: str = "",
                      highlight_below: float | None = None, height: int = 300) -> go.Figure:
    """Per-unit values sorted high to low; bars at or below `highlight_below` in red."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(-v, kind="stable")
    colors = ["#ff4b4b" if highlight_below is not None and x <= highlight_below else "#1f77b4"
              for x in v[order]]
    fig = go.Figure(go.Bar(x=np.arange(v.size), y=v[order], marker_color=colors,
                           customdata=order,
                           hovertemplate="unit %{customdata}: %{y:.3g}<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=MARGIN, bargap=0,
                      xaxis_title="units, sorted", yaxis_title=y_label)
    return fig


def map_heatmap_figure(values: np.ndarray, title: str | None = None, colorscale: str = "Viridis",
                       zmin: float | None = None, zmax: float | None = None,
                       value_label: str = "value", height: int = 320) -> go.Figure:
    """A value per map position `(rows, cols)` as a heatmap (row 0 at the top)."""
    z = np.asarray(values, dtype=float)
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale, zmin=zmin, zmax=zmax,
                               colorbar=dict(title=value_label, thickness=12),
                               hovertemplate="row %{y}, col %{x}: %{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False)
    fig.update_xaxes(showgrid=False, zeroline=False, constrain="domain")
    fig.update_layout(title=title, height=height, margin=MARGIN)
    return fig


def pool_preview_figure(coverage: np.ndarray, pool: np.ndarray | None = None,
                        height: int = 320) -> go.Figure:
    """Preview of a group structure on the map: how many pools cover each unit (left) and the
    weights of one example pool (right). Both `(rows, cols)`."""
    cov = np.asarray(coverage, dtype=float)
    rows, cols = cov.shape
    two = pool is not None
    fig = make_subplots(rows=1, cols=2 if two else 1, horizontal_spacing=0.24,
                        subplot_titles=("pools covering each unit", "one pool's weights")
                        if two else ("pools covering each unit",))
    fig.add_trace(go.Heatmap(z=cov, colorscale="Blues", zmin=0, zmax=max(1.0, float(cov.max())),
                             colorbar=dict(x=0.39 if two else 1.0, thickness=10),
                             hovertemplate="row %{y}, col %{x}: %{z:g} pools<extra></extra>"),
                  1, 1)
    if two:
        w = np.asarray(pool, dtype=float)
        fig.add_trace(go.Heatmap(z=w, colorscale="Oranges", zmin=0, zmax=max(1e-9, w.max()),
                                 colorbar=dict(thickness=10),
                                 hovertemplate="row %{y}, col %{x}: weight %{z:.2f}<extra></extra>"),
                      1, 2)
    for c in range(1, 3 if two else 2):
        fig.update_xaxes(range=[-0.5, cols - 0.5], showgrid=False, zeroline=False,
                         constrain="domain", row=1, col=c)
        fig.update_yaxes(range=[rows - 0.5, -0.5], showgrid=False, zeroline=False,
                         scaleanchor="x" if c == 1 else "x2", constrain="domain", row=1, col=c)
    fig.update_layout(height=height, margin=MARGIN)
    return fig


def _hue_hex(theta: np.ndarray) -> list[str]:
    rgb = hsv_to_rgb(np.asarray(theta, float) / math.pi, 1.0, 1.0)
    return ["#" + "".join(f"{int(round(255 * c)):02x}" for c in row)
            for row in np.atleast_2d(rgb)]


def orientation_histogram_figure(theta: np.ndarray, bins: int = 18, title: str | None = None,
                                 height: int = 300) -> go.Figure:
    """How many units prefer each orientation: `bins` bars over [0°, 180°), each in its hue."""
    deg = np.degrees(np.asarray(theta, float).ravel())
    counts, edges = np.histogram(deg, bins=bins, range=(0.0, 180.0))
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=180.0 / bins * 0.95,
                           marker_color=_hue_hex(np.radians(centres)),
                           hovertemplate="%{x:.0f}°: %{y} units<extra></extra>"))
    fig.add_hline(y=deg.size / bins, line_dash="dot", line_color="#888888",
                  annotation_text="even", annotation_position="top right")
    fig.update_xaxes(title="preferred orientation θ (°)", tickvals=[0, 45, 90, 135, 180])
    fig.update_yaxes(title="units")
    fig.update_layout(title=title, height=height, margin=MARGIN, showlegend=False)
    return fig


def density_curve_figure(curve: Sequence[tuple[int, float, float, int]],
                         random_field: tuple[float, float] | None = None,
                         title: str | None = None, height: int = 300) -> go.Figure:
    """Pinwheel density per Λ² against the side of the window it is counted in (mean ± s.d. over
    windows), with π and, when given, the random-field control (mean ± s.d.)."""
    c = np.asarray(list(curve), dtype=float).reshape(-1, 4)
    fig = go.Figure(go.Scatter(
        x=c[:, 0], y=c[:, 1], mode="lines+markers", name="this map",
        error_y=dict(type="data", array=c[:, 2], visible=True),
        customdata=c[:, 3], hovertemplate="side %{x:.0f}: %{y:.2f} per Λ² "
                                          "(%{customdata:.0f} windows)<extra></extra>"))
    fig.add_hline(y=math.pi, line_dash="dash", line_color="#2ca02c",
                  annotation_text="π (visual cortex)", annotation_position="top left")
    if random_field is not None and math.isfinite(random_field[0]):
        m, sd = random_field
        fig.add_hrect(y0=m - sd, y1=m + sd, fillcolor="#999999", opacity=0.2, line_width=0,
                      annotation_text="random field ± s.d.", annotation_position="bottom right")
    fig.update_xaxes(title="window side (map units)")
    fig.update_yaxes(title="pinwheels per Λ²", rangemode="tozero")
    fig.update_layout(title=title, height=height, margin=MARGIN, showlegend=False)
    return fig


def retinotopy_figure(centres: np.ndarray, map_shape: tuple[int, int], theta: np.ndarray,
                      image_shape: tuple[int, int], block: tuple[int, int] = (1, 1),
                      title: str | None = None, height: int = 460) -> go.Figure:
    """Where each unit of a sheet looks: its receptive-field centre in image pixels, coloured by
    its preferred orientation, with the grid of the positions' mean centres (one line per row and
    column of positions) drawn over it: a smooth grid is a retinotopic map."""
    rows, cols = map_shape
    xy = np.asarray(centres, float).reshape(rows, cols, 2)
    a, b = block
    pr, pc = rows // a, cols // b
    mean = xy[:pr * a, :pc * b].reshape(pr, a, pc, b, 2).mean(axis=(1, 3))
    fig = go.Figure()
    lines_x, lines_y = [], []
    for r in range(pr):
        lines_x += list(mean[r, :, 1]) + [None]
        lines_y += list(mean[r, :, 0]) + [None]
    for c in range(pc):
        lines_x += list(mean[:, c, 1]) + [None]
        lines_y += list(mean[:, c, 0]) + [None]
    fig.add_trace(go.Scatter(x=lines_x, y=lines_y, mode="lines", name="positions",
                             line=dict(color="#555555", width=1), hoverinfo="skip"))
    mr, mc = np.divmod(np.arange(rows * cols), cols)
    flat = xy.reshape(-1, 2)
    fig.add_trace(go.Scatter(
        x=flat[:, 1], y=flat[:, 0], mode="markers", name="units",
        marker=dict(size=5, color=_hue_hex(np.asarray(theta).ravel())),
        customdata=np.stack([mr, mc, np.degrees(np.asarray(theta).ravel())], axis=1),
        hovertemplate="map cell (%{customdata[0]}, %{customdata[1]}), θ %{customdata[2]:.0f}°"
                      "<br>centre (%{y:.1f}, %{x:.1f}) px<extra></extra>"))
    h, w = image_shape
    fig.update_xaxes(range=[-0.5, w - 0.5], title="image column (px)", constrain="domain")
    fig.update_yaxes(range=[h - 0.5, -0.5], title="image row (px)", scaleanchor="x")
    fig.update_layout(title=title, height=height, margin=MARGIN, showlegend=False)
    return fig


# --- DrSAE and the LISTA family -------------------------------------------------------------

KIND_COLORS = {"part": "#1f77b4", "categorical": "#d62728", "between": "#9aa0a6"}


def unit_scatter_figure(angle: np.ndarray, s_norm: np.ndarray, c_norm: np.ndarray,
                        part_angle: float, categorical_angle: float,
                        selected: int | None = None,
                        hover: Mapping[str, np.ndarray] | None = None,
                        dead: np.ndarray | None = None,
                        title: str | None = None, height: int = 440) -> go.Figure:
    """DrSAE's units as points: x = angle between encoder row and decoder column (rad), y =
    ‖(S − I)ᵢ‖, colour = ‖Cᵢ‖, with the part and categorical angle thresholds as vertical lines.

    Trace 0 holds one point per unit in unit order (`customdata[0]` = the unit), so a click's
    `point_index` is the unit; `dead` units (bool mask) are faint crosses; trace 1 rings the
    `selected` unit."""
    a = np.asarray(angle, dtype=float)
    s = np.asarray(s_norm, dtype=float)
    c = np.asarray(c_norm, dtype=float)
    n = a.size
    off = np.zeros(n, bool) if dead is None else np.asarray(dead, bool)
    labels = list(hover or {})
    custom = np.column_stack([np.arange(n), c] + [np.asarray(hover[k], dtype=float)
                                                   for k in labels])
    template = ("unit %{customdata[0]}<br>angle %{x:.2f} rad<br>‖(S−I)ᵢ‖ %{y:.3g}"
                "<br>‖Cᵢ‖ %{customdata[1]:.3g}")
    for j, k in enumerate(labels):
        template += f"<br>{k}: %{{customdata[{2 + j}]:.3g}}"
    fig = go.Figure(go.Scatter(
        x=a, y=s, mode="markers", customdata=custom, name="units",
        hovertemplate=template + "<extra></extra>",
        marker=dict(size=8, color=c, colorscale="Viridis", showscale=True,
                    colorbar=dict(title="‖Cᵢ‖", thickness=12),
                    symbol=np.where(off, "x-thin-open", "circle").tolist(),
                    opacity=np.where(off, 0.35, 0.9).tolist(),
                    line=dict(width=np.where(off, 1.5, 0.5).tolist(), color="#333333")),
        showlegend=False))
    ring_x, ring_y = ([a[selected]], [s[selected]]) if selected is not None and \
        0 <= selected < n else ([], [])
    fig.add_trace(go.Scatter(x=ring_x, y=ring_y, mode="markers", hoverinfo="skip",
                             name="selected", showlegend=False,
                             marker=dict(size=18, symbol="circle-open", color="#ff2b2b",
                                         line=dict(width=3))))
    fig.add_vline(x=part_angle, line=dict(color=KIND_COLORS["part"], dash="dash"),
                  annotation_text=f"part < {part_angle:.2g}", annotation_position="top left")
    fig.add_vline(x=categorical_angle, line=dict(color=KIND_COLORS["categorical"], dash="dash"),
                  annotation_text=f"categorical > {categorical_angle:.2g}",
                  annotation_position="top right")
    hi = max(float(a.max()) if n else 0.0, categorical_angle) + 0.1
    fig.update_xaxes(title="angle between encoder row Eᵢ and decoder column Dᵢ (rad)",
                     range=[-0.05, hi])
    fig.update_yaxes(title="‖(S − I)ᵢ‖ (recurrent input)", rangemode="tozero")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      clickmode="event+select", dragmode="zoom", hovermode="closest")
    return fig


def class_bar_figure(values: np.ndarray, title: str | None = None, y_label: str = "",
                     highlight: int | None = None, labels: Sequence[str] | None = None,
                     y_range: tuple[float, float] | None = None,
                     height: int = 260) -> go.Figure:
    """One bar per class (e.g. a unit's classifier weights, or class probabilities); the
    `highlight` class in red."""
    v = np.asarray(values, dtype=float)
    names = list(labels) if labels is not None else [str(k) for k in range(v.size)]
    colors = ["#ff2b2b" if highlight is not None and k == highlight else "#1f77b4"
              for k in range(v.size)]
    fig = go.Figure(go.Bar(x=names, y=v, marker_color=colors,
                           hovertemplate="class %{x}: %{y:.3g}<extra></extra>"))
    fig.update_xaxes(title="class", type="category")
    fig.update_yaxes(title=y_label, range=list(y_range) if y_range is not None else None)
    fig.update_layout(title=title, height=height, margin=MARGIN, showlegend=False)
    return fig


def _tiled_figure(f: np.ndarray, labels: Sequence[str], cols: int, pad: int,
                  title: str | None, width_px: int, max_height: int, colorscale: str | list,
                  zmin: float, zmax: float, background: str, name: str) -> go.Figure:
    """Scaled pictures `f: (N, h, w)` tiled in `rows` × `cols` with `pad` empty pixels around
    each, as one heatmap; an invisible marker at each centre (trace 1) shows its label on
    hover. The height fits a figure drawn `width_px` wide, at most `max_height`."""
    n, h, w = f.shape
    rows = max(1, math.ceil(n / cols))
    tiles = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        tiles[pad + r * (h + pad):pad + r * (h + pad) + h,
              pad + c * (w + pad):pad + c * (w + pad) + w] = f[i]
    fig = go.Figure(go.Heatmap(z=tiles, colorscale=colorscale, zmin=zmin, zmax=zmax, showscale=False,
                               hoverinfo="skip", name=name))
    r, c = np.divmod(np.arange(n), cols)
    fig.add_trace(go.Scatter(
        x=pad + c * (w + pad) + (w - 1) / 2.0, y=pad + r * (h + pad) + (h - 1) / 2.0,
        mode="markers", text=list(labels)[:n], hovertemplate="%{text}<extra></extra>",
        marker=dict(symbol="square", size=max(6.0, 0.9 * w * width_px / tiles.shape[1]),
                    color="rgba(0,0,0,0)"), showlegend=False, name="labels"))
    H, W = tiles.shape
    fig.update_yaxes(range=[H - 0.5, -0.5], scaleanchor="x", visible=False, constrain="domain")
    fig.update_xaxes(range=[-0.5, W - 0.5], visible=False, constrain="domain")
    height = int(min(max_height, H * width_px / W + (40 if title else 0)))
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=40 if title else 0, b=0),
                      plot_bgcolor=background, hovermode="closest")
    return fig


def gallery_figure(images: np.ndarray, labels: Sequence[str], cols: int, pad: int = 2,
                   title: str | None = None, width_px: int = 440,
                   max_height: int = 1200) -> go.Figure:
    """Pictures `(N, h, w)` in rows of `cols`, each scaled to [-1, 1] as in `tile_filters`
    (an all-NaN picture is an empty cell); hovering a picture shows its label (an invisible
    marker at each centre, trace 1). The height fits a figure drawn `width_px` wide."""
    f = np.asarray(images, dtype=np.float32)
    n, h, w = f.shape
    cols = max(1, int(cols))  # kept when n < cols, so one picture is as small as many
    m = np.abs(np.nan_to_num(f)).reshape(n, -1).max(axis=1)
    f = f / np.where(m > 0, m, 1.0)[:, None, None]
    return _tiled_figure(f, labels, cols, pad, title, width_px, max_height, GREY, -1, 1,
                         "#808080", "pictures")


def code_bars_figure(z: np.ndarray, units: np.ndarray, kinds: Sequence[str],
                     title: str | None = None, y_max: float | None = None,
                     height: int = 260) -> go.Figure:
    """The code values `z (K,)` of the listed `units (K,)` as bars, coloured by each unit's kind
    ("part", "categorical" or "between", see KIND_COLORS)."""
    v = np.asarray(z, dtype=float)
    u = np.asarray(units)
    fig = go.Figure()
    for kind, color in KIND_COLORS.items():
        idx = [i for i, k in enumerate(kinds) if k == kind]
        fig.add_trace(go.Bar(x=[str(int(u[i])) for i in idx], y=v[idx], name=kind,
                             marker_color=color,
                             hovertemplate="unit %{x}: z = %{y:.3g}<extra>" + kind + "</extra>"))
    fig.update_xaxes(title="unit", type="category", categoryorder="array",
                     categoryarray=[str(int(x)) for x in u], showticklabels=u.size <= 60)
    fig.update_yaxes(title="z", range=[0, y_max] if y_max else None)
    fig.update_layout(title=title, height=height, margin=MARGIN, bargap=0.1,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


def iterations_heatmap_figure(codes: np.ndarray, units: np.ndarray, t: int | None = None,
                              title: str | None = None, height: int = 300) -> go.Figure:
    """The code after each iteration: rows t = 1..T, columns the listed `units`;
    codes: (T, K). Iteration `t` (1-based) is outlined."""
    z = np.asarray(codes, dtype=float)
    T, K = z.shape
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(int(u)) for u in units], y=np.arange(1, T + 1), colorscale="Blues", zmin=0,
        colorbar=dict(title="z", thickness=12),
        hovertemplate="t = %{y}, unit %{x}: z = %{z:.3g}<extra></extra>"))
    if t is not None and 1 <= t <= T:
        fig.add_shape(type="rect", xref="x domain", x0=0, x1=1, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color="#ff2b2b", width=2))
    fig.update_xaxes(title="unit", type="category", showticklabels=K <= 60)
    fig.update_yaxes(title="iteration t", autorange="reversed", dtick=1 if T <= 20 else None)
    fig.update_layout(title=title, height=height, margin=MARGIN)
    return fig


def confusion_figure(counts: np.ndarray, labels: Sequence[str] | None = None,
                     title: str | None = None, height: int = 420) -> go.Figure:
    """A confusion matrix `(n, n)` (row = true class, column = predicted) as a heatmap with the
    counts written in; the colour is the share of each true class, so rows compare."""
    c = np.asarray(counts, dtype=float)
    names = list(labels) if labels is not None else [str(k) for k in range(c.shape[0])]
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1.0)
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, text=c.astype(int), texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share of row", thickness=12),
        hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.1%})<extra></extra>"))
    fig.update_xaxes(title="predicted class", type="category", side="bottom")
    fig.update_yaxes(title="true class", type="category", autorange="reversed",
                     scaleanchor="x", constrain="domain")
    fig.update_layout(title=title, height=height, margin=MARGIN)
    return fig


def code_error_figure(curves: Mapping[str, np.ndarray], title: str | None = None,
                      y_label: str = "relative code error ‖zᵗ − z*‖² / ‖z*‖²",
                      height: int = 380) -> go.Figure:
    """Code error against iterations t = 1, 2, … for each method `{name: errors (n,)}`, log y;
    a short curve (an unrolled encoder's T steps) is drawn with markers."""
    fig = go.Figure()
    for name, errors in curves.items():
        e = np.asarray(errors, dtype=float)
        fig.add_trace(go.Scatter(
            x=np.arange(1, e.size + 1), y=np.where(e > 0, e, np.nan), name=name,
            mode="lines+markers" if e.size <= 20 else "lines",
            line=dict(width=3 if e.size <= 20 else 1.5),
            hovertemplate=name + ", t = %{x}: %{y:.3g}<extra></extra>"))
    fig.update_xaxes(title="iterations t")
    fig.update_yaxes(title=y_label, type="log", dtick=1, exponentformat="power")
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


# --- convolutional models -----------------------------------------------------------------

POOLED_COLOR = "#ff7f0e"
UNPOOLED_COLOR = "#1f77b4"


def maps_figure(maps: np.ndarray, labels: Sequence[str], cols: int, pad: int = 2,
                title: str | None = None, width_px: int = 440,
                max_height: int = 1200) -> go.Figure:
    """Non-negative maps `(N, h, w)` (e.g. a conv model's feature maps of one image) in rows of
    `cols`, each from 0 (dark) to its own largest value (bright), so a weak map's pattern shows
    as well as a strong one's; an all-zero map stays dark. Hovering a map shows its label
    (an invisible marker at each centre, trace 1)."""
    f = np.maximum(np.asarray(maps, dtype=np.float32), 0.0)
    n, h, w = f.shape
    cols = max(1, int(cols))
    m = f.reshape(n, -1).max(axis=1)
    f = f / np.where(m > 0, m, 1.0)[:, None, None]
    return _tiled_figure(f, labels, cols, pad, title, width_px, max_height, "Viridis",
                         0, 1, "#ffffff", "maps")


def invariance_figure(xs: np.ndarray, curves: Mapping[str, np.ndarray],
                      live: Mapping[str, np.ndarray] | None = None, x_title: str = "",
                      x_text: Sequence[str] | None = None, title: str | None = None,
                      colors: Mapping[str, str] | None = None,
                      height: int = 340) -> go.Figure:
    """Responses against a stimulus parameter `xs (n,)` for each kind of unit
    `{kind: curves (U, n)}`: each live unit's curve divided by its own largest value, as a
    thin line, and their mean as a thick one (named after the kind), so a flat curve is an
    invariant unit. `live`: `{kind: (U,) bool}` (default: all); `x_text`: tick labels
    for `xs` (e.g. shifts as "(dy, dx)")."""
    default = {"unpooled": UNPOOLED_COLOR, "pooled": POOLED_COLOR}
    fig = go.Figure()
    x = np.asarray(xs, dtype=float)
    for j, (kind, c) in enumerate(curves.items()):
        color = (colors or {}).get(kind) or default.get(kind) or \
            ["#2ca02c", "#d62728", "#9467bd"][j % 3]
        r = np.maximum(np.asarray(c, dtype=float), 0.0)
        keep = np.ones(r.shape[0], bool) if live is None or kind not in live \
            else np.asarray(live[kind], bool)
        top = r.max(axis=1)
        keep &= top > 0
        norm = r[keep] / top[keep, None]
        for i, row in zip(np.flatnonzero(keep), norm, strict=True):
            fig.add_trace(go.Scatter(
                x=x, y=row, mode="lines", line=dict(color=color, width=0.8), opacity=0.35,
                legendgroup=kind, showlegend=False, name=f"{kind} unit {i}",
                hovertemplate=f"{kind} unit {i}: %{{y:.2f}}<extra></extra>"))
        if norm.shape[0]:
            fig.add_trace(go.Scatter(
                x=x, y=norm.mean(0), mode="lines+markers", line=dict(color=color, width=3),
                legendgroup=kind, name=f"{kind} (mean of {norm.shape[0]})",
                hovertemplate=f"{kind}, mean: %{{y:.2f}}<extra></extra>"))
    if x_text is not None:
        fig.update_xaxes(tickmode="array", tickvals=x, ticktext=list(x_text),
                         tickangle=-90 if len(x_text) > 10 else None, tickfont=dict(size=9))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="response / unit's largest", range=[0, 1.05])
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig
