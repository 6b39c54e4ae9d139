"""Convolutional group-sparse auto-encoder, and its stacking (Kavukcuoglu, Sermanet, Boureau,
Gregor, Mathieu & LeCun, NIPS 2010, "Learning convolutional feature hierarchies for visual
recognition").

Energy per image x: (C, H, W), with K feature maps z_k:

    E(x) = ½‖x − Σ_k D_k ⋆ z_k‖² + λ Σ_j sqrt(Σ_{i∈P_j} z_i² + ε) + μ Σ_i |z_i|
    z_k  = g_k · relu(W_k * x + b_k)          (the encoder: convolution → ReLU → per-map scale)

W, D: (K, C, k, k) encoder and decoder filters (each D_k unit norm); z: (K, H+k−1, W+k−1).
Training minimises E over W, b, g, D by backprop on whole images (the `images` data source).

Borders: the encoder sees the image zero-padded by k−1 pixels on every side, so its code maps
are k−1 larger than the image ('full' convolution), and D ⋆ z is the exact adjoint (a transposed
convolution with the same padding) cropped back to the image. Every pixel, edge or centre, is
then reconstructed by the same k² code positions: no pixel lacks units to explain it, edge
pixels do not dominate the residual, and the loss is on the whole image. Code units near the
edge see part of the image only (the rest is the padding's zeros).

Pools P_j (L2 pooling, the complex cells): `pool_maps` consecutive maps × a `pool_size`² window
of positions, windows every `pool_stride` positions. They are computed as sums of z² over the
group of maps and `avg_pool2d` over space, never as a (pools × units) matrix.

Stacking: with `layer1` = the folder of a trained (unstacked) conv run, that run's encoder and
L2 pooling are copied into this model as frozen parameters (so the stacked run's own weights
describe it, its folder needs no other) and this model's conv auto-encoder is trained on their
pooled maps: C = that run's number of pools, mean-free per image and channel, times a fixed
scale set on the first training batch (`in_scale`, saved with the weights).

The generic interface (pages, report): the units are the K maps (filters (K, C, k, k)); a code
row is one (image, position) pair, so `encode(x: (B, H·W)) -> (B·S, K)` with S positions per
image (row-major, image by image) and `decode` takes those rows back to (B, H·W) images. A
stacked model's `decode` goes from its code down to an image through its decoder, an equal
share of each pooled value to every unit of the pool, and layer 1's decoder: pooling drops
phase, so this top-down image is a rough one (its own objective is the pooled maps).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check, check_ranges, setting
from .base import SparseModel, register

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer


def out_side(n: int, k: int) -> int:
    """Code-map side of a 'full' convolution of an n-pixel side with k×k filters."""
    return n + k - 1


def pool_side(n: int, p: int, s: int) -> int:
    """Pooled side of an n-side map, p-windows every s (0 when none fits)."""
    return (n - p) // s + 1 if n >= p else 0


def l2_pool(z: torch.Tensor, maps: int, size: int, stride: int, eps: float = 0.0) -> torch.Tensor:
    """L2 pooling sqrt(Σ_{i∈P_j} z_i² + eps): z (B, K, h, w) -> (B, K/maps, h', w')."""
    B, K, h, w = z.shape
    q = (z * z).reshape(B, K // maps, maps, h, w).sum(2)
    if size > 1 or stride > 1:
        q = F.avg_pool2d(q, size, stride) * (size * size)
    return torch.sqrt(q + eps)


@dataclass(frozen=True)
class ConvConfig:
    input_shape: tuple[int, int] = setting((32, 32), label="Image (h, w)", form=False)
    maps: int = setting(16, label="Feature maps K", min=1, max=256, shape=True,
                        help="Number of convolution filters (feature maps).")
    kernel: int = setting(9, label="Filter size k (px)", min=1, max=32, shape=True,
                          help="Side of each square filter.")
    pool_maps: int = setting(1, label="Maps per pool", min=1, max=256,
                             help="Each L2 pool takes this many consecutive maps together "
                                  "(groups of maps); must divide K.")
    pool_size: int = setting(5, label="Pool window (positions)", min=1, max=64,
                             help="Side of the square neighbourhood of positions one pool "
                                  "covers.")
    pool_stride: int = setting(2, label="Pool stride (positions)", min=1, max=64,
                               help="Distance between neighbouring pools' windows.")
    lam: float = setting(0.3, label="λ (group-sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the L2-pooling penalty.")
    l1: float = setting(0.0, label="Extra L1 weight μ", min=0.0, max=100.0,
                        help="Adds μ·Σ|z| on top of the group penalty.")
    encoder_decay: float = setting(0.1, label="Encoder weight decay", min=0.0, max=100.0,
                                   help="Decoupled weight decay on the encoder filters: clears "
                                        "the directions whitening leaves empty.")
    eps: float = setting(1e-4, label="ε inside each pool's square root", min=1e-12, max=1.0)
    layer1: str = setting("", label="Layer-1 run (stacking)",
                          help="The folder of a trained conv run: its encoder and L2 pooling "
                               "are frozen and this model learns from their pooled output. "
                               "Empty: a first layer, learning from the images.")
    # (K, k, pool_maps, pool_size, pool_stride) of the frozen layer 1, read from its run when
    # the config is made, so the stacked run is rebuilt without that run's folder.
    layer1_arch: tuple[int, ...] = setting((), label="Layer-1 shape", form=False)
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check_ranges(self, "model.")
        check(len(self.input_shape) == 2 and min(self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(self.maps % self.pool_maps == 0,
              f"maps per pool ({self.pool_maps}) must divide the number of maps ({self.maps})")
        check(len(self.layer1_arch) in (0, 5),
              f"model.layer1_arch must be empty or (K, k, pool_maps, pool_size, pool_stride), "
              f"got {self.layer1_arch!r}")
        check(not self.layer1_arch or bool(self.layer1),
              "model.layer1_arch is set but model.layer1 names no layer-1 run")
        if self.layer1_arch:
            K1, k1, g1, p1, s1 = self.layer1_arch
            check(min(self.layer1_arch) >= 1 and K1 % g1 == 0,
                  f"model.layer1_arch {self.layer1_arch!r} is not a conv layer's shape")
        h, w = self.input_side
        k = self.kernel
        check(k <= min(h, w), f"the {k}×{k} filter is larger than the {h}×{w} "
                              f"{'pooled map' if self.layer1 else 'image'}; use a smaller "
                              f"model.kernel or a larger crop")
        hz, wz = out_side(h, k), out_side(w, k)
        p, s = self.pool_size, self.pool_stride
        check(p <= min(hz, wz),
              f"pools of {p}×{p} positions do not fit the {hz}×{wz} code maps: lower "
              f"model.pool_size")
        check(s <= p, f"pool stride {s} is larger than the pool window {p}: some positions "
                      f"would be in no pool")

    @property
    def stacked(self) -> bool:
        return bool(self.layer1)

    @property
    def in_channels(self) -> int:
        """Channels this model's own convolution sees: 1 (images) or layer 1's pools."""
        return self.layer1_arch[0] // self.layer1_arch[2] if self.layer1_arch else 1

    @property
    def input_side(self) -> tuple[int, int]:
        """(h, w) of what this model's own convolution sees: the image, or layer 1's pooled
        maps of it (before layer 1 is known: the image)."""
        h, w = (int(v) for v in self.input_shape)
        if not self.layer1_arch:
            return h, w
        _, k1, _, p1, s1 = self.layer1_arch
        return pool_side(out_side(h, k1), p1, s1), pool_side(out_side(w, k1), p1, s1)


@register
class ConvAutoencoder(SparseModel):
    name = "conv"
    Config = ConvConfig
    description = ("Convolutional auto-encoder with L2 pooling as its group sparsity, trained "
                   "on whole images; stackable (a second layer on the pooled maps).")
    blurb = ("The encoder is a convolution → ReLU → a learned scale per map; the decoder is "
             "linear (a transposed convolution); the regulariser is group sparsity over "
             "**L2 pools** of maps and neighbouring positions, the complex cells of "
             "Kavukcuoglu et al. (NIPS 2010). Trained convolutionally on whole images, the "
             "filters are edges, centre-surrounds, corners and gratings; the encoder plus L2 "
             "pooling is a feature extractor whose pooled outputs are invariant to phase and "
             "small shifts, and a second layer trained on them gives a two-layer net "
             "(set *Layer-1 run*).")
    energy_latex = (r"E(x)=\tfrac12\lVert x-\textstyle\sum_k D_k\star z_k\rVert^2+\lambda\sum_j"
                    r"\sqrt{\textstyle\sum_{i\in P_j}z_i^2}+\mu\lVert z\rVert_1,\quad "
                    r"z_k=g_k\,\mathrm{relu}(W_k*x+b_k)")
    paper = ("Kavukcuoglu, Sermanet, Boureau, Gregor, Mathieu & LeCun, NIPS 2010 (learning "
             "convolutional feature hierarchies)")
    filter_notes = {"encoder": "Encoder filters W (the detectors); for a stacked model, one "
                               "channel per layer-1 pool."}
    preset = {"data": {"source": "images", "crop": 32, "n_crops": 4000, "n_test": 200},
              "train": {"steps": 600, "batch_size": 32, "lr": 3e-3, "snapshot_every": 50}}
    tiny = {"data.source": "images", "data.crop": 12, "data.n_crops": 32,
            "data.images": ["camera"], "model.maps": 4, "model.kernel": 3,
            "model.pool_size": 2, "train.steps": 4, "train.batch_size": 8,
            "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        K, C, k = config.maps, config.in_channels, config.kernel
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(K, C, k, k, generator=g)
        self.D = nn.Parameter(D / D.flatten(1).norm(dim=1).view(K, 1, 1, 1))  # (K, C, k, k)
        self.W = nn.Parameter(self.D.detach() / (k * k))  # (K, C, k, k) encoder, tied start
        self.b = nn.Parameter(torch.zeros(K))
        self.gain = nn.Parameter(torch.ones(K))
        # 0 until the first training batch has given the filters their start (`start_from`)
        self.register_buffer("started", torch.zeros(()))
        if config.stacked:
            self._init_layer1()

    # --- layer 1 (stacked models only) --------------------------------------------------------
    def _init_layer1(self) -> None:
        K1, k1, _, _, _ = self.config.layer1_arch
        frozen = {"W1": torch.zeros(K1, 1, k1, k1), "b1": torch.zeros(K1),
                  "gain1": torch.zeros(K1), "D1": torch.zeros(K1, 1, k1, k1)}
        for name, value in frozen.items():
            self.register_parameter(name, nn.Parameter(value, requires_grad=False))
        self.register_buffer("in_scale", torch.zeros(()))  # 0: not set yet (first batch)
        self.register_buffer("layer1_loaded", torch.zeros(()))  # 1 once layer 1 is copied in
        from .conv_stack import copy_layer1

        copy_layer1(self)  # from the layer-1 run when its folder is there (else: saved weights)

    def layer1_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen layer 1's code maps: x (B, 1, H, W) -> (B, K1, H+k1−1, W+k1−1)."""
        k1 = self.W1.shape[-1]
        u = F.conv2d(x, self.W1, self.b1, padding=k1 - 1)
        return self.gain1.view(1, -1, 1, 1) * torch.relu(u)

    def layer1_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Layer 1's L2-pooled maps: x (B, 1, H, W) -> (B, J1, Hp, Wp)."""
        _, _, g1, p1, s1 = self.config.layer1_arch
        return l2_pool(self.layer1_maps(x), g1, p1, s1)

    def layer_input(self, x: torch.Tensor) -> torch.Tensor:
        """What this model's own auto-encoder sees: the images (B, 1, H, W), or layer 1's pooled
        maps of them, mean-free per image and channel and scaled by `in_scale`."""
        if not self.config.stacked:
            return x
        with torch.no_grad():
            p = self.layer1_pooled(x)
            p = p - p.mean(dim=(2, 3), keepdim=True)
            if float(self.in_scale) == 0.0:
                self.in_scale.fill_(1.0 / float(p.pow(2).mean().sqrt().clamp_min(1e-8)))
            return p * self.in_scale

    # --- this layer ---------------------------------------------------------------------------
    def image(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images (B, H·W) as (B, 1, H, W); 4-D input is passed through."""
        if x.ndim == 4:
            return x
        h, w = self.config.input_shape
        if x.ndim != 2 or x.shape[1] != h * w:
            raise ValueError(f"{self.name} expects images of {h}×{w} = {h * w} pixels per row, "
                             f"got input of shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], 1, h, w)

    def conv_maps(self, v: torch.Tensor) -> torch.Tensor:
        """This layer's code maps z = g·relu(W * v + b): v (B, C, h, w) -> (B, K, h+k−1, w+k−1)."""
        k = self.config.kernel
        return self.gain.view(1, -1, 1, 1) * torch.relu(F.conv2d(v, self.W, self.b, padding=k - 1))

    def reconstruct_maps(self, z: torch.Tensor) -> torch.Tensor:
        """Σ_k D_k ⋆ z_k, the adjoint of the 'full' convolution: (B, K, h+k−1, w+k−1) -> (B, C, h, w)."""
        return F.conv_transpose2d(z, self.D, padding=self.config.kernel - 1)

    def pooled(self, z: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        """This layer's L2 pools of code maps z: (B, K, h, w) -> (B, K/pool_maps, h', w')."""
        c = self.config
        return l2_pool(z, c.pool_maps, c.pool_size, c.pool_stride, eps)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Code maps of images x: (B, H·W) or (B, 1, H, W) of any size ≥ the filters ->
        (B, K, ·, ·) (layer 2's for a stacked model)."""
        return self.conv_maps(self.layer_input(self.image(x)))

    def pooled_maps(self, x: torch.Tensor) -> torch.Tensor:
        """L2-pooled maps of images x -> (B, K/pool_maps, ·, ·)."""
        return self.pooled(self.feature_maps(x))

    def terms(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """The energy's terms, averaged over the batch, for this layer's input v: (B, C, h, w)."""
        c = self.config
        z = self.conv_maps(v)
        r = v - self.reconstruct_maps(z)
        B = v.shape[0]
        out = {"reconstruction": 0.5 * (r * r).sum() / B,
               "group_sparsity": c.lam * self.pooled(z, c.eps).sum() / B}
        if c.l1 > 0:
            out["l1"] = c.l1 * z.abs().sum() / B
        out["loss"] = sum(out.values())
        return out

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.config.stacked and not bool(self.layer1_loaded):
            raise ConfigError(f"the layer-1 run {self.config.layer1} is not there and this "
                              f"model holds no layer-1 weights of its own")
        return self.terms(self.layer_input(self.image(x)))

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 batch_size: int = 250) -> dict[str, float]:
        """The loss terms and the explained variance of this layer's own input (the image, or
        a stacked model's pooled maps) on held-out images x: (n, H·W)."""
        sums: dict[str, float] = {}
        resid = total = 0.0
        for s in range(0, x.shape[0], batch_size):
            v = self.layer_input(self.image(x[s:s + batch_size]))
            for k, t in self.terms(v).items():
                sums[k] = sums.get(k, 0.0) + float(t) * v.shape[0]
            resid += float(((v - self.reconstruct_maps(self.conv_maps(v))) ** 2).sum())
            total += float((v * v).sum())  # inputs are mean-free per image
        out = {k: t / x.shape[0] for k, t in sums.items()}
        # A stacked layer's own input is layer 1's pooled maps, not the image: its figure gets
        # its own name, so that "explained variance" means the image's wherever it is shown.
        key = "layer_explained_variance" if self.config.stacked else "explained_variance"
        out[key] = 1.0 - resid / total if total > 0 else float("nan")
        return out

    # --- the generic interface ----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code rows, one per (image, position): x (B, H·W) -> (B·S, K)."""
        z = self.feature_maps(x)
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    @property
    def rows_per_sample(self) -> int:
        """Code rows `encode` gives per image: one per position of the code maps."""
        hz, wz = self.code_side()
        return hz * wz

    def code_side(self) -> tuple[int, int]:
        """(rows, cols) of positions of this layer's code maps for the config's images."""
        h, w = self.config.input_side
        return out_side(h, self.config.kernel), out_side(w, self.config.kernel)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Code rows (B·S, K) back to images (B, H·W) (module docstring for a stacked model)."""
        hz, wz = self.code_side()
        if z.ndim != 2 or z.shape[1] != self.config.maps or z.shape[0] % (hz * wz):
            raise ValueError(f"{self.name} decodes rows of {self.config.maps} maps, "
                             f"{hz}×{wz} = {hz * wz} rows per image; got {tuple(z.shape)}")
        maps = z.reshape(-1, hz, wz, z.shape[1]).permute(0, 3, 1, 2)
        v = self.reconstruct_maps(maps)
        if self.config.stacked:
            from .conv_stack import top_down_image

            v = top_down_image(self, v)
        return v.reshape(v.shape[0], -1)

    @property
    def n_units(self) -> int:
        return self.config.maps

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w = self.config.input_shape
        return (1, int(h), int(w))

    @classmethod
    def adapt_config(cls, config: ConvConfig, input_shape: tuple[int, int, int]) -> ConvConfig:
        c, h, w = input_shape
        if c != 1:
            raise ConfigError(f"conv learns from grey images; this data has {c} channels")
        if tuple(config.input_shape) != (h, w):
            config = replace(config, input_shape=(int(h), int(w)))
        if config.stacked:
            from .conv_stack import fill_layer1_arch

            config = fill_layer1_arch(config)
        return config

    @classmethod
    def summarize_config(cls, config: ConvConfig) -> str:
        c = config
        what = f"{c.maps} maps {c.kernel}×{c.kernel}, pools {c.pool_maps} maps × " \
               f"{c.pool_size}×{c.pool_size}/{c.pool_stride}, λ={c.lam:g}"
        return f"on {c.layer1_arch[0]} layer-1 maps: {what}" if c.stacked else what

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [self.W], "lr": lr, "weight_decay": self.config.encoder_decay},
                {"params": [self.D, self.b, self.gain], "lr": lr, "weight_decay": 0.0}]

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None,
                   optimizer: Optimizer) -> dict[str, torch.Tensor]:
        if not bool(self.started):
            self.start_from(self.layer_input(self.image(x)))
        return super().train_step(x, y, optimizer)

    @torch.no_grad()
    def start_from(self, v: torch.Tensor) -> None:
        """Start the filters from K random k×k patches of this layer's input v (B, C, h, w):
        D = the patch (unit norm), W = αD with α the least-squares scale of the reconstruction
        Dᵀrelu(D∗v) of v (b = 0, g = 1). From random noise, a filter of an
        over-complete convolutional code is slow to leave the noise: nothing in the
        reconstruction asks for structure until the sparsity does, and by then the maps that
        fire least are silenced for good."""
        K, C, k = self.config.maps, self.config.in_channels, self.config.kernel
        g = torch.Generator().manual_seed(self.config.seed)
        patches = F.unfold(v.cpu().float(), k)  # (B, C·k², L)
        patches = patches.permute(0, 2, 1).reshape(-1, C * k * k)
        energy = patches.norm(dim=1)
        # patches with content: the upper half by energy (whitened images are mostly quiet)
        pool = patches[energy >= energy.median()]
        pick = torch.randint(0, pool.shape[0], (K,), generator=g)
        D = pool[pick].reshape(K, C, k, k).to(self.D)
        D = D / D.flatten(1).norm(dim=1).clamp_min(1e-12).view(K, 1, 1, 1)
        self.D.copy_(D)
        v = v.to(D)
        x0 = F.conv_transpose2d(torch.relu(F.conv2d(v, D, padding=k - 1)), D, padding=k - 1)
        alpha = float((v * x0).sum() / (x0 * x0).sum().clamp_min(1e-12))
        self.W.copy_(D * max(alpha, 1e-6))
        self.b.zero_()
        self.gain.fill_(1.0)
        self.started.fill_(1.0)

    @torch.no_grad()
    def constrain(self) -> None:
        self.D.div_(self.D.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1))
        self.gain.clamp_(min=0.0)

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        """(K, C, k, k): decoder D or encoder W filters (C: layer-1 pools when stacked)."""
        self.check_filter_kind(kind)
        return (self.D if kind == "decoder" else self.W).detach().cpu().clone()

    def layer1_filters(self) -> torch.Tensor | None:
        """A stacked model's frozen layer-1 encoder filters (K1, 1, k1, k1), else None."""
        return self.W1.detach().cpu().clone() if self.config.stacked else None
