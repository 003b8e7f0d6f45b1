import time
from collections import Counter

import pytest

from attnlab.data.listops import (
    LRA_SIZES,
    apply,
    evaluate,
    generate,
    load_listops,
    split_sizes,
    write_listops,
)
from attnlab.data.tables import load_tables
from attnlab.errors import UserError


@pytest.mark.parametrize(
    "text, value",
    [
        ("[MAX 4 3 [MIN 2 3 ] 1 0 ]", 4),
        ("[MIN 4 3 [MAX 2 9 ] 1 0 ]", 0),
        ("[SM 9 8 7 ]", 4),  # 24 mod 10
        ("[MED 1 9 4 ]", 4),
        ("[MED 1 2 7 8 ]", 4),  # (2 + 7) / 2 rounded down
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[SM [MED 3 1 ] [MAX 5 [SM 5 5 ] ] 9 ]", 6),  # 2 + 5 + 9 = 16
        ("7", 7),
    ],
)
def test_evaluator_matches_hand_computed_values(text, value):
    assert evaluate(text) == value


@pytest.mark.parametrize("text", ["[MAX 1 2", "[MAX 1 ] ]", "[MAX ]", "[FOO 1 2 ]", "1 2"])
def test_evaluator_rejects_malformed_expressions(text):
    with pytest.raises(ValueError):
        evaluate(text)


def test_median_of_an_even_count_rounds_the_middle_mean_down():
    assert apply("[MED", [0, 3]) == 1 and apply("[MED", [5, 5, 6, 6]) == 5


def test_every_generated_label_is_the_true_value_and_lengths_are_in_bounds():
    data = generate(3000, max_length=200, min_length=20, seed=1)
    lengths = [len(t.split()) for t in data.texts]
    assert min(lengths) >= 20 and max(lengths) <= 200
    assert all(evaluate(t) == int(y) for t, y in zip(data.texts, data.labels, strict=True))
    assert len(set(data.texts)) == 3000
    counts = Counter(data.labels)
    assert set(counts) == set("0123456789")
    tokens = {tok for t in data.texts for tok in t.split()}
    assert tokens == {"[MAX", "[MIN", "[MED", "[SM", "]", *"0123456789"}


def test_generation_is_deterministic_for_a_seed():
    assert generate(50, max_length=100, seed=7).texts == generate(50, max_length=100, seed=7).texts
    assert generate(50, max_length=100, seed=7).texts != generate(50, max_length=100, seed=8).texts


def test_twenty_thousand_examples_of_up_to_500_tokens_take_seconds():
    start = time.perf_counter()
    data = generate(20_000, max_length=500, seed=0)
    assert len(data) == 20_000 and time.perf_counter() - start < 15
    assert max(len(t.split()) for t in data.texts) <= 500


def test_lra_split_sizes_and_scaled_small_runs():
    assert split_sizes(None) == LRA_SIZES == (96_000, 2_000, 2_000)
    assert split_sizes(4800) == (4800, 100, 100)
    assert split_sizes(50) == (50, 10, 10)


def test_splits_never_share_an_expression():
    data = load_listops(size=480, max_length=120, seed=2)
    assert (len(data.train), len(data.valid), len(data.test)) == (480, 10, 10)
    assert data.classes == list("0123456789")
    texts = [set(data.split(name).texts) for name in ("train", "valid", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_written_files_read_back_as_the_same_examples(tmp_path):
    paths = write_listops(tmp_path, size=96, max_length=60, seed=3)
    assert paths["train"].read_text().splitlines()[0] == "text\tlabel"
    read = load_tables(paths["train"], paths["valid"], paths["test"])
    made = load_listops(size=96, max_length=60, seed=3)
    assert read.train.texts == made.train.texts and read.test.labels == made.test.labels


def test_impossible_requests_are_user_errors():
    with pytest.raises(UserError, match="distinct expressions"):
        generate(1000, max_length=4)
    with pytest.raises(UserError, match="min 50 <= max 40"):
        generate(10, max_length=40, min_length=50)


class TooLong(Exception):
    pass


def depth_first_reference(rng, depth, out, max_depth=10, max_args=10, limit=100):
    """LRA's generator as written: a node is an operator with probability 1/4 above the
    deepest level; its arguments are generated one after another, depth first. (Stopping at
    `limit` tokens only saves time: such a tree would be rejected anyway.)"""
    if depth < max_depth and rng.random() < 0.25:
        operator = rng.choice(["[MAX", "[MIN", "[MED", "[SM"])
        out.append(operator)
        args = [
            depth_first_reference(rng, depth + 1, out, max_depth, max_args, limit)
            for _ in range(rng.randint(2, max_args))
        ]
        out.append("]")
        value = apply(operator, args)
    else:
        out.append(str(value := rng.randrange(10)))
    if len(out) > limit:
        raise TooLong
    return value


def test_level_by_level_generation_has_the_distribution_of_lras_depth_first_one():
    import random

    rng, reference = random.Random(0), []
    while len(reference) < 2000:
        out = []
        try:
            value = depth_first_reference(rng, 1, out)
        except TooLong:
            continue
        if len(out) >= 20:
            reference.append((out, value))
    ours = generate(2000, max_length=100, min_length=20, seed=0)

    def stats(samples):
        n = len(samples)
        lengths = sum(len(tokens) for tokens, _ in samples) / n
        operators = sum(tokens.count("]") for tokens, _ in samples) / n
        roots = Counter(tokens[0] for tokens, _ in samples)
        labels = Counter(value for _, value in samples)
        return (
            lengths,
            operators,
            [roots[o] / n for o in ("[MAX", "[MIN", "[MED", "[SM")],
            [labels[v] / n for v in range(10)],
        )

    mine = stats([(t.split(), int(y)) for t, y in zip(ours.texts, ours.labels, strict=True)])
    theirs = stats(reference)
    assert mine[0] == pytest.approx(theirs[0], abs=2.0)  # mean length, sd about 0.45
    assert mine[1] == pytest.approx(theirs[1], abs=0.4)  # operators per example
    assert mine[2] == pytest.approx(theirs[2], abs=0.04)  # root operator shares, sd about 0.01
    assert mine[3] == pytest.approx(theirs[3], abs=0.04)  # label shares
