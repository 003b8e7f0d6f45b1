"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017, §3.1,
Figure 1), from the same blocks and attention cores as the language model.

- The encoder is a stack of blocks with bidirectional self-attention; padded source positions
  are masked out of every attention.
- Each decoder block adds a third sublayer between its causal self-attention and its
  feed-forward network: cross-attention, whose queries come from the decoder and whose keys
  and values come from the encoder's output (§3.2.3).
- Source and target share one vocabulary, so the source embedding, the target embedding and
  the output projection are one matrix (§3.4, after Press & Wolf 2017), multiplied by √d in
  the embedding layers.

Decoding (`search`, `translate`) encodes each sentence once, projects the cross-attention keys
and values of every decoder layer once, and feeds the decoder one token at a time with a
key/value cache for its self-attention; `beam.py` holds the search itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor, nn

from ..attention import MultiHeadAttention
from ..block import Block, drop, norm
from ..config import ConfigError, ModelConfig
from ..registry import MODELS
from .base import Model
from .beam import Hypotheses, beam_search, reorder_states
from .stack import InputEmbedding, LayerStates, Transformer, build_stack, init_weights

IGNORE = -100  # target id of padding: no loss, no accuracy

KeysValues = tuple[Tensor, Tensor]  # one decoder layer's cross-attention keys and values


class CrossAttention(MultiHeadAttention):
    """Attention from the decoder over the encoder's output (§3.2.3): separate query and
    key/value maps, no position encoding (the keys belong to the source). The keys and values
    may be given projected already (`keys_values`), so decoding projects them once."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, separate_kv=True, positions=False)

    def keys_values(self, memory: Tensor) -> KeysValues:
        """Per-head keys and values (b, h, s, d) of the encoder's output."""
        _, k, v = super().project(memory[:, :0], memory)
        return k, v

    def project(self, x: Tensor, context, state=None) -> tuple[Tensor, Tensor, Tensor]:
        if isinstance(context, tuple):  # keys and values from `keys_values`
            q, _, _ = super().project(x, x[:, :0], state)
            return q, *context
        return super().project(x, context, state)


class DecoderBlock(Block):
    """Causal self-attention, cross-attention over the source, feed-forward; each sublayer in
    a residual connection with its LayerNorm before (pre) or after (post, the paper's) it."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.cross_attention = CrossAttention(cfg)
        self.norm_cross = norm(cfg)

    def sublayer(self, x: Tensor, f: Callable[[Tensor], Tensor], layer_norm: nn.Module) -> Tensor:
        if self.pre_norm:
            return x + drop(self.dropout, f(layer_norm(x)))
        return layer_norm(x + drop(self.dropout, f(x)))

    def forward(  # type: ignore[override]
        self, x: Tensor, *, memory: KeysValues, src_mask: Tensor | None, state=None
    ) -> Tensor:
        x = self.sublayer(x, lambda y: self.attention(y, causal=True, state=state), self.norm1)
        x = self.sublayer(
            x, lambda y: self.cross_attention(y, context=memory, mask=src_mask), self.norm_cross
        )
        return self.sublayer(x, self.feed_forward, self.norm2)


class Decoder(Transformer):
    """`depth` decoder blocks; `memory` holds each block's cross-attention keys and values."""

    def make_block(self, cfg: ModelConfig) -> DecoderBlock:
        return DecoderBlock(cfg)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        *,
        memory: list[KeysValues],
        src_mask: Tensor | None = None,
        state: LayerStates | None = None,
    ) -> Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, memory=memory[i], src_mask=src_mask,
                      state=None if state is None else state[i])  # fmt: skip
        return x


