"""What a conv model's units respond to, shown as images: the image patches that excite each
map most (for a stacked model, layer-2 maps, whose filters act on pooled layer-1 maps and so
cannot be drawn as pixels directly).

A unit at code position (r, c) of a 'full' convolution (conv.py) sees image pixels
r − (field − 1) … r (and likewise for columns) for a first layer, where field = k; for a stacked
model, field = (k₂ − 1)·s₁ + p₁ + k₁ − 1 and its pixels start at (r − k₂ + 1)·s₁ − (k₁ − 1).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def unit_field(model: torch.nn.Module) -> tuple[int, int, int]:
    """(field, step, offset): a unit at code position r sees pixels r·step − offset … that plus
    field − 1 (the same along columns)."""
    c = model.config
    if not c.stacked:
        return c.kernel, 1, c.kernel - 1
    _, k1, _, p1, s1 = c.layer1_arch
    return (c.kernel - 1) * s1 + p1 + k1 - 1, s1, (c.kernel - 1) * s1 + k1 - 1


@torch.no_grad()
def top_patches(model: torch.nn.Module, images: np.ndarray | torch.Tensor, n: int = 8,
                batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """For each of the K maps, the `n` image patches (over every image and position) on which
    it responds most: patches (K, n, field, field) (zero outside the image), and the responses
    (K, n), largest first. images: (N, H, W) of the model's input kind (e.g. whitened crops)."""
    imgs = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    field, step, offset = unit_field(model)
    best_v: torch.Tensor | None = None
    best_i: torch.Tensor | None = None
    shape = None
    for s in range(0, imgs.shape[0], batch_size):
        z = model.feature_maps(imgs[s:s + batch_size].unsqueeze(1))  # (b, K, hz, wz)
        shape = z.shape[2:]
        flat = z.permute(1, 0, 2, 3).reshape(z.shape[1], -1)  # (K, b·hz·wz)
        idx = torch.arange(flat.shape[1]) + s * shape[0] * shape[1]
        v = flat if best_v is None else torch.cat([best_v, flat], 1)
        i = idx.expand_as(flat) if best_i is None else torch.cat([best_i, idx.expand_as(flat)], 1)
        top = v.topk(min(n, v.shape[1]), dim=1)
        best_v, best_i = top.values, torch.gather(i, 1, top.indices)
    assert best_v is not None and best_i is not None and shape is not None
    hz, wz = shape
    pad = field  # enough zeros round the image for any unit's field
    padded = F.pad(imgs, (pad, pad, pad, pad))
    K, m = best_i.shape
    out = np.zeros((K, m, field, field), dtype=np.float32)
    for k in range(K):
        for j in range(m):
            img, pos = divmod(int(best_i[k, j]), hz * wz)
            r, c = divmod(pos, wz)
            r0, c0 = r * step - offset + pad, c * step - offset + pad
            out[k, j] = padded[img, r0:r0 + field, c0:c0 + field].numpy()
    return out, best_v.numpy()
