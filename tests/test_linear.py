"""Linear attention against Katharopoulos et al. 2020 in float64; the rest of its contract
(causality, padding, cache, round trip) is the conformance suite's."""

import pytest
import torch
import torch.nn.functional as F

from attnlab import ModelConfig
from attnlab.attention.linear import LinearAttention
from attnlab.cli import main
from tests.reference import relative_error


def core(chunk=64):
    return LinearAttention(ModelConfig(attention="linear", options={"linear": {"chunk": chunk}}))


def phi(x):
    return F.elu(x) + 1


def recurrent_reference(q, k, v):
    """Eq. 8-10 one position at a time: S_i = S_{i-1} + φ(K_i)V_iᵀ, z_i = z_{i-1} + φ(K_i),
    V'_i = φ(Q_i)ᵀS_i / φ(Q_i)ᵀz_i, for one head; q, k, v (t, d)."""
    t, d = q.shape
    s, z = torch.zeros(d, v.shape[1], dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    out = torch.zeros(t, v.shape[1], dtype=torch.float64)
    for i in range(t):
        s = s + torch.outer(phi(k[i]), v[i])
        z = z + phi(k[i])
        out[i] = phi(q[i]) @ s / (phi(q[i]) @ z)
    return out


def bidirectional_reference(q, k, v):
    """Eq. 6: every query against the sums over all keys, for one head."""
    kv = sum(torch.outer(phi(k[j]), v[j]) for j in range(len(k)))
    z = sum(phi(k[j]) for j in range(len(k)))
    return torch.stack([phi(q[i]) @ kv / (phi(q[i]) @ z) for i in range(len(q))])


@pytest.mark.parametrize("chunk", [1, 7, 16, 64])
def test_chunked_causal_attention_is_the_recurrence(chunk):
    q, k, v = (torch.randn(2, 3, 37, 8, dtype=torch.float64) for _ in range(3))
    out = core(chunk)(q, k, v, causal=True)
    for b in range(2):
        for h in range(3):
            expected = recurrent_reference(q[b, h], k[b, h], v[b, h])
            assert relative_error(out[b, h], expected) < 1e-5  # the EPS in the denominator


def test_bidirectional_attention_shares_one_sum_over_all_keys():
    q, k, v = (torch.randn(1, 2, 21, 8, dtype=torch.float64) for _ in range(3))
    out = core()(q, k, v)
    for h in range(2):
        assert relative_error(out[0, h], bidirectional_reference(q[0, h], k[0, h], v[0, h])) < 1e-5


def test_state_stays_the_same_size_however_long_the_text():
    attention = core(chunk=4)
    state = attention.new_state(capacity=0)
    for _ in range(5):
        attention(*(torch.randn(1, 2, 9, 8) for _ in range(3)), causal=True, state=state)
    assert state.length == 45
    assert state.sums.shape == (1, 2, 8, 8) and state.normaliser.shape == (1, 2, 8)


def test_trains_and_benchmarks_from_the_command_line(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_bytes(b"def f(x):\n    return x + 1\n" * 200)
    flags = ["--data", str(text), "--steps", "3", "--context", "32", "--depth", "1"]
    flags += ["--width", "32", "--heads", "2", "--batch-size", "4", "--sample-tokens", "8"]
    assert main(["train", "lm", *flags, "--attention", "linear", "--out", str(tmp_path / "r")]) == 0
    assert "linear attention" in capsys.readouterr().out
    plot = str(tmp_path / "bench.png")
    assert main(["bench", "attention", "--lengths", "64", "--kinds", "linear", "--plot", plot]) == 0
    assert "linear" in capsys.readouterr().out
