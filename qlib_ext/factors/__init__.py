"""Named daily price-volume factors and the forward-return label, as Qlib expressions."""

from .labels import forward_return_label
from .loader import loader_config
from .price_volume import PRICE_VOLUME_FACTORS, REPORT_FACTORS, factor_expressions, resolve_factor

__all__ = [
    "PRICE_VOLUME_FACTORS", "REPORT_FACTORS", "factor_expressions", "forward_return_label", "loader_config",
    "resolve_factor",
]
