"""Position information, one file per kind: added to the input (learned, sinusoidal) or applied
inside attention (rotary rotates queries and keys; ALiBi and relative positions bias the
scores). Without any of them self-attention is permutation-equivariant: it sees a set, not a
sequence.
"""

from .alibi import alibi_bias, alibi_slopes
from .base import Position, build_position, sinusoidal_table
from .rope import Rotary

__all__ = ["Position", "Rotary", "alibi_bias", "alibi_slopes", "build_position", "sinusoidal_table"]
