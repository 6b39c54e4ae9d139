"""A sweep's definition and its trials: which settings take which values, for which seeds.

    python -m sparse_models sweep topographic --grid group.size=3,5 --grid lam=0.1,0.3 --seeds 2

A sweep is the cross product of its grid (each `--grid key=v1,v2,...`), its random draws
(`--random key=lo:hi --samples N`: N points drawn uniformly, integers for integer settings) and
its seeds (`train.seed` and, where the model has one, `model.seed` = 0..K-1), on top of fixed
`--set key=value` settings. Keys and values are checked by the same code as `train --set`
(`presets.build_run_config`), so an unknown key or a wrong-typed value gives the same error,
naming the flag it came from. Every trial's config is built and validated before anything runs.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import ConfigError, parse_value

DEFAULT_MAX_TRIALS = 64  # more trials than this need --yes (or a higher --max-trials)
SEED_KEYS = ("train.seed", "model.seed")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its id (t000, t001, ...), the swept settings, the seed, its run's name."""

    id: str
    settings: dict[str, Any]  # canonical key (model.lam) -> value, the swept ones only
    seed: int
    run: str

    def overrides(self, fixed: dict[str, Any], seed_keys: tuple[str, ...]) -> dict[str, Any]:
        """Everything `build_run_config` needs on top of the model's defaults."""
        return {**fixed, **self.settings, **{k: self.seed for k in seed_keys}}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "settings": self.settings, "seed": self.seed, "run": self.run}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trial:
        return cls(id=str(d["id"]), settings=dict(d["settings"]), seed=int(d["seed"]),
                   run=str(d["run"]))


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. `grid`: key -> values; `random`: key -> (lo, hi); `fixed`: key -> value."""

    model: str
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, tuple[float, float]] = field(default_factory=dict)
    samples: int = 0  # random draws (only with `random`)
    seeds: int = 1
    fixed: dict[str, Any] = field(default_factory=dict)
    random_seed: int = 0  # seeds the random draws, so the same definition gives the same trials

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "grid": self.grid,
                "random": {k: list(v) for k, v in self.random.items()}, "samples": self.samples,
                "seeds": self.seeds, "fixed": self.fixed, "random_seed": self.random_seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        return cls(model=str(d["model"]), grid={k: list(v) for k, v in d["grid"].items()},
                   random={k: (float(v[0]), float(v[1])) for k, v in d["random"].items()},
                   samples=int(d["samples"]), seeds=int(d["seeds"]), fixed=dict(d["fixed"]),
                   random_seed=int(d.get("random_seed", 0)))


# --- parsing the command line's words -------------------------------------------------------


def split_values(text: str) -> list[str]:
    """`3,5` -> ['3', '5']; commas inside brackets belong to the value (`[8,8],[12,12]`)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [v.strip() for v in out]


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`--grid key=v1,v2` flags -> {key: [v1, v2]}; ConfigError in the flag's words."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, text = (s.strip() for s in item.split("=", 1))
        if not key:
            raise ConfigError(f"--grid {item!r} names no setting")
        words = split_values(text)
        if not text.strip() or any(not w for w in words):
            raise ConfigError(f"--grid {key}= has an empty value: give one or more values "
                              f"separated by commas, e.g. --grid {key}=1,2")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one flag")
        values = [parse_value(w) for w in words]
        if len({repr(v) for v in values}) < len(values):
            raise ConfigError(f"--grid {key} lists a value twice: {text}")
        grid[key] = values
    return grid


