"""Looking inside a model: its attention maps (`maps.py`), the page that shows them
(`page.py`, one self-contained HTML file) and the same views as PNG files (`png.py`)."""

from .maps import AttentionMaps, attention_maps

__all__ = ["AttentionMaps", "attention_maps"]
