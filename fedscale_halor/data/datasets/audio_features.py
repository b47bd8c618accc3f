"""Log-mel spectrograms with torch alone: a triangular mel filterbank over the bins of torch.stft."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class SpectrogramSpec:
    """How a clip becomes a (1, num_mels, num_frames) feature map."""

    sample_rate: int = 16_000
    clip_samples: int = 16_000
    fft_size: int = 512
    hop_length: int = 500
    num_mels: int = 32
    num_frames: int = 32
    min_frequency_hz: float = 20.0
    max_frequency_hz: float = 8_000.0
    log_floor: float = 1e-6


def hz_to_mel(frequency_hz: np.ndarray | float) -> np.ndarray:
    """The HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(frequency_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges_hz(num_mels: int, min_frequency_hz: float, max_frequency_hz: float) -> np.ndarray:
    """num_mels + 2 frequencies, equally spaced in mel: band i rises from edge i, peaks at i+1, falls to i+2."""
    mels = np.linspace(hz_to_mel(min_frequency_hz), hz_to_mel(max_frequency_hz), num_mels + 2)
    return mel_to_hz(mels)


def mel_filterbank(num_fft_bins: int, sample_rate: int, num_mels: int, min_frequency_hz: float,
                   max_frequency_hz: float) -> torch.Tensor:
    """A (num_mels, num_fft_bins) matrix of triangular filters; row i weighs the FFT bins of mel band i."""
    if not 0 <= min_frequency_hz < max_frequency_hz <= sample_rate / 2:
        raise ValueError(f"mel bands need 0 <= min ({min_frequency_hz}) < max ({max_frequency_hz}) "
                         f"<= Nyquist ({sample_rate / 2})")
    bin_frequencies = np.linspace(0.0, sample_rate / 2, num_fft_bins)
    edges = mel_band_edges_hz(num_mels, min_frequency_hz, max_frequency_hz)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_frequencies[None, :] - lower) / (center - lower)
    falling = (upper - bin_frequencies[None, :]) / (upper - center)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(weights.astype(np.float32))


def log_mel_spectrograms(clips: torch.Tensor, spec: SpectrogramSpec) -> torch.Tensor:
    """(N, clip_samples) float waveforms -> (N, 1, num_mels, num_frames) log-mel energies."""
    if clips.ndim != 2 or clips.shape[1] != spec.clip_samples:
        raise ValueError(f"expected clips of shape (N, {spec.clip_samples}), got {tuple(clips.shape)}")
    available_frames = 1 + spec.clip_samples // spec.hop_length
    if available_frames < spec.num_frames:
        raise ValueError(f"{spec.clip_samples} samples at hop {spec.hop_length} give only {available_frames} frames, "
                         f"fewer than the {spec.num_frames} asked for")
    window = torch.hann_window(spec.fft_size, dtype=torch.float32)
    spectrum = torch.stft(clips.to(torch.float32), n_fft=spec.fft_size, hop_length=spec.hop_length, window=window,
                          center=True, return_complex=True)
    power = spectrum.abs().pow(2)[:, :, : spec.num_frames]
    filterbank = mel_filterbank(spec.fft_size // 2 + 1, spec.sample_rate, spec.num_mels, spec.min_frequency_hz,
                                spec.max_frequency_hz)
    mel_power = torch.matmul(filterbank, power)
    return torch.log(mel_power + spec.log_floor).unsqueeze(1)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A PCM wav file as mono float32 in [-1, 1] and its sample rate (standard-library ``wave`` only)."""
    with wave.open(str(path), "rb") as reader:
        sample_width = reader.getsampwidth()
        num_channels = reader.getnchannels()
        sample_rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    if sample_width == 1:
        # 8-bit wav samples are unsigned, centred on 128.
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif sample_width in (2, 4):
        integer_type = np.dtype(f"<i{sample_width}")
        samples = np.frombuffer(frames, dtype=integer_type).astype(np.float32) / float(2 ** (8 * sample_width - 1))
    else:
        raise ValueError(f"{path}: {8 * sample_width}-bit samples are not supported (use 8, 16 or 32-bit PCM)")
    if num_channels > 1:
        samples = samples.reshape(-1, num_channels).mean(axis=1)
    return samples, sample_rate


def fit_clip(samples: np.ndarray, clip_samples: int) -> np.ndarray:
    """Zero-pad or cut a waveform to exactly ``clip_samples`` (Speech Commands clips are at most one second)."""
    fitted = np.zeros(clip_samples, dtype=np.float32)
    length = min(len(samples), clip_samples)
    fitted[:length] = samples[:length]
    return fitted


def wav_files_to_features(paths: list[Path], spec: SpectrogramSpec, chunk_size: int = 512) -> np.ndarray:
    """Log-mel features (N, 1, num_mels, num_frames) of wav files, as float16 to halve the prepared arrays."""
    features = np.empty((len(paths), 1, spec.num_mels, spec.num_frames), dtype=np.float16)
    for start in range(0, len(paths), chunk_size):
        chunk_paths = paths[start:start + chunk_size]
        clips = np.empty((len(chunk_paths), spec.clip_samples), dtype=np.float32)
        for row, path in enumerate(chunk_paths):
            samples, sample_rate = read_wav(path)
            if sample_rate != spec.sample_rate:
                raise ValueError(f"{path}: sample rate {sample_rate} Hz, expected {spec.sample_rate} Hz")
            clips[row] = fit_clip(samples, spec.clip_samples)
        chunk = log_mel_spectrograms(torch.from_numpy(clips), spec).numpy()
        features[start:start + len(chunk_paths)] = chunk.astype(np.float16)
    return features

