"""Hillenbrand vowels: the 12-formant, 7-vowel task of the physical-neural-network literature.

Data: J. Hillenbrand, L. A. Getty, M. J. Clark & K. Wheeler, "Acoustic characteristics of American English
vowels", J. Acoust. Soc. Am. 97(5), 3099-3111 (1995), doi:10.1121/1.411872. The original file is
``bigdata.dat`` from homepages.wmich.edu/~hillenbr/voweldata.html; the project reads a CSV export of it
(columns ``Index, ID, Duration, F0, F1..F4, F1_20..F3_80``; 0 means missing).

Task (Wright et al., Nature 601, 549 (2022); Momeni et al., Science 382, 1297 (2023)): women speakers, vowels
``ae ah aw er ih iy uw``, features F1-F3 at steady state and at 20 %, 50 %, 80 % of the duration (12 values),
rows with a missing feature dropped (316 rows of 336). Split **by speaker** into train, validation and test,
so no speaker appears in two splits (the test set is small: about 77 utterances of 12 speakers). ``split="utterance"``
instead draws stratified random utterances (speakers shared between splits; an easier task, for comparison
with papers whose split shares speakers). Features are z-scored with the training split's statistics. Chance is 1/7.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import TaskData, to_task

VOWELS_7 = ("ae", "ah", "aw", "er", "ih", "iy", "uw")
ALL_VOWELS = ("ae", "ah", "aw", "eh", "ei", "er", "ih", "iy", "oa", "oo", "uh", "uw")
FEATURES = ("F1", "F2", "F3", "F1_20", "F2_20", "F3_20", "F1_50", "F2_50", "F3_50", "F1_80", "F2_80", "F3_80")
GROUPS = {"m": "men", "w": "women", "b": "boys", "g": "girls"}
SOURCE = "homepages.wmich.edu/~hillenbr/voweldata.html (bigdata.dat)"


BUNDLED = Path(__file__).resolve().parent / "files" / "hillenbrand_vowels.csv"


def shared_path() -> Path | None:
    """The team's copy beside a checkout (``../shared/data/hillenbrand_vowels.csv``), if present."""
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        for candidate in (parent / "shared" / "data" / "hillenbrand_vowels.csv",
                          parent.parent / "shared" / "data" / "hillenbrand_vowels.csv"):
            if candidate.is_file():
                return candidate
    return None


def default_path() -> Path | None:
    """``../shared/data/hillenbrand_vowels.csv`` beside a checkout if present, else the copy bundled
    with the package (identical values; see ``pnnlab/data/files/README.md``)."""
    return shared_path() or (BUNDLED if BUNDLED.is_file() else None)


def read_vowel_table(path: str | Path) -> list[dict]:
    """Rows of the CSV as dicts with ``group``, ``speaker``, ``vowel`` and numeric columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vowel data file {str(path)!r} does not exist; pass path= pointing at the "
                                f"CSV export of Hillenbrand et al. (1995) ({SOURCE}).")
    rows = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("ID", *FEATURES) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{str(path)!r} lacks the columns {missing}; expected the Hillenbrand CSV with "
                             f"columns Index, ID, Duration, F0, F1..F4, F1_20..F3_80.")
        for record in reader:
            identifier = record["ID"].strip()
            row = {"id": identifier, "group": identifier[0], "speaker": identifier[:3], "vowel": identifier[3:]}
            for column in FEATURES:
                row[column] = float(record[column])
            rows.append(row)
    return rows


def load_vowels(path: str | Path | None = None, *, vowels: tuple[str, ...] = VOWELS_7,
                groups: tuple[str, ...] = ("w",), test_fraction: float = 0.25, val_fraction: float = 0.2,
                seed: int = 0, normalise: bool = True, split: str = "speaker") -> TaskData:
    """The vowel task, split by speaker (default) or by utterance.

    Parameters
    ----------
    path: CSV file; defaults to ``shared/data/hillenbrand_vowels.csv`` found beside the checkout.
    vowels: vowel labels to classify (default the standard 7); ``groups``: speaker groups (``m w b g``).
    test_fraction: fraction of *speakers* held out for test; ``val_fraction``: fraction of the remaining
    speakers held out for validation; ``seed`` picks which (each seed is a different split).
    split: ``"speaker"`` (no speaker in two splits: the test measures generalisation to new voices) or
    ``"utterance"`` (test and validation are stratified random fractions of the utterances, so a test
    speaker's other vowels are in training; an easier task, for comparison with papers whose split shares
    speakers). The fractions then count utterances, not speakers.
    """
    if split not in ("speaker", "utterance"):
        raise ValueError(f"split must be 'speaker' or 'utterance', got {split!r}; 'speaker' keeps every "
                         f"speaker in one split, 'utterance' splits the utterances at random.")
    if path is None:
        path = default_path()
        if path is None:
            raise FileNotFoundError("no vowel data found; pass path= to the CSV export of Hillenbrand et al. "
                                    f"(1995) ({SOURCE}).")
    unknown = [v for v in vowels if v not in ALL_VOWELS]
    if unknown or len(vowels) < 2:
        raise ValueError(f"vowels must be at least two of {ALL_VOWELS}, got {vowels!r}.")
    bad_groups = [g for g in groups if g not in GROUPS]
    if bad_groups or not groups:
        raise ValueError(f"groups must be a non-empty subset of {tuple(GROUPS)} ({GROUPS}), got {groups!r}.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}; e.g. 0.25.")
    rows = [r for r in read_vowel_table(path)
            if r["group"] in groups and r["vowel"] in vowels and all(r[c] > 0 for c in FEATURES)]
    if not rows:
        raise ValueError(f"no complete rows for groups {groups} and vowels {vowels} in {str(path)!r}.")
    speakers = sorted({r["speaker"] for r in rows})
    rng = np.random.default_rng(seed)
    x = np.array([[r[c] for c in FEATURES] for r in rows])
    y = np.array([vowels.index(r["vowel"]) for r in rows])
    speaker = np.array([r["speaker"] for r in rows])
    if split == "utterance":
        from sklearn.model_selection import train_test_split
        _, test_rows = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y,
                                        random_state=int(rng.integers(2**31)))
        is_test = np.isin(np.arange(len(y)), test_rows)
        how, val_groups = (f"split by utterance (speakers shared between splits; {int(is_test.sum())} test "
                           f"utterances, seed {seed})"), None
    else:
        n_test = max(1, int(round(test_fraction * len(speakers))))
        test_speakers = set(rng.permutation(speakers)[:n_test].tolist())
        is_test = np.array([r["speaker"] in test_speakers for r in rows])
        how = (f"split by speaker ({len(speakers) - n_test} train+validation / {n_test} test speakers, "
               f"seed {seed})")
        val_groups = speaker[~is_test]
    return to_task("vowels", x[~is_test], y[~is_test], x[is_test], y[is_test], len(vowels),
                   f"Hillenbrand (1995) vowels {'/'.join(vowels)}, groups {''.join(groups)}, 12 formants, {how}",
                   class_names=list(vowels), normalise=normalise, val_fraction=val_fraction, seed=seed,
                   groups=val_groups)
