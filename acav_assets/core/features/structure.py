"""``visual/structure``: generic weight-free descriptors of what a picture contains.

Where :mod:`acav_assets.core.features.weightfree`'s ``visual/pixels`` describes a foreground
object (its colour, shape, path and motion), these describe any picture by the statistics
textbook vision uses, each pooled over the whole frame (so they do not depend on where things
are) and averaged over ``n_frames`` frames of the clip:

- ``gradients``: histograms of gradient orientation (12 unsigned bins, magnitude-weighted, soft
  binning) of the luminance at 3 scales (1, 1/2, 1/4), each normalised to sum 1 and
  square-rooted (Hellinger): edges and their directions, independent of position, contrast
  and tint;
- ``spectrum``: log energy of the luminance's Fourier spectrum in 6 log-spaced frequency bands x
  4 orientations (Hann-windowed, mean removed): how fine and how oriented the structure is,
  independent of position (translation changes only the phase) and of contrast;
- ``texture``: rotation-invariant uniform local binary patterns at radii 1 and 2 (10 bins
  each): micro-texture, invariant to any monotonic change of brightness;
- ``colour``: hue histogram (12 bins) weighted by saturation, plus saturation and brightness
  histograms (4 bins each): colour on its own, so that a tinted copy moves only this space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from acav_assets.core.features.base import ClipBatch, Extractor, FeatureSpace

__all__ = ["StructureStats"]

_N_ORIENT = 12
_SCALES = (1, 2, 4)
_RADIAL, _ANGULAR = 6, 4


class StructureStats(Extractor):
    """Gradient-orientation, spectral, texture and colour statistics (see module docs)."""

    name = "visual/structure"

    def __init__(self, device="cpu", n_frames: int = 8, work_size: int = 112):
        super().__init__(device)
        self.n_frames, self.work_size = n_frames, work_size
        self._cells: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def feature_spaces(self):
        base = self.name
        return [
            FeatureSpace(f"{base}/gradients", _N_ORIENT * len(_SCALES)),
            FeatureSpace(f"{base}/spectrum", _RADIAL * _ANGULAR),
            FeatureSpace(f"{base}/texture", 20),
            FeatureSpace(f"{base}/colour", 20),
        ]

    def _extract(self, batch: ClipBatch):
        frames = batch.frames  # B T H W 3 uint8
        b, t, h0, w0, _ = frames.shape
        idx = torch.linspace(0, t - 1, min(self.n_frames, t), device=frames.device).round().long()
        n = idx.numel()
        x = frames[:, idx].reshape(b * n, h0, w0, 3).permute(0, 3, 1, 2).float().div_(255.0)
        if min(h0, w0) > self.work_size:
            s = self.work_size / min(h0, w0)
            x = F.interpolate(x, size=(max(8, round(h0 * s)), max(8, round(w0 * s))), mode="area")
        lum = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # N 1 H W
        feats = {
            "gradients": self._gradients(lum),
            "spectrum": self._spectrum(lum[:, 0]),
            "texture": self._texture(lum[:, 0]),
            "colour": self._colour(x),
        }
        return {f"{self.name}/{k}": v.reshape(b, n, -1).mean(1) for k, v in feats.items()}

    @staticmethod
    def _gradients(lum: torch.Tensor) -> torch.Tensor:
        hists = []
        for s in _SCALES:
            g = F.avg_pool2d(lum, s) if s > 1 else lum
            g = g[:, 0]
            gx = g[:, 1:-1, 2:] - g[:, 1:-1, :-2]
            gy = g[:, 2:, 1:-1] - g[:, :-2, 1:-1]
            mag = torch.sqrt(gx * gx + gy * gy).flatten(1)
            ang = torch.remainder(torch.atan2(gy, gx), math.pi).flatten(1) / math.pi * _N_ORIENT  # [0, 12)
            lo = ang.floor()
            frac = ang - lo
            lo = lo.long() % _N_ORIENT
            hi = (lo + 1) % _N_ORIENT
            hist = torch.zeros(mag.shape[0], _N_ORIENT, device=lum.device)
            hist.scatter_add_(1, lo, mag * (1 - frac)).scatter_add_(1, hi, mag * frac)
            hists.append(torch.sqrt(hist / hist.sum(1, keepdim=True).clamp_min(1e-8)))
        return torch.cat(hists, 1)

    def _spectrum(self, lum: torch.Tensor) -> torch.Tensor:
        n, h, w = lum.shape
        key = (h, w)
        if key not in self._cells:
            win = torch.hann_window(h, device=lum.device)[:, None] * torch.hann_window(w, device=lum.device)[None]
            fy = torch.fft.fftfreq(h, device=lum.device)[:, None].expand(h, w // 2 + 1)
            fx = torch.fft.rfftfreq(w, device=lum.device)[None].expand(h, w // 2 + 1)
            r = torch.sqrt(fx * fx + fy * fy)
            edges = torch.logspace(math.log10(2.0 / min(h, w)), math.log10(0.5), _RADIAL + 1, device=lum.device)
            rb = torch.bucketize(r, edges) - 1  # -1 below the lowest band, _RADIAL above 0.5
            ab = (torch.remainder(torch.atan2(fy, fx), math.pi) / math.pi * _ANGULAR).long().clamp_(0, _ANGULAR - 1)
            cell = torch.where((rb >= 0) & (rb < _RADIAL), rb * _ANGULAR + ab, torch.full_like(rb, -1))
            onehot = F.one_hot(cell.clamp_min(0).flatten(), _RADIAL * _ANGULAR).float() * (cell.flatten() >= 0)[:, None]
            self._cells[key] = (win, onehot / onehot.sum(0).clamp_min(1))
        win, avg = self._cells[key]
        z = (lum - lum.mean((1, 2), keepdim=True)) * win
        power = torch.fft.rfft2(z).abs().pow(2).flatten(1)  # N x cells
        energy = torch.log(power @ avg + 1e-8)
        return energy - energy.mean(1, keepdim=True)

    @staticmethod
    def _texture(lum: torch.Tensor) -> torch.Tensor:
        hists = []
        for r in (1, 2):
            c = lum[:, r:-r, r:-r]
            h, w = c.shape[1:]
            offsets = [(0, r), (-r, r), (-r, 0), (-r, -r), (0, -r), (r, -r), (r, 0), (r, r)]  # a circle, in order
            bits = torch.stack([(lum[:, r + dy : r + dy + h, r + dx : r + dx + w] >= c) for dy, dx in offsets], 1)
            ones = bits.sum(1)
            transitions = (bits != bits.roll(1, dims=1)).sum(1)
            code = torch.where(transitions <= 2, ones, torch.full_like(ones, 9)).flatten(
                1
            )  # riu2: 0..8 uniform, 9 other
            hist = torch.zeros(code.shape[0], 10, device=lum.device).scatter_add_(
                1, code, torch.ones_like(code, dtype=torch.float32)
            )
            hists.append(hist / code.shape[1])
        return torch.cat(hists, 1)

    @staticmethod
    def _colour(x: torch.Tensor) -> torch.Tensor:
        mx, _ = x.max(1)
        mn, _ = x.min(1)
        sat = (mx - mn) / mx.clamp_min(1e-6)
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        hue = torch.atan2(math.sqrt(3) * (g - b), 2 * r - g - b)  # the hexcone hue as an angle
        hb = (torch.remainder(hue, 2 * math.pi) / (2 * math.pi) * 12).long().clamp_(0, 11).flatten(1)
        w = (sat * mx).flatten(1)
        hue_hist = torch.zeros(x.shape[0], 12, device=x.device).scatter_add_(1, hb, w)
        hue_hist = hue_hist / hue_hist.sum(1, keepdim=True).clamp_min(1e-6)
        sb = (sat * 3.999).long().flatten(1)
        vb = (mx * 3.999).long().flatten(1)
        ones = torch.ones_like(sb, dtype=torch.float32) / sb.shape[1]
        sat_hist = torch.zeros(x.shape[0], 4, device=x.device).scatter_add_(1, sb, ones)
        val_hist = torch.zeros(x.shape[0], 4, device=x.device).scatter_add_(1, vb, ones)
        return torch.cat([hue_hist, sat_hist, val_hist], 1)
