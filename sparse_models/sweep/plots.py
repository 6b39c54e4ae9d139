"""Plotly figures of a sweep's results (house style 9: numbers in, figures out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

MARGIN = dict(l=10, r=10, t=50, b=10)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2")


def _axis_value(v: Any) -> Any:
    """Numbers stay numbers; anything else (a list such as a map shape, a word) becomes text."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v if isinstance(v, str) else json.dumps(v)
    return v


def sweep_scatter_figure(points: Sequence[dict[str, Any]], trials: Sequence[dict[str, Any]],
                         x_label: str, y_label: str, group_label: str | None = None,
                         reference: tuple[float, str] | None = None) -> go.Figure:
    """Mean ± s.d. over seeds against a setting, one line per value of `group_label`'s setting,
    with every trial as a faint dot (its run name on hover).

    points: `results.mean_sd_over_seeds` output ({group, x, mean, sd, n}).
    trials: {group, x, y, run} per completed trial.
    reference: (y, label) of a horizontal line, e.g. (π, "V1 and random maps: π")."""
    fig = go.Figure()
    groups: list[Any] = []
    for p in points:
        if p["group"] not in groups:
            groups.append(p["group"])
    for i, g in enumerate(groups):
        colour = COLOURS[i % len(COLOURS)]
        name = f"{group_label} = {_axis_value(g)}" if group_label else "mean ± s.d."
        mine = [t for t in trials if t["group"] == g]
        fig.add_trace(go.Scatter(
            x=[_axis_value(t["x"]) for t in mine], y=[t["y"] for t in mine], mode="markers",
            marker=dict(color=colour, size=7, opacity=0.35), name=f"{name}: trials",
            customdata=[t["run"] for t in mine], showlegend=False,
            hovertemplate="%{customdata}<br>%{x}: %{y:.4g}<extra></extra>"))
        ps = [p for p in points if p["group"] == g]
        fig.add_trace(go.Scatter(
            x=[_axis_value(p["x"]) for p in ps], y=[p["mean"] for p in ps],
            error_y=dict(type="data", array=[p["sd"] for p in ps], visible=True),
            mode="lines+markers", marker=dict(color=colour, size=10), line=dict(color=colour),
            name=name, customdata=[[p["sd"], p["n"]] for p in ps],
            hovertemplate=("%{x}: %{y:.4g} ± %{customdata[0]:.2g} (n = %{customdata[1]})"
                           "<extra>" + name + "</extra>")))
    xs = sorted({_axis_value(p["x"]) for p in points}, key=str)
    if len(xs) <= 12 and all(isinstance(v, int | float) for v in xs):
        fig.update_xaxes(tickvals=sorted(xs))  # the swept values, not ticks in between
    if reference is not None:
        fig.add_hline(y=reference[0], line_dash="dot", line_color="grey",
                      annotation_text=reference[1], annotation_position="top left")
    fig.update_layout(title=f"{y_label} against {x_label} (mean ± s.d. over seeds)",
                      xaxis_title=x_label, yaxis_title=y_label, margin=MARGIN, height=420,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def parallel_coordinates_figure(columns: dict[str, Sequence[float]], colour_by: str) -> go.Figure:
    """One line per completed trial through every chosen setting and result, coloured by
    `colour_by` (a key of `columns`). Non-numeric columns must be encoded by the caller."""
    dims = [dict(label=k, values=list(v)) for k, v in columns.items()]
    fig = go.Figure(go.Parcoords(
        line=dict(color=list(columns[colour_by]), colorscale="Viridis", showscale=True,
                  colorbar=dict(title=colour_by)),
        dimensions=dims))
    fig.update_layout(margin=dict(l=60, r=60, t=60, b=20), height=420,
                      title=f"Every trial, coloured by {colour_by}")
    return fig
