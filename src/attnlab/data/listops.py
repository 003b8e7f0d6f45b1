"""ListOps (Nangia & Bowman 2018), as generated for the Long Range Arena (Tay et al. 2021):
nested lists of digits under the operators MAX, MIN, MED (median, rounded down) and SM (sum
modulo 10); the label is the value of the whole expression, one of ten classes.

    [MAX 4 3 [MIN 2 3 ] 1 0 ]  ->  4

Generation follows LRA's generator: below the maximum depth a node is an operator with
probability 1/4 (else a digit) and an operator takes 2 to `max_args` arguments; an example is
kept if its length in tokens (operators, digits and closing brackets) lies in
[`min_length`, `max_length`], and examples are distinct across all splits. LRA's defaults:
depth 10, 10 arguments, 500 to 2,000 tokens, 96,000 / 2,000 / 2,000 examples. (LRA's files also
wrap every pair of nodes in parentheses, which its tokenizer drops again; the tokens here are
those without them.)

For speed, thousands of trees grow at once, level by level in NumPy: first only their shapes
(how many operators each level holds, and their argument counts), stopping a tree as soon as it
is too long; only the shapes that fit get operators placed, digits drawn and text written. The
examples follow the same distribution as LRA's depth-first generator, not its random stream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import option
from ..errors import UserError
from ..io import write_text
from .tables import ClassificationData, LabeledTexts

MAX, MIN, MED, SM = "[MAX", "[MIN", "[MED", "[SM"
OPERATORS = (MAX, MIN, MED, SM)
END = "]"
DIGITS = tuple(str(d) for d in range(10))
CLASSES = list(DIGITS)
VOCABULARY = (*DIGITS, *OPERATORS, END)  # token ids used while generating
END_ID = len(VOCABULARY) - 1
BATCH = 4096  # trees grown at once
OPERATOR_P = 0.25  # LRA's VALUE_P: the chance that a node above the deepest level is an operator
LRA_SIZES = (96_000, 2_000, 2_000)
LRA_MAX_LENGTH = 2_000
LRA_MAX_DEPTH = 10
LRA_MAX_ARGS = 10
SPLIT_NAMES = ("train", "valid", "test")


def size_option():
    """`--size`, of `train classify --data listops` and `data listops` alike."""
    return option(0, "ListOps: examples in all (0: LRA's 100,000)", at_least=0)


def max_length_option():
    return option(0, "ListOps: longest example in tokens (0: LRA's 2,000)", at_least=0)


def apply(operator: str, args: list[int]) -> int:
    if operator == MAX:
        return max(args)
    if operator == MIN:
        return min(args)
    if operator == MED:  # the mean of the middle two for an even count, rounded down (LRA)
        ordered, half = sorted(args), len(args) // 2
        return ordered[half] if len(args) % 2 else (ordered[half - 1] + ordered[half]) // 2
    return sum(args) % 10


def evaluate(text: str) -> int:
    """The value of a ListOps expression, read token by token with a stack of open lists."""
    frames: list[list] = [[None]]
    for token in text.split():
        if token in OPERATORS:
            frames.append([token])
        elif token == END:
            if len(frames) == 1:
                raise ValueError(f"unmatched {END!r} in {text[:80]!r}")
            operator, *args = frames.pop()
            if not args:
                raise ValueError(f"{operator} without arguments in {text[:80]!r}")
            frames[-1].append(apply(operator, args))
        elif token in DIGITS:
            frames[-1].append(int(token))
        else:
            raise ValueError(f"unknown ListOps token {token!r}")
    if len(frames) != 1 or len(frames[0]) != 2:
        raise ValueError(f"not one complete expression: {text[:80]!r}")
    return frames[0][1]


def segment_median(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """MED over contiguous segments: the middle value, or the floor of the mean of the middle
    two for an even count (LRA's `int(np.median(...))` on digits)."""
    segment = np.repeat(np.arange(len(counts)), counts)
    ordered = values[np.lexsort((values, segment))]
    half = starts + counts // 2
    return np.where(counts % 2, ordered[half], (ordered[half - 1] + ordered[half]) // 2)


def grow_shapes(
    rng: np.random.Generator, batch: int, max_depth: int, max_args: int, max_length: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Grow `batch` trees together level by level: per level, how many of each tree's nodes are
    operators and their argument counts (flat, tree after tree); and each tree's length.

    In LRA's depth-first process each node above the deepest level is an operator independently
    with probability 1/4 and draws its argument count independently, so a level's operator
    count is binomial in its node count. A tree stops growing once it is too long."""
    nodes = np.ones(batch, dtype=np.int64)  # on the current level, per tree
    length = np.ones(batch, dtype=np.int64)
    levels = []
    for _ in range(max_depth - 1):  # the deepest level holds digits only
        operators = rng.binomial(nodes, OPERATOR_P) * (length <= max_length)
        arities = rng.integers(2, max_args + 1, size=int(operators.sum()))
        nodes = np.bincount(np.repeat(np.arange(batch), operators), arities, batch).astype(np.int64)
        length += operators + nodes  # a closing bracket per operator, a token per argument
        levels.append((operators, arities))
        if not nodes.any():
            break
    return length, levels


def fill_trees(
    rng: np.random.Generator, levels: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[str], list[int]]:
    """Texts and values of random trees with the given shapes (as from `grow_shapes`).

    Top-down, each level's operators are placed uniformly among the level's nodes, their kinds
    and the digits drawn uniformly; an operator's arguments are the next nodes of the level
    below, in order. Bottom-up, values and subtree lengths; top-down again, each node's place in
    the depth-first token sequence: after its parent's token and its elder siblings' subtrees."""
    trees = len(levels[0][0])
    owner = np.arange(trees)  # tree of each node on the current level
    structure = []
    for operators, arities in levels:
        if not len(owner):
            break
        counts = np.bincount(owner, minlength=trees)
        order = np.lexsort((rng.random(len(owner)), owner))  # random order within each tree
        rank = np.empty(len(owner), dtype=np.int64)
        rank[order] = np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner[order]]
        op_nodes = np.flatnonzero(rank < operators[owner])
        starts = np.cumsum(arities) - arities  # first argument of each operator, level below
        kinds = rng.integers(0, len(OPERATORS), size=len(op_nodes))
        structure.append((owner, op_nodes, arities, starts, kinds))
        owner = np.repeat(owner[op_nodes], arities)
    if len(owner):
        structure.append((owner, np.zeros(0, np.int64), *(np.zeros(0, np.int64),) * 3))

    values, sizes = [], []
    for owner, op_nodes, arities, starts, kinds in reversed(structure):
        value = rng.integers(0, 10, size=len(owner))
        size = np.ones(len(owner), dtype=np.int64)
        if len(op_nodes):
            below, below_size = values[-1], sizes[-1]
            results = np.stack(
                [
                    np.maximum.reduceat(below, starts),
                    np.minimum.reduceat(below, starts),
                    segment_median(below, starts, arities),
                    np.add.reduceat(below, starts) % 10,
                ]
            )  # (4, operators), in the order of OPERATORS
            value[op_nodes] = results[kinds, np.arange(len(op_nodes))]
            size[op_nodes] = 2 + np.add.reduceat(below_size, starts)
        values.append(value)
        sizes.append(size)
    values.reverse()
    sizes.reverse()

    offsets = np.cumsum(sizes[0]) - sizes[0]  # where each tree starts in `tokens`
    tokens = np.empty(int(sizes[0].sum()), dtype=np.int64)
    position = np.zeros(trees, dtype=np.int64)  # within its tree, per node of the level
    for depth, (owner, op_nodes, arities, starts, kinds) in enumerate(structure):
        token = values[depth].copy()
        token[op_nodes] = len(DIGITS) + kinds
        tokens[offsets[owner] + position] = token
        op_position = position[op_nodes]
        tokens[offsets[owner[op_nodes]] + op_position + sizes[depth][op_nodes] - 1] = END_ID
        if depth + 1 < len(structure):
            child_size = sizes[depth + 1]
            before = np.cumsum(child_size) - child_size
            parent = np.repeat(np.arange(len(op_nodes)), arities)
            position = op_position[parent] + 1 + before - before[starts][parent]

    words = np.array(VOCABULARY)[tokens].tolist()
    bounds = np.append(offsets, len(tokens)).tolist()
    texts = [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    return texts, values[0].tolist()


def generate(
    count: int,
    max_length: int = LRA_MAX_LENGTH,
    min_length: int | None = None,
    max_depth: int = LRA_MAX_DEPTH,
    max_args: int = LRA_MAX_ARGS,
    seed: int = 0,
) -> LabeledTexts:
    """`count` distinct expressions of `min_length` to `max_length` tokens (min_length defaults
    to a quarter of max_length, LRA's 500 of 2,000), the same for the same arguments."""
    min_length = max(max_length // 4, 1) if min_length is None else min_length
    if not 1 <= min_length <= max_length:
        raise UserError(f"ListOps lengths need 1 <= min {min_length} <= max {max_length}")
    if max_depth < 2 or max_args < 2:
        raise UserError("ListOps needs max_depth >= 2 and max_args >= 2")
    rng = np.random.default_rng(seed)
    seen: dict[str, str] = {}
    fruitless = 0  # batches in a row that found no new expression
    while len(seen) < count:
        if fruitless == 50:
            raise UserError(
                f"ListOps: found only {len(seen)} distinct expressions of {min_length} to "
                f"{max_length} tokens, fewer than the {count} asked for; allow longer ones"
            )
        before = len(seen)
        length, levels = grow_shapes(rng, BATCH, max_depth, max_args, max_length)
        kept = (length >= min_length) & (length <= max_length)
        if not kept.any():
            fruitless += 1
            continue
        shapes = []
        for operators, arities in levels:  # the kept trees' part of each level
            shapes.append((operators[kept], arities[np.repeat(kept, operators)]))
        for text, value in zip(*fill_trees(rng, shapes), strict=True):
            seen.setdefault(text, DIGITS[value])
            if len(seen) == count:
                break
        fruitless = 0 if len(seen) > before else fruitless + 1
    return LabeledTexts(list(seen), list(seen.values()), "<listops>")


def split_sizes(size: int | None) -> tuple[int, int, int]:
    """LRA's 96,000 / 2,000 / 2,000, or `size` training examples with validation and test
    sets in LRA's proportion (1/48 each, at least 10)."""
    if size is None:
        return LRA_SIZES
    if size < 1:
        raise UserError(f"ListOps size must be at least 1, got {size}")
    held = max(size * LRA_SIZES[1] // LRA_SIZES[0], 10)
    return size, held, held


def load_listops(
    size: int | None = None,
    max_length: int = LRA_MAX_LENGTH,
    min_length: int | None = None,
    seed: int = 0,
) -> ClassificationData:
    """Freshly generated train / valid / test splits with classes "0".."9"."""
    sizes = split_sizes(size)
    everything = generate(sum(sizes), max_length, min_length, seed=seed)
    bounds = [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    parts = []
    for name, start, stop in zip(SPLIT_NAMES, bounds, bounds[1:], strict=False):
        part = everything.subset(range(start, stop))
        part.source = f"<listops {name}>"
        parts.append(part)
    return ClassificationData(*parts, classes=list(CLASSES))


def write_listops(
    out: str | Path,
    size: int | None = None,
    max_length: int = LRA_MAX_LENGTH,
    min_length: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write `train.tsv`, `valid.tsv` and `test.tsv` (header `text<TAB>label`) into `out`;
    returns their paths by split name. `attnlab train classify --data out/train.tsv` reads them."""
    out = Path(out)
    paths = {name: out / f"{name}.tsv" for name in SPLIT_NAMES}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]}: already exists; choose another --out or --overwrite")
    data = load_listops(size, max_length, min_length, seed)
    for name, path in paths.items():
        part = data.split(name)
        rows = "".join(f"{t}\t{y}\n" for t, y in zip(part.texts, part.labels, strict=True))
        write_text(path, "text\tlabel\n" + rows)
    return paths
