"""qlib-ext: the Huatai 2024 "AI price-volume stock selection + risk control" system as a Qlib plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__all__ = ["init", "mlflow_exp_manager", "__version__"]


def mlflow_exp_manager(tracking_dir: str | Path = "mlruns", exp_name: str = "qlib_ext") -> dict:
    """Qlib ``exp_manager`` config with an sqlite tracking URI (MLflow 3 rejects Qlib's file store)."""
    from .artifacts import exp_manager_config

    return exp_manager_config(Path(tracking_dir).expanduser().resolve(), exp_name)


def init(provider_uri: str | Path, **kwargs: Any) -> None:
    """``qlib.init`` with region cn, our custom ops registered and an sqlite MLflow store.

    Any keyword of ``qlib.init`` may be given and wins over our defaults; ``custom_ops`` given by the
    caller are registered after ours.  ``mlruns`` (a directory) sets where the sqlite store lives when
    no ``exp_manager`` is given (that folder is created only then).
    """
    import qlib
    from qlib.constant import REG_CN

    from .ops import CUSTOM_OPS

    mlruns = kwargs.pop("mlruns", "mlruns")
    kwargs.setdefault("region", REG_CN)
    kwargs["custom_ops"] = list(CUSTOM_OPS) + list(kwargs.get("custom_ops", []))
    if "exp_manager" not in kwargs:  # not setdefault: building the default creates the `mlruns` folder
        kwargs["exp_manager"] = mlflow_exp_manager(mlruns)
    qlib.init(provider_uri=str(Path(provider_uri).expanduser().resolve()), **kwargs)
