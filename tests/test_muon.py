"""Muon (Jordan et al. 2024) with AdamW beside it, in one optimiser: each step against its
equations written out in float64, and its state through a checkpoint."""

import pytest
import torch

from attnlab import LanguageModel, ModelConfig
from attnlab.config import TrainConfig
from attnlab.training.optim import make_optimizer
from attnlab.training.optimizers.muon import MuonAdamW, hidden_matrices, newton_schulz

CPU = torch.device("cpu")


def reference_newton_schulz(g, steps=5):
    """X0 = G/‖G‖_F; X <- aX + b(XXᵀ)X + c(XXᵀ)²X, written on the matrix as given."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.double() / g.double().norm()
    for _ in range(steps):
        x = a * x + b * (x @ x.T) @ x + c * (x @ x.T) @ (x @ x.T) @ x
    return x


@pytest.mark.parametrize("shape", [(12, 30), (30, 12), (16, 16)])
def test_newton_schulz_is_its_iteration_and_nearly_orthogonal(shape):
    g = torch.randn(*shape, dtype=torch.float64)
    x = newton_schulz(g, eps=0.0)
    assert torch.allclose(x, reference_newton_schulz(g), atol=1e-10)
    # every singular value is pushed into a band around one (Jordan et al. 2024: ~0.7 to 1.2)
    singular = torch.linalg.svdvals(x)
    assert singular.min() > 0.6 and singular.max() < 1.25
    # and the singular vectors are g's: x ≈ U·S'·Vᵀ, so Uᵀ x V is diagonal
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    inner = u.T @ x @ vh.T
    assert torch.allclose(inner, torch.diag(torch.diagonal(inner)), atol=1e-8)


def test_muon_step_is_its_equation():
    """W <- W(1 - lr·wd) - lr·√max(1, rows/cols)·NS(G + μM), M <- μM + G."""
    w = torch.nn.Parameter(torch.randn(24, 8, dtype=torch.float64))
    opt = MuonAdamW([{"params": [w], "muon": True, "weight_decay": 0.1}], lr=0.05, momentum=0.9)
    expected, m = w.detach().clone(), torch.zeros_like(w)
    for _ in range(3):
        g = torch.randn_like(w)
        w.grad = g.clone()
        opt.step()
        m = 0.9 * m + g
        expected = expected * (1 - 0.05 * 0.1)
        expected -= 0.05 * (24 / 8) ** 0.5 * reference_newton_schulz(g + 0.9 * m)
        assert torch.allclose(w.detach(), expected, atol=1e-9)


def test_adamw_groups_step_as_torch_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 7, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    ours = MuonAdamW([{"params": [a], "weight_decay": 0.1}], lr=0.01, betas=(0.9, 0.95))
    torch_adamw = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    for _ in range(4):
        g = torch.randn_like(a)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        torch_adamw.step()
    assert torch.allclose(a, b, atol=1e-12)


def test_hidden_matrices_leave_embeddings_head_and_gains_to_adamw():
    for tie in (True, False):
        lm = LanguageModel(ModelConfig(vocab_size=40, context=8, depth=2, width=16, heads=2,
                                       tie_weights=tie))  # fmt: skip
        hidden, rest = hidden_matrices(lm)
        hidden_ids = {id(p) for p in hidden}
        assert id(lm.embedding.tokens.weight) not in hidden_ids
        assert id(lm.head.weight) not in hidden_ids
        assert all(p.dim() == 2 for p in hidden) and len(hidden) == 2 * 4  # qkv, out, ff×2
        assert len(hidden) + len(rest) == len(list(lm.parameters()))


def test_muon_rate_rides_on_the_schedule_and_its_state_survives_a_round_trip():
    lm = LanguageModel(ModelConfig(vocab_size=40, context=8, depth=1, width=16, heads=2))
    cfg = TrainConfig(steps=10, lr=0.002, optimizer="muon", options={"muon": {"lr": 0.03}})
    opt = make_optimizer(lm, cfg, CPU)
    assert opt.param_groups[0]["muon"] and opt.param_groups[0]["lr_scale"] == pytest.approx(15)
    lm(torch.randint(0, 40, (2, 8))).sum().backward()
    opt.step()
    again = make_optimizer(lm, cfg, CPU)
    again.load_state_dict(opt.state_dict())
    for p in lm.parameters():
        for key, value in opt.state[p].items():
            assert torch.equal(again.state[p][key], value)


def test_a_resumed_muon_run_matches_an_uninterrupted_one(tmp_path):
    """Momentum buffers and Adam moments come back from the checkpoint, exactly."""
    from tests.test_train import run

    settings = dict(optimizer="muon", schedule="linear", min_lr=0.0, lr=3e-3)
    straight, _ = run(tmp_path / "a", steps=8, **settings)
    run(tmp_path / "b", steps=4, **settings)
    resumed, summary = run(tmp_path / "b", steps=8, resume=True, **settings)
    assert summary.step == 8
    tokens = torch.randint(0, 256, (2, 16))
    straight.eval(), resumed.eval()
    assert torch.allclose(straight(tokens), resumed(tokens), atol=1e-6)
