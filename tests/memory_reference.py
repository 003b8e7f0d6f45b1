"""The external-memory equations in float64, one slot and one head at a time, written from the
papers for clarity, not speed: the NTM (Graves et al. 2014, §3) and the DNC (Graves et al.
2016, Methods). One batch element; vectors are 1-D tensors."""

import math

import torch


def cosine(u, v):
    """K[u, v] = u·v / (‖u‖ ‖v‖) (NTM eq. 6)."""
    return float(u @ v) / (math.sqrt(float(u @ u)) * math.sqrt(float(v @ v)))


def content(memory, key, beta):
    """w^c[i] = exp(β K[k, M[i]]) / Σ_j exp(β K[k, M[j]]) (NTM eq. 5)."""
    scores = [math.exp(beta * cosine(key, row)) for row in memory]
    return torch.tensor([s / sum(scores) for s in scores], dtype=torch.float64)


def interpolation(w_content, w_previous, g):
    """w^g = g w^c + (1 − g) w_{t−1} (NTM eq. 7)."""
    return torch.tensor(
        [g * c + (1 - g) * p for c, p in zip(w_content, w_previous, strict=True)],
        dtype=torch.float64,
    )


def circular_convolution(w, kernel):
    """w̃[i] = Σ_{j=0}^{N−1} w[j] s[i − j], indices mod N, with s the shift distribution laid
    out on the N slots: s[k mod N] = kernel[k + r] for k = −r…r, zero elsewhere (NTM eq. 8)."""
    n, r = len(w), (len(kernel) - 1) // 2
    s = [0.0] * n
    for k in range(-r, r + 1):
        s[k % n] += float(kernel[k + r])
    return torch.tensor(
        [sum(float(w[j]) * s[(i - j) % n] for j in range(n)) for i in range(n)], dtype=torch.float64
    )


def sharpening(w, gamma):
    """w[i] = w̃[i]^γ / Σ_j w̃[j]^γ (NTM eq. 9)."""
    powered = [float(x) ** gamma for x in w]
    return torch.tensor([p / sum(powered) for p in powered], dtype=torch.float64)


def read_vector(memory, w):
    """r = Σ_i w[i] M[i] (NTM eq. 2)."""
    return sum(float(w[i]) * memory[i] for i in range(len(w)))


def write(memory, weights, erases, adds):
    """Every head erases, M̃[i] = M[i] ∘ Π_h (1 − w_h[i] e_h) (eq. 3, the erasures multiply),
    then every head adds, M[i] = M̃[i] + Σ_h w_h[i] a_h (eq. 4)."""
    out = memory.clone()
    for i in range(memory.shape[0]):
        for w, e in zip(weights, erases, strict=True):
            out[i] = out[i] * (1 - w[i] * e)
        for w, a in zip(weights, adds, strict=True):
            out[i] = out[i] + w[i] * a
    return out


def ntm_weighting(memory, previous, key, beta, g, kernel, gamma):
    """One head's full addressing (NTM §3.3, Figure 2)."""
    w = interpolation(content(memory, key, beta), previous, g)
    return sharpening(circular_convolution(w, kernel), gamma)


# --- DNC ------------------------------------------------------------------------------------


def retention_vector(free_gates, read_weights):
    """ψ[i] = Π_h (1 − f_h w^r_h[i])."""
    n = len(read_weights[0])
    out = [1.0] * n
    for f, w in zip(free_gates, read_weights, strict=True):
        for i in range(n):
            out[i] *= 1 - float(f) * float(w[i])
    return torch.tensor(out, dtype=torch.float64)


def usage(previous, write_weights, psi):
    """u_t[i] = (u[i] + w^w[i] − u[i] w^w[i]) ψ[i]."""
    return torch.tensor(
        [
            (u + w - u * w) * p
            for u, w, p in zip(previous.tolist(), write_weights.tolist(), psi.tolist(), strict=True)
        ],
        dtype=torch.float64,
    )


def allocation(u):
    """a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i], φ the slots sorted by usage, ties by index
    (Python's sort is stable)."""
    order = sorted(range(len(u)), key=lambda i: float(u[i]))
    a = [0.0] * len(u)
    product = 1.0
    for slot in order:
        a[slot] = (1 - float(u[slot])) * product
        product *= float(u[slot])
    return torch.tensor(a, dtype=torch.float64)


def links(previous, w, p):
    """L[i][j] = (1 − w[i] − w[j]) L[i][j] + w[i] p[j] for i ≠ j; L[i][i] = 0."""
    n = len(w)
    out = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = (1 - w[i] - w[j]) * previous[i, j] + w[i] * p[j]
    return out


def precedence(previous, w):
    """p_t = (1 − Σ_i w[i]) p_{t−1} + w."""
    total = float(w.sum())
    return torch.tensor(
        [(1 - total) * float(p) + float(x) for p, x in zip(previous, w, strict=True)],
        dtype=torch.float64,
    )


def forward_backward(link, w):
    """f[i] = Σ_j L[i][j] w[j], b[j] = Σ_i L[i][j] w[i]."""
    n = len(w)
    f = [sum(float(link[i, j]) * float(w[j]) for j in range(n)) for i in range(n)]
    b = [sum(float(link[i, j]) * float(w[i]) for i in range(n)) for j in range(n)]
    return torch.tensor(f, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
