"""The lateral-inhibition energy and its minimisation, as standalone functions (Gregor, Szlam &
LeCun, NIPS 2011, "Structured sparse coding via lateral inhibition"; the model is `lateral.py`).

    E(x, z) = ½‖x − zD‖² + λ‖z‖₁ + |z|ᵀ S |z|       x: (P,), z: (N,), D: (N, P), S: (N, N)

with S symmetric, non-negative and zero on the diagonal.

Inference: z* = argmin_z E(x, z) per row of a batch, by a monotone proximal-gradient scheme.
With f(z) = ½‖x − zD‖² (gradient Lipschitz constant L = ‖D‖²) and u = |z|, the inhibition
term is linearised in u at the current z⁰:

    uᵀSu = u⁰ᵀSu⁰ + 2(Su⁰)ᵀ(u − u⁰) + (u − u⁰)ᵀS(u − u⁰)

The last term is ≤ |z − z⁰|ᵀ S |z − z⁰| ≤ ρ‖z − z⁰‖² (S ≥ 0, ||zᵢ| − |z⁰ᵢ|| ≤ |zᵢ − z⁰ᵢ|, ρ the
largest row sum of S, which bounds its spectral radius). So with step 1/(L + 2ρ) the ISTA step
whose unit-i threshold is raised to λ + 2(S|z⁰|)ᵢ,

    z ← shrink(z⁰ − ∇f(z⁰)/L', (λ + 2 S|z⁰|)/L'),

minimises a majoriser of E that touches it at z⁰: E never increases (a majorise-minimise step;
the factor 2 is the derivative of |z|ᵀS|z| for this energy, which has no ½ on the S term). The
term |z|ᵀS|z| is not convex, so plain ISTA with the global step 1/L carries no such guarantee.
Each iteration therefore tries, per row, a FISTA-like step from the momentum point with step
1/L (fast when it works), keeps it only where the energy is no higher than before, and
elsewhere takes the step from z⁰ with 1/L, and where even that raises the energy the
guaranteed step 1/(L + 2ρ) (or keeps z⁰ if rounding defeats that). The energy of every row is
therefore non-increasing over the iterations. With S = 0 this is FISTA with a monotone
safeguard: the lasso's codes.

`s_ascent_step` is the model's learning step for S: gradient ascent on E, projected back onto S's
constraints.
"""

from __future__ import annotations

import torch

from .penalties import lipschitz


def rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vecdot(a, b)


