"""padecache-tcpade: the TC-Padé reference plugin for padecache."""

__version__ = "0.1.0"
