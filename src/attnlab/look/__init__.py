"""Looking inside a model: its attention maps (`maps.py`), the page that shows them
(`page.py`, one self-contained HTML file) and the same views as PNG files (`png.py`)."""

from .maps import AttentionMaps, TranslationMaps, attention_maps, translation_maps

__all__ = ["AttentionMaps", "TranslationMaps", "attention_maps", "translation_maps"]