def parse_random(items: list[str]) -> dict[str, tuple[float, float]]:
    """`--random key=lo:hi` flags -> {key: (lo, hi)}."""
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        if "=" not in item or ":" not in item.split("=", 1)[1]:
            raise ConfigError(f"--random expects key=lo:hi, e.g. lam=0.05:0.5; got {item!r}")
        key, text = (s.strip() for s in item.split("=", 1))
        lo_s, hi_s = (s.strip() for s in text.split(":", 1))
        try:
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            raise ConfigError(f"--random {key}: lo and hi must be numbers, got {text!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise ConfigError(f"--random {key}: need finite numbers with lo < hi, got {text!r}")
        if key in out:
            raise ConfigError(f"--random {key} is given twice")
        out[key] = (lo, hi)
    return out


# --- expanding and checking ----------------------------------------------------------------


def _sections_for(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    from ..presets import build_run_config, default_sections, run_config_sections

    default_sections(spec.model)  # unknown model -> a clear error first
    return run_config_sections(build_run_config(spec.model, spec.fixed))


def _value_at(sections: dict[str, Any], key: str) -> Any:
    node: Any = sections
    for p in key.split("."):
        node = node[p]
    return node


def seed_keys(model: str) -> tuple[str, ...]:
    """The settings a sweep's seed sets: train.seed, and model.seed where the model has one."""
    from ..presets import default_sections

    return tuple(k for k in SEED_KEYS
                 if k == "train.seed" or "seed" in default_sections(model)["model"])


def expand(spec: SweepSpec, name: str, max_trials: int | None = DEFAULT_MAX_TRIALS,
           confirmed: bool = False) -> tuple[list[Trial], dict[str, Any], tuple[str, ...]]:
    """The trials of `spec`, every one's config built and checked; the canonical fixed settings;
    the settings each trial's seed goes to (none for a one-seed sweep: its settings' own seed).
    ConfigError, in the CLI's words, for: an unknown model or key, an empty sweep, a key swept
    twice or both swept and seeded, a value the setting refuses, and more trials than
    `max_trials` unless `confirmed`."""
    from ..presets import build_run_config, resolve_key

    if not spec.grid and not spec.random:
        raise ConfigError("the sweep is empty: give at least one --grid key=v1,v2,... or "
                          "--random key=lo:hi with --samples N")
    if spec.random and spec.samples < 1:
        raise ConfigError("--random needs --samples N (how many points to draw), N ≥ 1")
    if spec.samples and not spec.random:
        raise ConfigError("--samples is the number of --random draws; give a --random key=lo:hi")
    if not isinstance(spec.seeds, int) or spec.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {spec.seeds}")
    sections = _sections_for(spec)
    seeded = seed_keys(spec.model)

    def canonical(key: str, flag: str) -> str:
        try:
            return resolve_key(key, sections)
        except ConfigError as exc:
            raise ConfigError(f"{flag} {key}: {exc}") from None

    grid = {canonical(k, "--grid"): v for k, v in spec.grid.items()}
    rand = {canonical(k, "--random"): v for k, v in spec.random.items()}
    fixed = {canonical(k, "--set"): v for k, v in spec.fixed.items()}
    swept = list(grid) + list(rand)
    if len(grid) < len(spec.grid) or len(rand) < len(spec.random):
        raise ConfigError("a setting is swept twice under two names (e.g. lam and model.lam)")
    for key in swept:
        if swept.count(key) > 1:
            raise ConfigError(f"{key} is swept twice (once per flag is enough)")
    for key in [*swept, *fixed]:
        if key in seeded and spec.seeds > 1:
            raise ConfigError(f"{key} is set by --seeds {spec.seeds}; set it with --seeds "
                              f"or with --grid/--set, not both")
    for key in [*swept, *fixed]:
        if key == "train.threads":
            raise ConfigError("train.threads is set by the sweep itself (the cores shared among "
                              "the trials at a time, see --max-concurrent)")
    for key in swept:
        if key in fixed:
            raise ConfigError(f"{key} is both fixed (--set) and swept")
    for key in rand:
        default = _value_at(sections, key)
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise ConfigError(f"--random {key}: only numeric settings can be drawn at random; "
                              f"{key} is {type(default).__name__} (use --grid)")

    n = math.prod(len(v) for v in grid.values()) * max(spec.samples, 1) * spec.seeds
    if max_trials is not None and n > max_trials and not confirmed:
        raise ConfigError(f"this sweep has {n} trials, more than the limit of {max_trials}; "
                          f"pass --yes to run them all, or raise --max-trials")

    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if rand:
        rng = np.random.default_rng(spec.random_seed)
        draws = []
        for _ in range(spec.samples):
            draw = {}
            for key, (lo, hi) in rand.items():
                if isinstance(_value_at(sections, key), int):
                    draw[key] = int(rng.integers(math.ceil(lo), math.floor(hi) + 1))
                else:
                    draw[key] = float(rng.uniform(lo, hi))
            draws.append(draw)
        points = [{**p, **d} for p in points for d in draws]
    keys = seeded if spec.seeds > 1 else ()  # one seed: the settings' own seed, untouched
    trials: list[Trial] = []
    for point in points:
        for seed in range(spec.seeds):
            i = len(trials)
            if not keys:
                seed = int(point.get("train.seed", fixed.get("train.seed",
                                                              _value_at(sections, "train.seed"))))
            trials.append(Trial(id=f"t{i:03d}", settings=point, seed=seed, run=f"{name}-t{i:03d}"))
    for t in trials:  # each config checked now, not when its trial starts
        try:
            build_run_config(spec.model, t.overrides(fixed, keys))
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in t.settings.items())
            raise ConfigError(f"trial {t.id} ({shown}): {exc}") from None
    return trials, fixed, keys


def default_name(model: str) -> str:
    return f"{model}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
