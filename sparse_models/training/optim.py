"""Adam (with decoupled weight decay) and SGD (with momentum) for the trainer.

The update rules are torch.optim's `AdamW` (Loshchilov & Hutter, ICLR 2019, on Kingma & Ba's Adam,
ICLR 2015) and `SGD` (momentum without dampening, weight decay added to the gradient), and so is
the `state_dict` layout, so checkpoints written with torch.optim load here and the other way round.
Why our own: every torch.optim optimiser imports `torch._dynamo` the first time it is built or
stepped, 2 s or more of a 2-core machine in every new process (each `train` command, each sweep
worker), for a compiler the trainer never uses. The updates are a handful of `torch._foreach_*`
calls a parameter group, the same kernels torch.optim's foreach path runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class Optimizer:
    """The part of torch.optim.Optimizer's interface the trainer and models use: `param_groups`
    (dicts with "params", "lr" and the rule's settings; models may keep keys of their own
    there), `state` (per parameter), `zero_grad`, `step`, `state_dict`, `load_state_dict`.
    `lr_scale` multiplies every group's rate: the trainer's learning-rate schedule sets it before
    each step (it is not saved: the schedule recomputes it from the step number)."""

    lr_scale: float = 1.0

    defaults: dict[str, Any]

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        groups = list(params)
        if not groups:
            raise ValueError("the optimiser was given no parameters")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for g in groups:
            ps = [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])
            for p in ps:
                if id(p) in seen:
                    raise ValueError("a parameter appears in more than one parameter group")
                seen.add(id(p))
            self.param_groups.append({**self.defaults, **g, "params": ps})
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient, group by group."""
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if params:
                self._update(g, params)

    def _update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        raise NotImplementedError

    # --- saving and loading (torch.optim's layout: parameters numbered across the groups) -------
    def state_dict(self) -> dict[str, Any]:
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": [index[id(p)] for p in g["params"]]})
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"the saved optimiser state has {len(saved)} parameter group(s), "
                             f"this model {len(self.param_groups)}")
        by_index: dict[int, torch.Tensor] = {}
        for g, s in zip(self.param_groups, saved, strict=True):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"a saved parameter group has {len(s['params'])} parameter(s), "
                                 f"this model's {len(g['params'])}")
            by_index.update((int(i), p) for i, p in zip(s["params"], g["params"], strict=True))
        self.param_groups = [{**s, "params": g["params"]}
                             for g, s in zip(self.param_groups, saved, strict=True)]
        self.state = {}
        for i, values in state_dict.get("state", {}).items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(f"the saved optimiser state names parameter {i}, which no "
                                 f"group holds")
            self.state[p] = {k: self._cast(k, v, p) for k, v in values.items()}

    @staticmethod
    def _cast(name: str, v: Any, p: torch.Tensor) -> Any:
        if not isinstance(v, torch.Tensor):
            return v
        if name == "step":  # a count: float32 on the CPU, as torch.optim keeps it
            return v.detach().to("cpu", torch.float32).clone()
        return v.detach().to(p.device, p.dtype).clone()


class AdamW(Optimizer):
    """Adam with weight decay decoupled from the adaptive step (none: plain Adam).

    Per parameter, with gradient g, step t:  p ← p·(1 − lr·wd);  m ← β₁m + (1 − β₁)g;
    v ← β₂v + (1 − β₂)g²;  p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay})

    def _update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32),
                                 "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p)}
        # parameters of one group step together, except where one had no gradient once
        by_step: dict[float, list[torch.Tensor]] = {}
        for p in params:
            s = self.state[p]["step"]
            s += 1
            by_step.setdefault(float(s), []).append(p)
        lr, (b1, b2), eps, wd = (group["lr"] * self.lr_scale, group["betas"], group["eps"],
                                 group["weight_decay"])
        for t, ps in by_step.items():
            grads = [p.grad for p in ps]
            m = [self.state[p]["exp_avg"] for p in ps]
            v = [self.state[p]["exp_avg_sq"] for p in ps]
            if wd:
                torch._foreach_mul_(ps, 1.0 - lr * wd)
            torch._foreach_lerp_(m, grads, 1.0 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, 1.0 - b2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, math.sqrt(1.0 - b2 ** t))
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(ps, m, denom, -lr / (1.0 - b1 ** t))


class SGD(Optimizer):
    """Stochastic gradient descent: d = g + wd·p;  with momentum μ, b ← μb + d (b = d at the
    first step) and d = b;  p ← p − lr·d."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def _update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        lr, mu, wd = group["lr"] * self.lr_scale, group["momentum"], group["weight_decay"]
        grads = [p.grad for p in params]
        if wd:
            grads = torch._foreach_add(grads, params, alpha=wd)
        if mu:
            d = []
            for p, grad in zip(params, grads, strict=True):
                buf = self.state.setdefault(p, {}).get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = grad.detach().clone()
                else:
                    buf.mul_(mu).add_(grad)
                d.append(buf)
            grads = d
        torch._foreach_add_(params, grads, alpha=-lr)


__all__ = ["SGD", "AdamW", "Optimizer"]
