"""padecache-forecasters: the 2025-26 feature forecasters for padecache (Spectrum, HiCache, FoCa, FreqCa) and the
MagCache policy with online ratios and a pass budget."""

__version__ = "0.1.0"
