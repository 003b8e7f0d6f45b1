"""A decoder-only language model: embed, run a causal stack, predict the next token."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..block import norm
from ..config import ModelConfig
from ..registry import MODELS
from .base import Model
from .decode import DecodeStep
from .sampling import sample_next
from .stack import InputEmbedding, build_stack, init_weights, reads_segments


@MODELS.register("lm")
class LanguageModel(Model):
    """tokens (b, t) -> next-token logits (b, t, vocab_size)."""

    needs = frozenset({"causal"})
    title = "language model"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.embedding = InputEmbedding(cfg)
        self.stack = build_stack(cfg)
        self.norm = norm(cfg) if cfg.norm == "pre" else nn.Identity()
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        init_weights(self, cfg.depth, cfg.zero_init)
        if cfg.tie_weights:
            self.head.weight = self.embedding.tokens.weight
        elif cfg.zero_init:
            nn.init.zeros_(self.head.weight)

    def forward(self, tokens: Tensor, state=None, last: int | None = None) -> Tensor:
        """`state` (from `new_state`) holds what earlier calls saw, e.g. a key/value cache;
        then `tokens` continue that text. `last`: only the last `last` positions' logits,
        (b, last, vocab_size), sparing the output layer's work on the others (generation
        wants one, scoring strided windows the second half)."""
        if tokens.shape[1] > self.cfg.context and not reads_segments(self.cfg.model):
            raise ValueError(f"{tokens.shape[1]} tokens exceed the context of {self.cfg.context}")
        start = state.length if state is not None else 0
        x = self.embedding(tokens, start)
        x = self.stack(x, causal=True, state=state)
        if last is not None:
            x = x[:, x.shape[1] - last :]
        logits = self.head(self.norm(x))
        if self.cfg.logit_cap:
            cap = self.cfg.logit_cap  # Gemma 2 (Gemma Team 2024, §2): z -> cap·tanh(z / cap)
            logits = cap * torch.tanh(logits / cap)
        return logits

    def loss(self, tokens: Tensor, targets: Tensor, state=None) -> tuple[Tensor, dict[str, float]]:
        """Mean cross-entropy in nats per token, plus whatever the stack adds (ponder cost).
        `state` carries a Transformer-XL memory from one segment to the next."""
        logits = self(tokens, state)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return ce + self.stack.aux_loss, {"ce": ce.item(), **self.stack.stats}

    def new_state(self):
        """An empty incremental state (key/value caches, a memory), or None if the attention
        keeps none."""
        return self.stack.new_state(self.cfg.context)

    @torch.no_grad()
    def stream(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[Tensor]:
        """Yield (b,) new tokens one at a time.

        The model sees at most `context` tokens. When the text outgrows that window, the window
        jumps forward to keep the last context/2 tokens and, with a cache, the cache is rebuilt
        from them. Positions therefore always start at 0 at the window's start, as in training,
        and the cached and uncached paths see exactly the same tokens at every step.

        A state that is not `bounded` (Transformer-XL's memory) trims itself: the prompt goes in
        as segments of `context` tokens, then one token at a time, and the window never jumps.
        """
        was_training = self.training
        self.eval()
        prompt = prompt[None] if prompt.dim() == 1 else prompt
        if prompt.shape[1] == 0:
            raise ValueError("the prompt must hold at least one token")
        b, length = prompt.shape
        context, keep = self.cfg.context, max(1, self.cfg.context // 2)
        text = torch.empty(b, length + max_new_tokens, dtype=torch.long, device=prompt.device)
        text[:, :length] = prompt
        generator = None
        if seed is not None:
            generator = torch.Generator(device=prompt.device).manual_seed(seed)
        start = max(0, length - context)
        state = self.new_state() if use_cache else None
        bounded = state is None or state.bounded
        # One token at a time through a cache: the hand-fused step where the model fits it.
        fused = max_new_tokens > 1 and DecodeStep.fits(self, state)
        step = DecodeStep(self) if fused else self.next_logits
        if bounded:
            logits = self.next_logits(text[:, start:length], state)
        else:
            for segment in prompt.split(context, dim=1):
                logits = self.next_logits(segment, state)
        for i in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, top_p, generator)
            text[:, length] = token
            length += 1
            yield token
            if i == max_new_tokens - 1:
                break
            if bounded and length - start > context:
                start = length - keep
                if state is not None:
                    state.reset()
                    logits = self.next_logits(text[:, start:length], state)
                    continue
            if state is not None:
                logits = step(text[:, length - 1 : length], state)
            else:
                logits = self.next_logits(text[:, start:length])
        self.train(was_training)

    def next_logits(self, tokens: Tensor, state=None) -> Tensor:
        """(b, vocab_size) logits of the token after `tokens` (which continue `state`)."""
        return self(tokens, state, last=1)[:, -1]

    def generate(self, prompt: Tensor, max_new_tokens: int, **options) -> Tensor:
        """The prompt followed by `max_new_tokens` sampled tokens: (b, t + max_new_tokens).
        Options are those of `stream`."""
        prompt = prompt[None] if prompt.dim() == 1 else prompt
        new = list(self.stream(prompt, max_new_tokens, **options))
        if not new:
            return prompt
        return torch.cat((prompt, torch.stack(new, dim=1)), dim=1)
