"""Every layer's and every head's attention weights, computed on demand.

A forward pre-hook on each attention core sees exactly what the core is handed — per-head
queries and keys after the position encoding, the padding mask, causality and the score bias —
and asks the core for `weights(q, k, ...)`, the matrix it multiplies the values with
(`attention/base.py`). The maps are therefore the same whichever path the model runs (the fused
kernel never forms them), no core keeps anything between calls, and a model trained on the
fused path is looked at as it is.

Per kind, what the maps hold:
- a stack of blocks gives one map per block; the Universal Transformer's shared block runs once
  per step, so it gives one map per step, and with ACT `ponder` counts each position's steps
  (Graves 2016, N in §2);
- Transformer-XL reads a text longer than its context in segments; the maps are those of the
  last segment, whose keys are `memory` positions of earlier text followed by the segment
  (Dai et al. 2019, §3.2);
- `seen` marks the keys each query may see at all: causality, padding and a sparse core's
  pattern (Child et al. 2019, §4.2), so a zero weight inside the pattern is told apart from a
  key outside it;
- a core that approximates softmax attention (Nyström, Xiong et al. 2021) gets the exact
  softmax(QKᵀ/√d) of the same queries and keys beside its own matrix;
- an encoder-decoder (Vaswani et al. 2017, §3.2.3) gives three sets (`translation_maps`): the
  encoder's self-attention, the decoder's causal self-attention, and the cross-attention of
  each target position over the source, the alignment of the translation papers (Bahdanau et
  al. 2015, Figure 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import Core, allowed_mask
from ..attention.base import softmax_scale
from ..attention.dense import masked_scores
from ..models.classifier import Classifier
from ..models.seq2seq import Seq2Seq
from ..models.stack import reads_segments


@dataclass
class AttentionMaps:
    """What `attention_maps` returns. Positions count the model's own prefix (a classifier's
    CLS vector, `prefix` of them) before the tokens; the queries are the tokens from
    `first_query` on, the keys the `memory` tokens before those and then the queries'."""

    weights: list[Tensor]  # one per layer (or step): (b, h, t, s)
    names: list[str]  # "layer 1", ... or "step 1", ...
    core: str  # the attention core's registered name
    seen: Tensor | None  # (b or 1, 1, t, s) bool: the keys a query may see; None: all
    exact: list[Tensor] | None  # the exact softmax per layer, beside an approximation
    ponder: Tensor | None  # (b, t): steps each position took (ACT)
    output: Tensor  # what the model returned: logits
    memory: int = 0
    first_query: int = 0
    prefix: int = 0
    attribution: Tensor | None = None  # (b, t): a classifier's pooled vector, per position
    no_rollout: str = ""  # why rollout does not apply to these maps, where it does not

    @property
    def layers(self) -> int:
        return len(self.weights)

    @property
    def heads(self) -> int:
        return self.weights[0].shape[1]

    def stacked(self) -> Tensor:
        """(layers, b, h, t, s)."""
        return torch.stack(self.weights)

    def head_average(self) -> Tensor:
        """(layers, b, t, s): each layer's weights averaged over its heads."""
        return self.stacked().mean(dim=2)

    def rollout(self) -> Tensor | None:
        """(layers, b, t, t): attention rollout up to each layer (Abnar & Zuidema 2020, §3).

        The residual connection is accounted for as an identity beside the head-averaged
        weights, Ã = ½A + ½I, rows renormalised; rollout multiplies these from the first layer
        up, R_l = Ã_l · R_{l-1}, so R_l[i, j] is how much of input token j reaches position i
        after layer l. It needs square maps, so it is None where keys include a memory, and
        where `no_rollout` says why it does not apply.
        """
        if self.memory or self.no_rollout:
            return None
        averaged = self.head_average().double()
        eye = torch.eye(averaged.shape[-1], dtype=torch.float64, device=averaged.device)
        rolled, current = [], None
        for a in averaged:  # (b, t, t)
            mixed = 0.5 * a + 0.5 * eye
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            current = mixed if current is None else mixed @ current
            rolled.append(current)
        return torch.stack(rolled).to(self.weights[0].dtype)


