"""The embedded synthetic A-share market (SPEC 3.2): deterministic, streaming, Qlib layout."""

from .config import load_market_config
from .market import build_market
from .minute import MinuteStream

__all__ = ["build_market", "load_market_config", "MinuteStream"]
