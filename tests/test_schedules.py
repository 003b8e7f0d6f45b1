"""Learning-rate schedules: pure functions of (step, budget share), so a resumed run follows
the same curve as an uninterrupted one."""

import pytest

from attnlab.config import TrainConfig
from attnlab.training.optim import learning_rate


def config(schedule, **extra):
    return TrainConfig(steps=100, lr=1.0, min_lr=0.0, warmup=10, schedule=schedule, **extra)


def test_linear_decays_in_a_straight_line_to_the_floor():
    cfg = config("linear")
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9, 0.09) == pytest.approx(1.0)
    assert learning_rate(cfg, 50, 0.5) == pytest.approx(0.5)
    assert learning_rate(cfg, 75, 0.75) == pytest.approx(0.25)
    assert learning_rate(cfg, 100, 1.0) == 0.0


def test_wsd_holds_the_peak_then_cools_down_over_its_share():
    cfg = config("wsd", options={"wsd": {"decay": 0.2}})
    assert learning_rate(cfg, 4, 0.04) == pytest.approx(0.5)
    assert learning_rate(cfg, 50, 0.5) == 1.0
    assert learning_rate(cfg, 80, 0.8) == pytest.approx(1.0)
    assert learning_rate(cfg, 90, 0.9) == pytest.approx(0.5)
    assert learning_rate(cfg, 100, 1.0) == pytest.approx(0.0)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "wsd"])
def test_a_time_budget_schedule_depends_on_the_share_spent_alone(schedule):
    """Under --minutes the share comes from the seconds trained, saved in the checkpoint
    (earlier processes' time included): the same share gives the same rate, whatever the
    step count a slower or faster machine reached."""
    cfg = TrainConfig(minutes=1.0, lr=1.0, min_lr=0.0, warmup=10, schedule=schedule)
    for share in (0.2, 0.55, 0.9):
        assert learning_rate(cfg, 100, share) == learning_rate(cfg, 3000, share)