class Recorder:
    """Forward pre-hooks on every attention core of a model, collecting what they see."""

    def __init__(self, model: nn.Module):
        self.cores = [m for m in model.modules() if isinstance(m, Core)]
        if not self.cores:
            raise ValueError(f"{type(model).__name__} has no attention core to look at")
        self.weights: list[Tensor] = []
        self.exact: list[Tensor] = []
        self.seen: Tensor | None = None
        self.handles: list[Any] = []
        self.on = True

    def __enter__(self) -> Recorder:
        for core in self.cores:
            self.handles.append(core.register_forward_pre_hook(self.capture, with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def reset(self) -> None:
        self.weights, self.exact, self.seen = [], [], None

    def capture(self, core: Core, args: tuple, kwargs: dict) -> None:
        if not self.on:
            return
        q, k = args[0], args[1]
        if kwargs.get("state") is not None:
            raise ValueError("attention maps are taken without a key/value cache")
        mask, causal, bias = kwargs.get("key_mask"), kwargs.get("causal", False), kwargs.get("bias")
        self.weights.append(core.weights(q, k, key_mask=mask, causal=causal, bias=bias).float())
        if getattr(core, "approximates_softmax", False):
            scale = softmax_scale(q.shape[-1])
            exact = masked_scores(q.float(), k.float(), scale, mask, False, bias).softmax(-1)
            self.exact.append(exact)
        if self.seen is None:
            t, s = q.shape[2], k.shape[2]
            # A core with a pattern of its own (sparse) says which keys it reads.
            pattern = getattr(core, "allowed", None)
            args = (mask, causal, t, s, q.device)
            self.seen = pattern(*args) if pattern is not None else allowed_mask(*args)


@torch.no_grad()
def attention_maps(model: nn.Module, tokens: Tensor, mask: Tensor | None = None) -> AttentionMaps:
    """Every layer's and head's attention weights for `tokens` (t,) or (b, t).

    `mask` (b, t) marks real tokens (a classifier's padding). A Transformer-XL language model
    reads tokens beyond its context as segments, carrying its memory, and returns the maps of
    the last segment. The model is put in eval mode (no dropout) and left as it was.
    """
    if isinstance(model, Seq2Seq):
        raise ValueError("an encoder-decoder reads a source and a target: use translation_maps")
    tokens = tokens[None] if tokens.dim() == 1 else tokens
    was_training = model.training
    model.eval()
    cfg = model.cfg
    stack = model.stack
    segments = [tokens]
    if tokens.shape[1] > cfg.context and reads_segments(cfg.model):
        # Cut so that the last segment, the one shown, is a whole context long.
        first = tokens.shape[1] % cfg.context
        segments = list(tokens[:, first:].split(cfg.context, dim=1))
        segments = [tokens[:, :first]] * bool(first) + segments
    hidden: list[Tensor] = []
    hook = None
    if isinstance(model, Classifier):  # what the pooling reads, for the attribution
        hook = model.norm.register_forward_hook(lambda m, i, out: hidden.append(out))
    try:
        with Recorder(model) as recorder:
            state = model.new_state() if len(segments) > 1 else None
            for segment in segments:
                recorder.reset()
                extra = mask if mask is not None else state  # a padding mask, or the memory
                output = model(segment) if extra is None else model(segment, extra)
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    weights = recorder.weights
    t, s = weights[0].shape[2], weights[0].shape[3]
    prefix = t - segments[-1].shape[1]
    step_names = not getattr(type(stack), "uses_depth", True)
    names = [f"{'step' if step_names else 'layer'} {i + 1}" for i in range(len(weights))]
    ponder = None
    halting = getattr(stack, "halting_weights", None)
    if step_names and halting is not None:
        ponder = (halting > 0).sum(dim=-1)  # N: the steps a position ran before halting
    maps = AttentionMaps(
        weights=weights,
        names=names,
        core=cfg.attention,
        seen=recorder.seen,
        exact=recorder.exact or None,
        ponder=ponder,
        output=output,
        memory=s - t,
        first_query=tokens.shape[1] - segments[-1].shape[1],
        prefix=prefix,
    )
    if hidden:
        maps.attribution = pooled_attribution(model, maps, hidden[-1], mask)
    return maps


def pooled_attribution(
    model: Classifier, maps: AttentionMaps, hidden: Tensor, mask: Tensor | None
) -> Tensor:
    """(b, t): how much of each input position reaches the classifier's pooled vector, by
    attention rollout (Abnar & Zuidema 2020) from the positions the pooling reads: the CLS
    position, every real position equally (mean), or each position by the share of features
    whose maximum it holds (max)."""
    b, t, width = hidden.shape
    real = torch.ones(b, t, dtype=torch.bool, device=hidden.device)
    if mask is not None:
        real[:, maps.prefix :] = mask.bool()
    if model.pooling == "cls":
        reads = torch.zeros(b, t, device=hidden.device)
        reads[:, 0] = 1.0
    elif model.pooling == "max":
        top = hidden.masked_fill(~real[..., None], float("-inf")).argmax(dim=1)  # (b, width)
        reads = torch.zeros(b, t, device=hidden.device).scatter_add_(
            1, top, torch.full((b, width), 1.0 / width, device=hidden.device)
        )
    else:
        reads = real.float() / real.sum(dim=1, keepdim=True)
    rollout = maps.rollout()[-1].float()  # (b, t, t)
    return (reads[:, None, :] @ rollout)[:, 0]


@dataclass
class TranslationMaps:
    """What `translation_maps` returns: three sets of maps, each over its own tokens."""

    encoder: AttentionMaps  # the encoder's self-attention: source × source
    decoder: AttentionMaps  # the decoder's causal self-attention: target × target
    cross: AttentionMaps  # the decoder's attention over the encoder's output: target × source


@torch.no_grad()
def translation_maps(
    model: Seq2Seq, source: Tensor, target: Tensor, source_mask: Tensor | None = None
) -> TranslationMaps:
    """Every layer's and head's attention weights of an encoder-decoder reading `source`
    (s,) or (b, s) and being fed `target` (t,) or (b, t) (it starts with BOS): row i of the
    decoder's maps is the position that predicts target token i + 1. `source_mask` (b, s)
    marks real source tokens. Eval mode, and the model is left as it was."""
    source = source[None] if source.dim() == 1 else source
    target = target[None] if target.dim() == 1 else target
    blocks = model.decoder.blocks
    parts = (model.encoder, nn.ModuleList(b.attention for b in blocks),
             nn.ModuleList(b.cross_attention for b in blocks))  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        with Recorder(parts[0]) as enc, Recorder(parts[1]) as dec, Recorder(parts[2]) as cross:
            output = model(source, target, source_mask)
    finally:
        model.train(was_training)

    def made(recorder: Recorder, no_rollout: str = "") -> AttentionMaps:
        names = [f"layer {i + 1}" for i in range(len(recorder.weights))]
        return AttentionMaps(weights=recorder.weights, names=names, core=model.cfg.attention,
                             seen=recorder.seen, exact=recorder.exact or None, ponder=None,
                             output=output, no_rollout=no_rollout)  # fmt: skip

    # Rollout follows one stack's residual stream; the decoder's also takes in the source
    # through cross-attention, which a product of its self-attention maps leaves out.
    return TranslationMaps(
        encoder=made(enc),
        decoder=made(dec, "the decoder also reads the source through cross-attention"),
        cross=made(cross, "queries and keys are different sequences"),
    )