def smoothed_loss(logits: Tensor, targets: Tensor, epsilon: float) -> tuple[Tensor, Tensor, Tensor]:
    """Label-smoothed cross-entropy (Szegedy et al. 2016, §7; Vaswani et al. 2017, §5.4):
    -Σ_k q_k log p_k with q = (1 - ε)·onehot(y) + ε/V, averaged over the real targets
    (`targets` = IGNORE elsewhere). Returns (that loss, the plain negative log-likelihood,
    the share of targets predicted right)."""
    logp = logits.float().log_softmax(dim=-1).flatten(0, -2)  # (n, V)
    targets = targets.flatten()
    real = targets != IGNORE
    logp, targets = logp[real], targets[real]
    nll = -logp.gather(1, targets[:, None])[:, 0]
    uniform = -logp.mean(dim=-1)  # -Σ_k (1/V) log p_k
    loss = ((1 - epsilon) * nll + epsilon * uniform).mean()
    accuracy = (logp.argmax(dim=-1) == targets).float().mean()
    return loss, nll.mean(), accuracy


@MODELS.register("seq2seq")
class Seq2Seq(Model):
    """src (b, s), tgt_in (b, t), src_mask (b, s) True for real source tokens -> next-token
    logits of the target (b, t, vocab_size).

    `bos_id` and `eos_id` start and end a target (default: the last two ids of the
    vocabulary). `source_vocab_size` > 0 gives the source its own vocabulary and embedding;
    by default both sides share one, and with `tie_weights` the output projection too.
    """

    needs = frozenset({"causal", "cross"})
    title = "sequence-to-sequence model"

    def __init__(
        self,
        cfg: ModelConfig,
        bos_id: int | None = None,
        eos_id: int | None = None,
        source_vocab_size: int = 0,
    ):
        super().__init__(cfg)
        if cfg.model != "transformer":
            raise ConfigError(f"a {self.title} is built from --model transformer blocks; "
                              f"--model {cfg.model} is not supported")  # fmt: skip
        if cfg.value_residual:
            raise ConfigError(f"a {self.title} does not take --value-residual (its decoder "
                              "blocks attend over the source too)")  # fmt: skip
        self.bos_id = cfg.vocab_size - 2 if bos_id is None else bos_id
        self.eos_id = cfg.vocab_size - 1 if eos_id is None else eos_id
        specials = (self.bos_id, self.eos_id)
        if not all(0 <= i < cfg.vocab_size for i in specials) or self.bos_id == self.eos_id:
            raise ConfigError(f"bos_id and eos_id must be two ids below vocab_size "
                              f"{cfg.vocab_size}, got {specials}")  # fmt: skip
        self.source_vocab_size = source_vocab_size
        scale = math.sqrt(cfg.width)
        self.target_embedding = InputEmbedding(cfg, scale=scale)
        source_cfg = replace(cfg, vocab_size=source_vocab_size) if source_vocab_size else cfg
        self.source_embedding = InputEmbedding(source_cfg, scale=scale)
        if not source_vocab_size:
            self.source_embedding.tokens.weight = self.target_embedding.tokens.weight
        self.encoder = build_stack(cfg)
        self.decoder = Decoder(cfg)
        pre = cfg.norm == "pre"  # pre-norm stacks end un-normalised: one LayerNorm after each
        self.encoder_norm = norm(cfg) if pre else nn.Identity()
        self.decoder_norm = norm(cfg) if pre else nn.Identity()
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        init_weights(self, cfg.depth)
        for embedding in {self.source_embedding.tokens, self.target_embedding.tokens}:
            # N(0, 1/d): scaled by √d, unit variance, the scale of the sinusoids
            nn.init.normal_(embedding.weight, std=cfg.width**-0.5)
        if cfg.tie_weights:
            self.head.weight = self.target_embedding.tokens.weight

    def config_dict(self) -> dict:
        return {"model": self.cfg.to_dict(), "bos_id": self.bos_id, "eos_id": self.eos_id,
                "source_vocab_size": self.source_vocab_size}  # fmt: skip

    def example_inputs(self, batch: int, length: int) -> tuple[Tensor, ...]:
        src = torch.randint(0, self.source_vocab_size or self.cfg.vocab_size, (batch, length))
        lengths = torch.randint(1, length + 1, (batch,))
        src_mask = torch.arange(length)[None, :] < lengths[:, None]
        tgt = torch.randint(0, self.cfg.vocab_size, (batch, max(1, length // 2 + 1)))
        return src, tgt, src_mask

    def check_length(self, length: int, what: str) -> None:
        if length > self.cfg.context:
            raise ValueError(f"{length} {what} tokens exceed the context of {self.cfg.context}")

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """The encoder's output (b, s, width)."""
        self.check_length(src.shape[1], "source")
        x = self.source_embedding(src)
        return self.encoder_norm(self.encoder(x, mask=src_mask, causal=False))

    def cross_keys(self, memory: Tensor) -> list[KeysValues]:
        """Every decoder layer's cross-attention keys and values of the encoder's output."""
        return [block.cross_attention.keys_values(memory) for block in self.decoder.blocks]

    def decode(
        self,
        tgt: Tensor,
        memory: list[KeysValues],
        src_mask: Tensor | None = None,
        state: LayerStates | None = None,
    ) -> Tensor:
        """Next-token logits (b, t, vocab) of the target tokens `tgt`, which continue what
        `state` (from `new_state`) has seen."""
        start = state.length if state is not None else 0
        self.check_length(start + tgt.shape[1], "target")
        x = self.target_embedding(tgt, start)
        x = self.decoder(x, memory=memory, src_mask=src_mask, state=state)
        return self.head(self.decoder_norm(x))

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None) -> Tensor:
        if src_mask is not None:
            src_mask = src_mask.bool()
        return self.decode(tgt_in, self.cross_keys(self.encode(src, src_mask)), src_mask)

    def loss(
        self,
        src: Tensor,
        src_mask: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor,
        label_smoothing: float = 0.0,
    ) -> tuple[Tensor, dict[str, float]]:
        """Label-smoothed cross-entropy over the real target tokens (`tgt_out` is IGNORE at
        padding); the plain cross-entropy and the token accuracy as statistics."""
        logits = self(src, tgt_in, src_mask)
        loss, nll, accuracy = smoothed_loss(logits, tgt_out, label_smoothing)
        return loss, {"ce": nll.item(), "accuracy": accuracy.item()}

    def new_state(self, capacity: int | None = None) -> LayerStates | None:
        """Empty key/value caches of the decoder's self-attention, or None if the core keeps
        no state."""
        return self.decoder.new_state(capacity or self.cfg.context)

    @torch.no_grad()
    def search(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        *,
        beam: int = 4,
        length_penalty: float = 0.6,
        max_length: int | None = None,
        min_length: int = 0,
        use_cache: bool = True,
    ) -> Hypotheses:
        """The best target of each source by beam search (`beam.py`; beam 1: greedy), at most
        `max_length` tokens with EOS (default: the context). BOS is never produced."""
        was_training = self.training
        self.eval()
        src = src[None] if src.dim() == 1 else src
        b = src.shape[0]
        max_length = min(max_length or self.cfg.context, self.cfg.context)
        src_mask = None if src_mask is None else src_mask.bool()
        memory = self.encode(src, src_mask)  # once per sentence, then shared by its beams
        keys = [(k.repeat_interleave(beam, 0), v.repeat_interleave(beam, 0))
                for k, v in self.cross_keys(memory)]  # fmt: skip
        if src_mask is not None:
            src_mask = src_mask.repeat_interleave(beam, dim=0)
        state = self.new_state(max_length) if use_cache else None

        def step(prefixes: Tensor) -> Tensor:
            if state is None:
                logits = self.decode(prefixes, keys, src_mask)[:, -1]
            else:
                logits = self.decode(prefixes[:, -1:], keys, src_mask, state)[:, -1]
            logits[:, self.bos_id] = float("-inf")
            return logits.float().log_softmax(dim=-1)

        found = beam_search(
            step, b, beam=beam, bos_id=self.bos_id, eos_id=self.eos_id, max_length=max_length,
            alpha=length_penalty, min_length=min_length, device=src.device,
            reorder=None if state is None else (lambda rows: reorder_states(state, rows)),
        )  # fmt: skip
        self.train(was_training)
        return found

    def translate(
        self, src: Tensor, src_mask: Tensor | None = None, beam: int = 4, **options
    ) -> list[list[int]]:
        """The target tokens (without BOS and EOS) of each source; options are `search`'s."""
        return self.search(src, src_mask, beam=beam, **options).tokens
