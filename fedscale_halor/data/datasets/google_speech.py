"""Google Speech Commands v2 (35 words): wav clips become 1x32x32 log-mel spectrograms; clients are speakers.

Two layouts are read:
- the official archive: ``data_dir/<word>/<speaker>_nohash_<n>.wav`` plus ``testing_list.txt`` (paths
  ``<word>/<file>.wav``, one a line). Clips in the testing list form the test set; every other clip, those of
  ``validation_list.txt`` included (a federated run has no validation phase), trains;
- FedScale's repack: ``data_dir/train/`` and ``data_dir/test/`` of clips named ``<word>_<speaker>_nohash_<n>.wav``.
Folders that hold no clips, or whose names start with ``_`` (``_background_noise_``) or ``.``, are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedscale_halor.data.datasets.audio_features import SpectrogramSpec, wav_files_to_features
from fedscale_halor.data.datasets.base import MissingRawFileError, RawDataset, dense_ids

NAME = "google_speech"
TESTING_LIST = "testing_list.txt"
SPEAKER_SEPARATOR = "_nohash_"
WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
    "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
    "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
SPECTROGRAM = SpectrogramSpec()


@dataclass(frozen=True)
class Clip:
    path: Path
    word: str
    speaker: str


def speaker_of(file_name: str) -> str:
    """``<speaker>_nohash_<n>.wav`` -> speaker."""
    if SPEAKER_SEPARATOR not in file_name:
        raise ValueError(f"{file_name}: expected a clip named <speaker>{SPEAKER_SEPARATOR}<n>.wav")
    return file_name.split(SPEAKER_SEPARATOR, 1)[0]


def _word_id(word: str, where: Path) -> int:
    if word not in WORD_IDS:
        raise ValueError(f"{where}: {word!r} is not one of the {len(WORDS)} Speech Commands v2 words")
    return WORD_IDS[word]


def official_clips(data_dir: Path) -> tuple[list[Clip], list[Clip]]:
    """(train, test) clips of the official layout, each list sorted by relative path."""
    testing_list = data_dir / TESTING_LIST
    if not testing_list.is_file():
        raise MissingRawFileError(NAME, testing_list)
    test_names = {line.strip() for line in testing_list.read_text().splitlines() if line.strip()}
    train: list[Clip] = []
    test: list[Clip] = []
    # Folders without clips (the prepared arrays, hidden or "_" folders) are not words.
    word_dirs = sorted(path for path in data_dir.iterdir() if path.is_dir() and path.name[0] not in "_.")
    for word_dir in word_dirs:
        wavs = sorted(word_dir.glob("*.wav"))
        if wavs:
            _word_id(word_dir.name, word_dir)
        for wav in wavs:
            clip = Clip(wav, word_dir.name, speaker_of(wav.name))
            (test if f"{word_dir.name}/{wav.name}" in test_names else train).append(clip)
    return train, test


def repacked_clips(folder: Path) -> list[Clip]:
    """Clips of a FedScale repack folder, named ``<word>_<speaker>_nohash_<n>.wav``."""
    clips = []
    for wav in sorted(folder.glob("*.wav")):
        word, _, rest = wav.name.partition("_")
        clips.append(Clip(wav, word, speaker_of(rest)))
    return clips


def find_clips(data_dir: Path) -> tuple[list[Clip], list[Clip]]:
    if not data_dir.is_dir():
        raise MissingRawFileError(NAME, data_dir, what="data folder")
    has_split_folders = (data_dir / "train").is_dir() and (data_dir / "test").is_dir()
    if has_split_folders and not (data_dir / TESTING_LIST).exists():
        return repacked_clips(data_dir / "train"), repacked_clips(data_dir / "test")
    return official_clips(data_dir)


def _labels(clips: list[Clip]) -> np.ndarray:
    return np.fromiter((_word_id(clip.word, clip.path) for clip in clips), dtype=np.int64, count=len(clips))


def load(data_dir: Path) -> RawDataset:
    train, test = find_clips(data_dir)
    if not train:
        raise MissingRawFileError(NAME, data_dir / "<word>" / "<speaker>_nohash_<n>.wav", what="training clips like")
    owners, _ = dense_ids([clip.speaker for clip in train])
    return RawDataset(
        train_features=wav_files_to_features([clip.path for clip in train], SPECTROGRAM),
        train_labels=_labels(train),
        test_features=wav_files_to_features([clip.path for clip in test], SPECTROGRAM),
        test_labels=_labels(test),
        num_classes=len(WORDS),
        class_names=WORDS,
        train_owners=owners,
    )
