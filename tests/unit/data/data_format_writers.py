"""Writers of tiny data sets in each real on-disk format, so the loaders are exercised on genuine files."""

from __future__ import annotations

import gzip
import json
import pickle
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE_RATE = 16_000


def write_idx(path: Path, values: np.ndarray, type_code: int = 0x08) -> Path:
    """An idx file (gzip-compressed when the name ends in .gz)."""
    header = bytes([0, 0, type_code, values.ndim]) + np.asarray(values.shape, dtype=">u4").tobytes()
    big_endian = values.astype(values.dtype.newbyteorder(">")) if values.dtype.itemsize > 1 else values
    content = header + big_endian.tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def cifar_image(index: int) -> np.ndarray:
    """A 3x32x32 image whose red, green and blue planes are the constants 3i, 3i+1 and 3i+2."""
    return np.stack([np.full((32, 32), 3 * index + channel, dtype=np.uint8) for channel in range(3)])


def write_cifar(folder: Path, images_per_batch: int = 2, test_images: int = 3) -> Path:
    """A cifar-10-batches-py folder: images numbered across batches, label of image i = i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    image_index = 0
    for batch in [f"data_batch_{number}" for number in range(1, 6)] + ["test_batch"]:
        count = test_images if batch == "test_batch" else images_per_batch
        indices = range(image_index, image_index + count)
        content = {
            b"batch_label": batch.encode(),
            b"data": np.stack([cifar_image(index).reshape(-1) for index in indices]),
            b"labels": [index % 10 for index in indices],
        }
        with (folder / batch).open("wb") as stream:
            pickle.dump(content, stream, protocol=2)
        image_index += count
    names = [b"plane", b"car", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with (folder / "batches.meta").open("wb") as stream:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, stream, protocol=2)
    return folder


def write_grey_png(path: Path, value: int, side: int = 28, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value, value)
    Image.new(mode, (side, side), color=colour).save(path)


@dataclass(frozen=True)
class FemnistFixture:
    data_dir: Path
    train_values: tuple[int, ...]
    train_labels: tuple[int, ...]
    train_writers: tuple[str, ...]
    test_values: tuple[int, ...]
    test_labels: tuple[int, ...]


def write_femnist(data_dir: Path, fedscale_paths: bool = True) -> FemnistFixture:
    """FedScale's FEMNIST layout: two writers, images of constant grey levels, one a 64x64 RGB scan."""
    rows = [("writer_b", 10, 3), ("writer_a", 20, 11), ("writer_b", 30, 3), ("writer_a", 40, 40)]
    test_rows = [("writer_a", 50, 61), ("writer_b", 60, 0)]
    image_root = data_dir if fedscale_paths else data_dir / "data"
    prefix = "data/raw_data/by_write/hsf_0" if fedscale_paths else "raw_data/by_write/hsf_0"
    mapping = data_dir / "client_data_mapping"
    mapping.mkdir(parents=True)
    for split, split_rows in (("train", rows), ("test", test_rows)):
        lines = ["client_id,sample_path,label_name,label_id"]
        for number, (writer, value, label) in enumerate(split_rows):
            sample_path = f"{prefix}/{writer}/{split}_{number:05d}.png"
            is_scan = split == "train" and number == 1
            write_grey_png(image_root / sample_path, value, side=64 if is_scan else 28, mode="RGB" if is_scan else "L")
            lines.append(f"{writer},{sample_path},name{label},{label}")
        (mapping / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return FemnistFixture(
        data_dir=data_dir,
        train_values=tuple(value for _, value, _ in rows),
        train_labels=tuple(label for _, _, label in rows),
        train_writers=tuple(writer for writer, _, _ in rows),
        test_values=tuple(value for _, value, _ in test_rows),
        test_labels=tuple(label for _, _, label in test_rows),
    )


def tone(frequency_hz: float, duration_s: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    times = np.arange(int(SAMPLE_RATE * duration_s)) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * frequency_hz * times)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())


def write_speech(data_dir: Path) -> Path:
    """Speech Commands' official layout: 'yes' and 'no' said by two speakers; one clip of each word is for testing."""
    for word, frequency in (("yes", 500.0), ("no", 3000.0)):
        for speaker in ("bbbb2222", "aaaa1111"):
            for number in range(2):
                write_wav(data_dir / word / f"{speaker}_nohash_{number}.wav", tone(frequency))
    write_wav(data_dir / "_background_noise_" / "white_noise.wav", np.zeros(SAMPLE_RATE))
    (data_dir / "testing_list.txt").write_text("no/aaaa1111_nohash_1.wav\nyes/bbbb2222_nohash_0.wav\n")
    (data_dir / "validation_list.txt").write_text("yes/aaaa1111_nohash_0.wav\n")
    return data_dir


def write_synthetic_spec(data_dir: Path, **spec: object) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "synthetic.json").write_text(json.dumps(spec))
    return data_dir
