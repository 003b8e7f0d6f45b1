"""Search budgets: the stack's parameters and forward FLOPs (Kaplan et al. 2020, Table 1), and
the widest model within them."""

import dataclasses

from attnlab import ModelConfig
from attnlab.models.base import parameter_count
from attnlab.models.stack import build_stack
from attnlab.search.budget import forward_flops, stack_parameters, widest


def test_stack_parameters_are_those_of_the_built_stack():
    cfg = ModelConfig(depth=3, width=64, heads=4, activation="swiglu", qkv_conv=3)
    assert stack_parameters(cfg) == parameter_count(build_stack(cfg))
    n = stack_parameters(cfg)
    assert forward_flops(cfg) == 2 * n + 2 * 3 * cfg.context * 64


def test_widest_is_the_largest_multiple_that_fits():
    cfg = ModelConfig(depth=4, width=32, heads=4)
    for budget in (100_000, 800_000, 3_000_000):
        width = widest(cfg, budget, 0, step=32)
        assert stack_parameters(dataclasses.replace(cfg, width=width)) <= budget
        assert stack_parameters(dataclasses.replace(cfg, width=width + 32)) > budget
    assert widest(cfg, 10, 0, step=32) is None
    flops = forward_flops(dataclasses.replace(cfg, width=128))
    assert widest(cfg, 0, flops, step=32) == 128
