import math

import pytest
import torch

from attnlab.positions import Rotary, alibi_bias, alibi_slopes, sinusoidal_table


def test_sinusoidal_table_is_the_vaswani_formula():
    table = sinusoidal_table(20, 8)
    for p in range(20):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert math.isclose(table[p, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[p, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_sinusoidal_table_continues_past_its_start():
    assert torch.allclose(sinusoidal_table(5, 8, start=10), sinusoidal_table(15, 8)[10:])


def rotate_reference(x, position, base=10000.0):
    """Su et al. 2021, eq. 34: a block-diagonal rotation R_θ,p applied to x (d,)."""
    d = x.shape[-1]
    out = torch.zeros(d, dtype=torch.float64)
    for i in range(d // 2):
        angle = position * base ** (-2 * i / d)
        c, s = math.cos(angle), math.sin(angle)
        out[2 * i] = c * x[2 * i] - s * x[2 * i + 1]
        out[2 * i + 1] = s * x[2 * i] + c * x[2 * i + 1]
    return out


def test_rotary_matches_rotation_matrices():
    rotary = Rotary(8, context=16)
    x = torch.randn(1, 1, 6, 8)
    rotated = rotary(x, start=3)
    for t in range(6):
        expected = rotate_reference(x[0, 0, t].double(), 3 + t)
        assert torch.allclose(rotated[0, 0, t].double(), expected, atol=1e-5)


def test_rotary_scores_depend_only_on_relative_position():
    rotary = Rotary(16, context=64)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    score = lambda m, n: (rotary(q, m) * rotary(k, n)).sum().item()  # noqa: E731
    assert math.isclose(score(5, 2), score(40, 37), rel_tol=1e-4)


def test_rotary_extends_past_its_table():
    rotary = Rotary(8, context=4)
    x = torch.randn(1, 1, 3, 8)
    assert torch.allclose(
        rotary(x, start=10)[0, 0, 0].double(), rotate_reference(x[0, 0, 0].double(), 10), atol=1e-5
    )


def test_rotary_takes_any_layout_and_low_precision():
    rotary = Rotary(8, context=16)
    wide = torch.randn(2, 3, 5, 9)
    odd_start = wide[..., 1:]  # a view starting at an odd offset, as slices of a fused q/k/v
    assert torch.equal(rotary(odd_start, 2), rotary(odd_start.contiguous(), 2))
    half = odd_start.bfloat16()
    out = rotary(half, 2)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), rotary(half.float(), 2), atol=1e-2)
    with pytest.warns(UserWarning):  # torch warns that the complex table lost its imaginary part
        cast = Rotary(8, context=16).to(torch.bfloat16)
    assert torch.equal(cast(half, 2), out)
    double = rotary(odd_start.double(), 2)
    expected = rotate_reference(odd_start[1, 2, 4].double(), 6)
    assert double.dtype == torch.float64 and torch.allclose(double[1, 2, 4], expected, atol=1e-6)


def test_alibi_slopes_follow_the_paper():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert alibi_slopes(6).shape == (6,) and torch.all(alibi_slopes(6) > 0)


def test_alibi_bias_penalises_distance_linearly():
    bias = alibi_bias(2, 3, 5, device=torch.device("cpu"))
    slope = alibi_slopes(2)[0]
    assert bias.shape == (2, 3, 5)
    # query 0 sits at absolute position 2
    assert torch.allclose(bias[0, 0], -slope * torch.tensor([2.0, 1, 0, 1, 2]))
