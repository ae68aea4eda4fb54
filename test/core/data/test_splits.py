"""SLP subject splits and Table 1 fractions, from the index logic (SPEC §5)."""

import pytest

from disrt_core.data import splits


def test_table1_fractions_exact_subjects_and_counts():
    assert splits.split_subjects("real_1_10") == [1, 2, 3, 4, 5, 6, 8, 9, 10]
    expected = {"11%": (9, 1215, 80), "24%": (19, 2565, 38), "37%": (29, 3915, 25),
                "49%": (39, 5265, 18), "100%": (79, 10665, 9)}
    for column, (n_subjects, n_samples, ratio) in expected.items():
        subjects = splits.split_subjects(splits.TABLE1_FRACTIONS[column])
        assert len(subjects) == n_subjects and 7 not in subjects
        assert splits.sample_count(subjects) == n_samples
        assert abs(splits.real_to_sim_ratio(subjects) - ratio) < 1  # the paper rounds loosely
        fraction = float(column[:-1]) / 100
        assert splits.fraction_subjects(fraction) == subjects
    assert splits.split_subjects("real_1_80") == [s for s in range(1, 81) if s != 7]


def test_test_split_and_others():
    assert splits.split_subjects(splits.TEST_SPLIT) == list(range(81, 103))
    assert splits.sample_count("real_81_102") == 2970
    assert len(splits.split_subjects("real_1_102")) == 101
    assert splits.split_subjects("real_71_102")[0] == 71
    assert splits.split_subjects("hospital_all") == [1, 2, 3, 4, 5, 6, 7]
    assert splits.sample_count([81], covers=1) == 45
    with pytest.raises(KeyError, match="unknown split"):
        splits.split_subjects("real_1_5")
    with pytest.raises(ValueError, match="fraction"):
        splits.fraction_subjects(0.0)


def test_split_files_round_trip_in_disrt_format(tmp_path):
    path = tmp_path / "real_1_10.txt"
    splits.write_split_file(path, splits.split_subjects("real_1_10"))
    assert path.read_text() == "00001\n00002\n00003\n00004\n00005\n00006\n00008\n00009\n00010"
    assert splits.read_split_file(path) == splits.split_subjects("real_1_10")
    path.write_text("00001\nfoo\n")
    with pytest.raises(ValueError, match=r"real_1_10.txt:2"):
        splits.read_split_file(path)
    with pytest.raises(FileNotFoundError):
        splits.read_split_file(tmp_path / "nope.txt")
