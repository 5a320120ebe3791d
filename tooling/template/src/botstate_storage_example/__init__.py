"""Example botstate storage adapter (``example://``): one file per key in a directory."""

from .__about__ import __version__
from .adapter import ExampleAdapter

__all__ = ["ExampleAdapter", "__version__"]
