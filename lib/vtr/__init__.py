"""vtr: a notebook-first, reproducible research workbench for video-language retrieval."""

__version__ = "0.1.0"
