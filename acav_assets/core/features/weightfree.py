"""Weight-free extractors: informative, deterministic features with no weights to download.

They are the offline default (the demo and CI use them) and go through the same pipeline,
tables and clustering as the pretrained backbones. Each has several layers, at several scales,
so that the selection has several clusterings per modality, as with a network's layers.

``visual/pixels`` separates foreground from background (the per-clip median colour) and
describes, per clip:

- ``colour``: the foreground's mean colour (weighted ×4) and 4×4×4 colour histogram;
- ``shape``: the low-frequency magnitude spectrum of the foreground mask (translation
  invariant), averaged over frames, unit length (size invariant);
- ``trajectory``: the foreground's centroid and area over time (spread, speed, correlation,
  low temporal frequencies);
- ``motion_fast`` / ``motion_slow``: where frames change, on a 4×4 grid, at lags of 1 and 4
  frames.

``audio/logmel`` works on a log-mel spectrogram (torchaudio), normalised per clip for loudness:

- ``spectrum``: mean log-mel (64 bands, 25 ms windows);
- ``spectrum_fine``: mean log-power on 96 log-spaced bins at 128 ms resolution (pitch);
- ``dynamics``: per-band standard deviation over time;
- ``onsets``: per-band mean positive change (spectral flux);
- ``modulation``: how the energy of 8 band groups pulses at 0.5–10 Hz (rhythm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchaudio

from acav_assets.core.features.base import ClipBatch, Extractor, FeatureSpace

__all__ = ["PixelStats", "LogMelStats"]


class PixelStats(Extractor):
    """Foreground colour, shape, trajectory and motion statistics (see module docs)."""

    name = "visual/pixels"

    def __init__(self, device="cpu", fg_threshold: float = 0.25, work_size: int = 56):
        super().__init__(device)
        self.fg_threshold = fg_threshold
        self.work_size = work_size  # frames are area-pooled to this size first (cheap, enough detail)

    def feature_spaces(self):
        base = "visual/pixels"
        return [
            FeatureSpace(f"{base}/colour", 67),
            FeatureSpace(f"{base}/shape", 64),
            FeatureSpace(f"{base}/trajectory", 24),
            FeatureSpace(f"{base}/motion_fast", 16),
            FeatureSpace(f"{base}/motion_slow", 16),
        ]

    def _extract(self, batch: ClipBatch):
        b, t, h0, w0, _ = batch.frames.shape
        x = batch.frames.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h0, w0).float().div_(255.0)
        if min(h0, w0) > self.work_size:
            scale = self.work_size / min(h0, w0)
            x = F.interpolate(x, size=(max(1, round(h0 * scale)), max(1, round(w0 * scale))), mode="area")
        h, w = x.shape[-2:]
        x = x.reshape(b, t, 3, h, w).permute(0, 1, 3, 4, 2)  # B T H W 3
        # background: per-clip median colour, on a strided subsample (the object is small)
        bg = x[:, ::2, ::2, ::2].reshape(b, -1, 3).median(dim=1).values  # B 3
        diff = (x - bg[:, None, None, None, :]).abs().sum(-1)  # B T H W
        mask = torch.sigmoid((diff - self.fg_threshold) * 20.0)
        area = mask.sum((2, 3)).clamp_min(1e-3)  # B T
        name = "visual/pixels"
        out = {}

        # colour: foreground mean colour + soft-weighted 4x4x4 histogram
        wsum = mask.sum((1, 2, 3)).clamp_min(1e-3)
        mean_col = (x * mask[..., None]).sum((1, 2, 3)) / wsum[:, None]
        q = (x * 3.999).long().clamp_(0, 3)
        bins = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(b, -1)
        hist = torch.zeros(b, 64, device=x.device).scatter_add_(1, bins, mask.reshape(b, -1))
        # the mean colour weighs like the histogram (4 x 3 dims vs 64 bins summing to 1)
        out[f"{name}/colour"] = torch.cat([mean_col * 4, hist / wsum[:, None]], 1)

        # shape: |FFT2(mask)| low frequencies, normalised by the DC term (area), mean over frames
        spec = torch.fft.rfft2(mask).abs()  # B T H W//2+1
        low = spec[..., :8, :8] / spec[..., :1, :1].clamp_min(1e-3)
        shape = torch.log1p(low.mean(1).reshape(b, 64) * 10)
        out[f"{name}/shape"] = shape / shape.norm(dim=1, keepdim=True).clamp_min(1e-6)  # size-invariant

        # trajectory of the foreground centroid and its area
        ys = torch.linspace(0, 1, h, device=x.device)
        xs = torch.linspace(0, 1, w, device=x.device)
        cx = (mask.sum(2) * xs).sum(-1) / area  # B T
        cy = (mask.sum(3) * ys).sum(-1) / area
        rel_area = area / (h * w)
        # co-movement: covariance over the larger variance (a correlation would be noise when one
        # coordinate barely moves): ~1 for diagonal paths, ~0 for horizontal, vertical or circles
        sx, sy = cx.std(1), cy.std(1)
        comove = _cov(cx, cy) / torch.maximum(sx, sy).pow(2).clamp_min(1e-4)
        feats = [
            sx,
            sy,
            (cx.diff(dim=1)).abs().mean(1),
            (cy.diff(dim=1)).abs().mean(1),
            comove * 0.25,
            rel_area.std(1) / rel_area.mean(1).clamp_min(1e-6),
            rel_area.mean(1),
            (cx - cy).std(1),
        ]
        spec_x = torch.fft.rfft(cx - cx.mean(1, keepdim=True), dim=1).abs()[:, 1:9]
        spec_y = torch.fft.rfft(cy - cy.mean(1, keepdim=True), dim=1).abs()[:, 1:9]
        spec_x = F.pad(spec_x, (0, 8 - spec_x.shape[1]))
        spec_y = F.pad(spec_y, (0, 8 - spec_y.shape[1]))
        # the temporal spectra depend on the speed of the motion, a nuisance: they weigh less
        out[f"{name}/trajectory"] = torch.cat([torch.stack(feats, 1) * 4, spec_x / t * 2.4, spec_y / t * 2.4], 1)

        # motion energy on a 4x4 grid at two temporal scales
        grey = x.mean(-1)  # B T H W
        for lag, layer in ((1, "motion_fast"), (4, "motion_slow")):
            lag = min(lag, max(1, t - 1))
            d = (grey[:, lag:] - grey[:, :-lag]).abs() if t > 1 else torch.zeros_like(grey)
            g = F.adaptive_avg_pool2d(d.reshape(-1, 1, h, w), 4).reshape(b, -1, 16).mean(1)
            out[f"{name}/{layer}"] = g / g.sum(1, keepdim=True).clamp_min(1e-6)
        return out


def _cov(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - a.mean(1, keepdim=True)) * (b - b.mean(1, keepdim=True))).mean(1)


class LogMelStats(Extractor):
    """Log-mel spectrogram statistics at two time-frequency resolutions (see module docs)."""

    name = "audio/logmel"

    def __init__(self, device="cpu", sample_rate: int = 16_000, n_mels: int = 64):
        super().__init__(device)
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=512,
            win_length=400,
            hop_length=160,
            n_mels=n_mels,
            f_min=60.0,
            f_max=sample_rate / 2,
            power=2.0,
        ).to(self.device)
        self.n_fft_fine = 2048
        self.window_fine = torch.hann_window(self.n_fft_fine, device=self.device)
        freqs = torch.linspace(0, sample_rate / 2, self.n_fft_fine // 2 + 1)
        edges = torch.logspace(math.log10(80), math.log10(6000), 97)
        idx = torch.bucketize(freqs, edges) - 1  # bin of each FFT frequency, -1/96 outside
        proj = torch.zeros(96, freqs.numel())
        ok = (idx >= 0) & (idx < 96)
        proj[idx[ok], torch.arange(freqs.numel())[ok]] = 1.0
        self.fine_proj = (proj / proj.sum(1, keepdim=True).clamp_min(1)).to(self.device)

    def feature_spaces(self):
        base = "audio/logmel"
        return [
            FeatureSpace(f"{base}/spectrum", self.n_mels),
            FeatureSpace(f"{base}/spectrum_fine", 96),
            FeatureSpace(f"{base}/dynamics", self.n_mels),
            FeatureSpace(f"{base}/onsets", self.n_mels),
            FeatureSpace(f"{base}/modulation", 96),
        ]

    def _one(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        wave = wave.float()
        if wave.numel() < self.n_fft_fine:
            wave = F.pad(wave, (0, self.n_fft_fine - wave.numel()))
        logmel = torch.log(self.mel(wave) + 1e-6)  # M x frames
        logmel = logmel - logmel.mean()  # loudness invariance
        spectrum = logmel.mean(1)
        dynamics = logmel.std(1)
        onsets = F.relu(logmel.diff(dim=1)).mean(1)
        stft = (
            torch.stft(
                wave, self.n_fft_fine, hop_length=self.n_fft_fine // 2, window=self.window_fine, return_complex=True
            )
            .abs()
            .pow(2)
        )  # F x frames
        fine = torch.log(self.fine_proj @ stft + 1e-6).mean(1)
        fine = fine - fine.mean()
        # modulation: energy envelopes of 8 band groups, spectrum over time at 0.5-10 Hz
        groups = logmel.reshape(8, self.n_mels // 8, -1).mean(1)  # 8 x frames (100 Hz)
        groups = groups - groups.mean(1, keepdim=True)
        n = groups.shape[1]
        mod = torch.fft.rfft(groups * torch.hann_window(n, device=groups.device), dim=1).abs()
        fr = torch.fft.rfftfreq(n, d=0.01).to(groups.device)
        band_edges = torch.linspace(0.5, 10.0, 13, device=groups.device)
        cols = []
        for lo, hi in zip(band_edges[:-1], band_edges[1:]):
            sel = (fr >= lo) & (fr < hi)
            cols.append(mod[:, sel].mean(1) if sel.any() else torch.zeros(8, device=groups.device))
        modulation = torch.log1p(torch.stack(cols, 1) / math.sqrt(n) * 10).reshape(-1)
        return {
            "spectrum": spectrum,
            "spectrum_fine": fine,
            "dynamics": dynamics,
            "onsets": onsets,
            "modulation": modulation,
        }

    def _extract(self, batch: ClipBatch):
        if batch.sample_rate != self.sample_rate:
            raise ValueError(f"audio/logmel expects {self.sample_rate} Hz audio, got {batch.sample_rate} Hz")
        per_clip = [self._one(a) for a in batch.audio]
        return {f"audio/logmel/{k}": torch.stack([c[k] for c in per_clip]) for k in per_clip[0]}
