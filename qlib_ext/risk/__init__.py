"""Barra-style risk model (CNE5 price-volume styles): exposures, factor returns, covariance, store.

Build with :func:`build_risk` (CLI ``qlib-ext risk build --data DIR``); load with the ``load_*``
functions, which take the dataset directory (the store is ``<data_dir>/risk``) or the store itself.
Qlib's ``EnhancedIndexingStrategy`` reads the exported ``<data_dir>/risk/qlib`` as ``riskmodel_root``.
"""

from .build import build_risk
from .config import COUNTRY, STYLES, RiskConfig, industry_factor
from .qlib_export import export_riskmodel_root, write_benchmark_weight_fields
from .store import (
    load_covariance,
    load_covariance_panel,
    load_exposures,
    load_factor_returns,
    load_meta,
    load_regression_stats,
    load_specific_returns,
    load_specific_risk,
    store_path,
)

__all__ = [
    "COUNTRY", "STYLES", "RiskConfig", "build_risk", "export_riskmodel_root", "industry_factor",
    "load_covariance", "load_covariance_panel", "load_exposures", "load_factor_returns", "load_meta",
    "load_regression_stats", "load_specific_returns", "load_specific_risk", "store_path",
    "write_benchmark_weight_fields",
]
