from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from data_format_writers import tone, write_speech, write_wav

from fedscale_halor.data.datasets import google_speech
from fedscale_halor.data.datasets.base import MissingRawFileError

YES, NO = google_speech.WORD_IDS["yes"], google_speech.WORD_IDS["no"]


def test_official_layout_splits_by_testing_list_and_numbers_speakers(tmp_path: Path) -> None:
    data_dir = write_speech(tmp_path / "speech")

    raw = google_speech.load(data_dir)

    # 8 clips, 2 listed for testing; the validation clip trains. Words sort as "no" then "yes", clips inside a word
    # by name: no = [a_0, b_0, b_1] (a_1 tests), yes = [a_0, a_1, b_1] (b_0 tests); a = speaker 0, b = speaker 1.
    assert raw.train_features.shape == (6, 1, 32, 32)
    assert raw.train_features.dtype == np.float16
    assert raw.test_features.shape == (2, 1, 32, 32)
    assert raw.train_labels.tolist() == [NO, NO, NO, YES, YES, YES]
    assert sorted(raw.test_labels.tolist()) == sorted([NO, YES])
    assert raw.train_owners is not None
    assert raw.train_owners.tolist() == [0, 1, 1, 0, 0, 1]
    assert raw.num_classes == 35 and len(raw.class_names) == 35


def test_features_tell_the_two_tones_apart(tmp_path: Path) -> None:
    raw = google_speech.load(write_speech(tmp_path / "speech"))

    loudest_band = raw.train_features[:, 0].astype(np.float32).mean(axis=2).argmax(axis=1)

    # "yes" clips are 500 Hz tones, "no" clips 3 kHz: higher pitch, higher mel band.
    assert loudest_band[raw.train_labels == NO].min() > loudest_band[raw.train_labels == YES].max()


def test_fedscale_repack_layout_reads_word_and_speaker_from_the_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "google_speech"
    write_wav(data_dir / "train" / "up_cccc3333_nohash_0.wav", tone(800.0))
    write_wav(data_dir / "train" / "up_dddd4444_nohash_0.wav", tone(800.0))
    write_wav(data_dir / "test" / "down_cccc3333_nohash_1.wav", tone(800.0))

    raw = google_speech.load(data_dir)

    assert raw.train_labels.tolist() == [google_speech.WORD_IDS["up"]] * 2
    assert raw.test_labels.tolist() == [google_speech.WORD_IDS["down"]]
    assert raw.train_owners is not None and raw.train_owners.tolist() == [0, 1]


def test_missing_testing_list_is_named(tmp_path: Path) -> None:
    data_dir = write_speech(tmp_path / "speech")
    (data_dir / "testing_list.txt").unlink()

    with pytest.raises(MissingRawFileError, match=re.escape("testing_list.txt")):
        google_speech.load(data_dir)


def test_unknown_word_folder_is_named(tmp_path: Path) -> None:
    data_dir = write_speech(tmp_path / "speech")
    write_wav(data_dir / "hello" / "aaaa1111_nohash_0.wav", tone(100.0))

    with pytest.raises(ValueError, match="'hello'"):
        google_speech.load(data_dir)


def test_clip_at_another_sample_rate_is_named(tmp_path: Path) -> None:
    data_dir = write_speech(tmp_path / "speech")
    write_wav(data_dir / "yes" / "eeee5555_nohash_0.wav", tone(100.0), sample_rate=8000)

    with pytest.raises(ValueError, match=re.escape("eeee5555_nohash_0.wav: sample rate 8000")):
        google_speech.load(data_dir)
