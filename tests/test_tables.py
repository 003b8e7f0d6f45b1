import json
from collections import Counter

import numpy as np
import pytest

from attnlab.data.tables import (
    LabeledTexts,
    class_names,
    label_ids,
    load_tables,
    read_table,
    stratified_split,
)
from attnlab.errors import UserError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_quoted_commas_and_line_breaks_is_read(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"good, very good",pos\n"bad\nreally",neg\n')
    data = read_table(path)
    assert data.texts == ["good, very good", "bad\nreally"] and data.labels == ["pos", "neg"]
    assert data.lines == [2, 4]  # the second record ends on the file's fourth line


def test_jsonl_and_tsv_with_other_column_names_and_numeric_labels(tmp_path):
    rows = [{"review": "fine", "stars": 5}, {"review": "poor", "stars": 1}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = read_table(path, label_column="stars")
    assert data.texts == ["fine", "poor"] and data.labels == ["5", "1"]
    tsv = write(tmp_path / "d.tsv", "Sentence\tSentiment\nok\tpositive\n")
    assert read_table(tsv).labels == ["positive"]  # guessed, case-insensitively


def test_classes_sort_numbers_numerically():
    data = LabeledTexts(["a"] * 4, ["10", "2", "1", "2"])
    assert class_names(data) == ["1", "2", "10"]
    assert label_ids(data, ["1", "2", "10"]).tolist() == [2, 1, 0, 1]


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path / "d.csv", "body_text,y_true\nx,1\n")
    with pytest.raises(
        UserError, match=r"d\.csv: cannot tell which column holds the text.*body_text"
    ):
        read_table(path)
    with pytest.raises(UserError, match=r"no label column 'lab'; the columns are \['body_text'"):
        read_table(path, text_column="body_text", label_column="lab")


def test_empty_text_names_its_line(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nok,a\n  ,b\n")
    with pytest.raises(UserError, match=r"d\.csv, line 3: empty or missing text"):
        read_table(path)
    path = write(tmp_path / "d.jsonl", '{"text": "ok", "label": "a"}\n{"text": "x"}\n')
    with pytest.raises(UserError, match=r"d\.jsonl, line 2: empty or missing label"):
        read_table(path)


def test_malformed_rows_name_their_line(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nok,a\ntoo,many,fields\n")
    with pytest.raises(UserError, match=r"d\.csv, line 3: 3 fields where the header has 2"):
        read_table(path)
    path = write(tmp_path / "e.csv", 'text,label\nok,a\n"bad"quote,b\n')
    with pytest.raises(UserError, match=r"e\.csv, line 3: malformed row"):
        read_table(path)
    path = write(tmp_path / "f.jsonl", '{"text": "ok", "label": 1}\n{"text": oops}\n')
    with pytest.raises(UserError, match=r"f\.jsonl, line 2: not valid JSON"):
        read_table(path)


def test_empty_missing_or_binary_files_are_named(tmp_path):
    with pytest.raises(UserError, match=r"e\.csv: no examples"):
        read_table(write(tmp_path / "e.csv", ""))
    with pytest.raises(UserError, match=r"h\.csv: no examples"):
        read_table(write(tmp_path / "h.csv", "text,label\n"))
    with pytest.raises(UserError, match=r"nowhere\.csv: no such file"):
        read_table(tmp_path / "nowhere.csv")
    (tmp_path / "b.csv").write_bytes(b"text,label\n\xff\xfe,1\n")
    with pytest.raises(UserError, match=r"b\.csv: not UTF-8"):
        read_table(tmp_path / "b.csv")


def test_single_class_is_refused(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,x\nb,x\n")
    with pytest.raises(
        UserError, match=r"d\.csv: a classifier needs at least 2 labels, found only 'x'"
    ):
        load_tables(path)


def test_test_labels_unseen_in_training_are_named_with_their_line(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,x\nd,y\n")
    test = write(tmp_path / "test.csv", "text,label\na,x\nb,z\n")
    with pytest.raises(UserError, match=r"test\.csv, line 3: label 'z' was never seen in training"):
        load_tables(train, valid=train, test=test)


def test_stratified_split_keeps_class_shares_and_is_fixed_by_seed():
    labels = ["a"] * 80 + ["b"] * 20
    data = LabeledTexts([f"t{i}" for i in range(100)], labels)
    rest, held = stratified_split(data, 0.1, seed=3)
    assert Counter(held.labels) == {"a": 8, "b": 2} and len(rest) == 90
    assert set(rest.texts).isdisjoint(held.texts)
    assert stratified_split(data, 0.1, seed=3)[1].texts == held.texts
    assert stratified_split(data, 0.1, seed=4)[1].texts != held.texts


def test_stratified_split_holds_out_a_rare_class_but_never_all_of_it():
    data = LabeledTexts(["x"] * 12, ["a"] * 10 + ["b"] * 2)
    rest, held = stratified_split(data, 0.1)
    assert Counter(held.labels) == {"a": 1, "b": 1} and Counter(rest.labels)["b"] == 1


def test_load_tables_without_valid_file_carves_it_from_train(tmp_path):
    rows = "".join(f"text {i},{'pos' if i % 3 else 'neg'}\n" for i in range(30))
    data = load_tables(write(tmp_path / "d.csv", "text,label\n" + rows), seed=1)
    assert data.classes == ["neg", "pos"]
    assert len(data.train) + len(data.valid) == 30 and data.test is None
    assert np.array_equal(
        label_ids(data.valid, data.classes), [0 if t == "neg" else 1 for t in data.valid.labels]
    )
    with pytest.raises(UserError, match="no 'test' split"):
        data.split("test")
