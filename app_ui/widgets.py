"""Small shared widget helpers and formatting."""

from __future__ import annotations

import math
import re
from typing import Any


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'model': {'group': {'size': 5}}} -> {'model.group.size': 5}; lists become strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list | tuple):
            out[key] = "×".join(map(str, v)) if v and all(isinstance(x, int) for x in v) \
                else str(list(v))
        else:
            out[key] = v
    return out


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two flattened configs: {key: (a, b)}."""
    fa, fb = flatten(a), flatten(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def plain(text: str) -> str:
    """Text that came from the user or from files, escaped so that Streamlit's Markdown shows it
    as it is: no links, emphasis, HTML or LaTeX made out of a run name or an error message."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def fmt(v: Any, digits: int = 3) -> str:
    """A number for people: 3 significant digits, '—' when undefined."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        return f"{v:.{digits}g}"
    return str(v)
