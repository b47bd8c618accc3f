from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_format_writers import SAMPLE_RATE, tone, write_wav

from fedscale_halor.data.datasets.audio_features import (
    SpectrogramSpec,
    fit_clip,
    hz_to_mel,
    log_mel_spectrograms,
    mel_band_edges_hz,
    mel_filterbank,
    mel_to_hz,
    read_wav,
)


def test_mel_scale_matches_the_htk_formula_at_1000_hz() -> None:
    # 2595 * log10(1 + 1000 / 700) = 999.985...
    assert float(hz_to_mel(1000.0)) == pytest.approx(999.985, abs=1e-3)
    assert float(mel_to_hz(hz_to_mel(4321.0))) == pytest.approx(4321.0)


def test_filterbank_rows_are_triangles_peaking_at_their_centres() -> None:
    num_bins, sample_rate = 257, 16_000
    bin_frequencies = np.linspace(0, sample_rate / 2, num_bins)

    filters = mel_filterbank(num_bins, sample_rate, num_mels=8, min_frequency_hz=0.0, max_frequency_hz=8000.0)

    centres = mel_band_edges_hz(8, 0.0, 8000.0)[1:-1]
    assert filters.shape == (8, 257)
    assert float(filters.min()) >= 0.0 and float(filters.max()) <= 1.0
    for band, centre in enumerate(centres):
        assert bin_frequencies[int(filters[band].argmax())] == pytest.approx(centre, abs=sample_rate / 2 / 256)


def test_a_pure_tone_lights_the_band_around_its_frequency() -> None:
    spec = SpectrogramSpec()
    centres = mel_band_edges_hz(spec.num_mels, spec.min_frequency_hz, spec.max_frequency_hz)[1:-1]

    features = log_mel_spectrograms(torch.from_numpy(np.stack([tone(500.0), tone(3000.0)])).float(), spec)

    assert features.shape == (2, 1, 32, 32)
    loudest_bands = features[:, 0].mean(dim=2).argmax(dim=1).tolist()
    assert loudest_bands == [int(np.abs(centres - 500.0).argmin()), int(np.abs(centres - 3000.0).argmin())]


def test_fit_clip_pads_and_cuts() -> None:
    assert fit_clip(np.array([1.0, 2.0]), 4).tolist() == [1.0, 2.0, 0.0, 0.0]
    assert fit_clip(np.arange(6, dtype=np.float32), 3).tolist() == [0.0, 1.0, 2.0]


def test_read_wav_returns_samples_scaled_to_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    write_wav(path, np.array([0.0, 0.5, -1.0]))

    samples, sample_rate = read_wav(path)

    assert sample_rate == SAMPLE_RATE
    # 0.5 * 32767 rounds to 16384, which reads back as 16384 / 32768.
    assert samples.tolist() == pytest.approx([0.0, 16384 / 32768, -32767 / 32768])
