"""The Qlib strategy that calls the index-enhancement optimizer at each rebalance (SPEC section 6).

``IndexEnhancementStrategy`` drops into any qrun YAML (``module_path: qlib_ext.strategy``); its
optimizer bounds come from presets in ``configs/optimizer/`` (:func:`make_optimizer`).
"""

from .diagnostics import RebalanceLog
from .enhancement import IndexEnhancementStrategy
from .orders import TradableOrderGen, make_orders, target_amounts
from .presets import FIGURE10, build_constraints, load_preset, make_optimizer
from .quotes import QuoteView, day_masks, quote_view

__all__ = [
    "FIGURE10", "IndexEnhancementStrategy", "QuoteView", "RebalanceLog", "TradableOrderGen",
    "build_constraints", "day_masks", "load_preset", "make_optimizer", "make_orders", "quote_view",
    "target_amounts",
]