def l1_term(a: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """λ‖z‖₁ per row from a = |z|, with λ a number or one weight per unit (N,)."""
    return lam * a.sum(-1) if isinstance(lam, int | float) else rowdot(a, lam)


def lateral_energy(x: torch.Tensor, D: torch.Tensor, S: torch.Tensor, z: torch.Tensor,
                   lam: float | torch.Tensor) -> torch.Tensor:
    """E(x, z) per row, (B,): ½‖x − zD‖² + λ‖z‖₁ + |z|ᵀS|z| (computed directly); λ a number or
    one weight per unit (N,)."""
    r = x - z @ D
    a = z.abs()
    return 0.5 * rowdot(r, r) + l1_term(a, lam) + rowdot(a @ S, a)


@torch.no_grad()
def lateral_solve(x: torch.Tensor, D: torch.Tensor, S: torch.Tensor, lam: float | torch.Tensor,
                  n_iter: int = 50, z0: torch.Tensor | None = None, L: float | None = None,
                  accelerate: bool = True, record: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Minimise E(x, ·) per row by the monotone scheme of this module's docstring.

    x: (B, P), D: (N, P), S: (N, N) symmetric non-negative, zero diagonal; z0: (B, N) a warm
    start (zeros when None); lam: a number, or one weight per unit (N,) (every formula below
    holds unit by unit). Returns z: (B, N) and, with `record`, the energy of every row after
    each iteration, (n_iter + 1, B) (row 0: at the start), as the solver computes it.
    `accelerate=False` drops the momentum candidate (plain ISTA steps with the safeguard).
    """
    B, N = x.shape[0], D.shape[0]
    L = float(L or lipschitz(D)) or 1.0
    rho = float(S.sum(1).max()) if N else 0.0  # ≥ the spectral radius of S ≥ 0
    G = D @ D.T
    b = x @ D.T
    half_xx = 0.5 * rowdot(x, x)
    z = x.new_zeros(B, N) if z0 is None else z0.clone()

    def grads(zz: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇f(zz) = zzG − b, S|zz|) for codes zz of the given rows (all when None)."""
        return torch.addmm(b if rows is None else b[rows], zz, G, beta=-1.0), zz.abs() @ S

    def energy(zz: torch.Tensor, g: torch.Tensor, sa: torch.Tensor) -> torch.Tensor:
        """E per row; ½‖x − zD‖² = ½‖x‖² + ½ z·(zG − b) − ½ z·b."""
        a = zz.abs()
        return half_xx + 0.5 * rowdot(zz, g - b) + rowdot(a, sa + lam)

    def change(c, gc, sc, zz, g, sa):
        """E(c) − E(zz) per row, from differences only (so it keeps its precision when both
        energies are large and close): f is quadratic, so f(c) − f(z) = ½(c − z)·(∇f(c) + ∇f(z)),
        and S is symmetric, so |c|ᵀS|c| − |z|ᵀS|z| = (|c| − |z|)·(S|c| + S|z|)."""
        return 0.5 * rowdot(c - zz, gc + g) + rowdot(c.abs() - zz.abs(), sc + sa + lam)

    def step(zz, g, sa, Lstep):
        # shrink(z − ∇f/L', (λ + 2S|z|)/L') = v − clamp(v, −θ, θ)
        v = torch.add(zz, g, alpha=-1.0 / Lstep)
        theta = sa.mul(2.0 / Lstep).add_(lam / Lstep)
        return v - torch.clamp(v, -theta, theta)

    gz, sz = grads(z)
    y, gy, sy = z, gz, sz
    t = x.new_ones(B, 1)
    moving = torch.zeros(B, dtype=torch.bool, device=x.device)  # rows whose y ≠ z
    history = [energy(z, gz, sz)] if record else None
    for _ in range(n_iter):
        # 1. the candidate from the momentum point y (y = z where there is no momentum)
        c = step(y, gy, sy, L)
        gc, sc = grads(c)
        ok = change(c, gc, sc, z, gz, sz) <= 0
        first_ok = ok.clone() if accelerate else ok
        if not bool(ok.all()):
            # 2. rows where it failed and y ≠ z: the plain step from z with 1/L
            bad = (~ok & moving).nonzero().squeeze(-1)
            if bad.numel():
                c2 = step(z[bad], gz[bad], sz[bad], L)
                g2, s2 = grads(c2, bad)
                c[bad], gc[bad], sc[bad] = c2, g2, s2
                ok[bad] = change(c2, g2, s2, z[bad], gz[bad], sz[bad]) <= 0
            # 3. rows where that failed too: the guaranteed step 1/(L + 2ρ)
            bad = (~ok).nonzero().squeeze(-1)
            if bad.numel() and rho > 0:
                c3 = step(z[bad], gz[bad], sz[bad], L + 2.0 * rho)
                g3, s3 = grads(c3, bad)
                c[bad], gc[bad], sc[bad] = c3, g3, s3
                ok[bad] = change(c3, g3, s3, z[bad], gz[bad], sz[bad]) <= 0
            # 4. rows where rounding defeated even that keep their z
            bad = (~ok).nonzero().squeeze(-1)
            if bad.numel():
                c[bad], gc[bad], sc[bad] = z[bad], gz[bad], sz[bad]
        if accelerate:
            # FISTA's momentum, reset where this iteration's first candidate failed
            t_new = torch.where(first_ok[:, None], (1 + torch.sqrt(1 + 4 * t * t)) / 2, 1.0)
            mom = (t - 1) / t_new * first_ok[:, None]
            moving = (mom > 0).squeeze(-1)
            y = torch.addcmul(c, mom, c - z)
            gy = torch.addcmul(gc, mom, gc - gz)  # ∇f is affine
            sy = y.abs() @ S
            t = t_new
        else:
            y, gy, sy = c, gc, sc
        z, gz, sz = c, gc, sc
        if record:
            history.append(energy(z, gz, sz))
    return z, (torch.stack(history) if record else None)


def s_ascent_step(S: torch.Tensor, codes: torch.Tensor, lr: float, pattern: torch.Tensor,
                  s_max: float) -> torch.Tensor:
    """One gradient-ascent step of E on S, projected: S + lr·mean_b |z_b|ᵀ|z_b| made symmetric,
    clipped to [0, s_max], zero outside `pattern` (N, N) bool and on the diagonal. A new tensor."""
    a = codes.abs()
    grad = a.T @ a / max(codes.shape[0], 1)  # ∂E/∂S (mean over the batch)
    new = S + lr * grad
    new = 0.5 * (new + new.T)
    new = new.clamp(0.0, s_max) * pattern.to(new.dtype)
    return new.fill_diagonal_(0.0)
