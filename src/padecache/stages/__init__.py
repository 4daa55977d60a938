from .fraction import FractionStageDetector

__all__ = ["FractionStageDetector"]
