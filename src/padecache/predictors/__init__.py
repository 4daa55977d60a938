from .base import HistoryPredictor, grid_option
from .linear import LinearPredictor
from .noop import NoopPredictor
from .taylor import TaylorPredictor

__all__ = ["HistoryPredictor", "grid_option", "LinearPredictor", "NoopPredictor", "TaylorPredictor"]
