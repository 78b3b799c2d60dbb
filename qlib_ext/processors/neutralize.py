"""``Neutralize``: a Qlib processor that makes a column group industry/style neutral each day.

The report trains on a label neutralised against industry + size, and tests a "stricter" variant
against industry + size + ret_10 + std_10d + turn_10d (Huatai 2024, p.8, figure 20).  Drop it into any
handler YAML::

    learn_processors:
      - class: Neutralize
        module_path: qlib_ext.processors
        kwargs: {fields_group: label, against: [industry, size]}   # or {preset: strict}

A user's handler rarely carries industry or size columns, so by default (``source="qlib"``) the
exposures are fetched from Qlib: ``D.features`` over the df's instruments and date range.  With
``source="df"`` they are read from columns of the df whose (last-level) name is the exposure's name
(``industry``, ``size``, ``ret_10``, ...); ``source="auto"`` takes such a column when present and
fetches the rest.  Fetched exposures are checked first: a field the dataset lacks (``$industry``,
``$mcap`` for ``size``, ``$turnover`` for ``turn_10d`` on plain Qlib data) raises
:class:`~qlib_ext.factors.requirements.MissingFieldsError` naming it, the import command that adds it
and the ``against`` list that leaves it out; an exposure with no finite value over the whole frame
raises too.  Mind that a learn processor sees the features *after* the infer processors (Qlib's
default ``process_type="append"``): a feature that was clipped or NaN-filled there is not the raw
exposure any more, which is why Qlib is the default source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from qlib.data.dataset.processor import Processor, get_group_columns
from qlib.log import get_module_logger

from ..factors.price_volume import REPORT_FACTORS, resolve_factor
from ..factors.requirements import missing_field_uses, missing_fields_error
from .xsection import residualize_xsection

__all__ = ["NEUTRALIZE_PRESETS", "Neutralize"]

NEUTRALIZE_PRESETS: dict[str, tuple[str, ...]] = {
    "industry_size": ("industry", "size"),  # the report's default label neutralisation
    "strict": ("industry", "size", *REPORT_FACTORS),  # its "stricter" one (p.8)
}
INDUSTRY = "industry"
_SOURCES = ("auto", "qlib", "df")

logger = get_module_logger("qlib_ext.processors.Neutralize")


class Neutralize(Processor):
    """Replace each column of ``fields_group`` by its daily cross-sectional OLS residual, z-scored.

    Regressors: one dummy per industry present that day (``industry``, read from ``industry_field``)
    plus the continuous exposures named in ``against``: ``size`` (ln $mcap), any factor of
    ``qlib_ext.factors.PRICE_VOLUME_FACTORS`` (``ret_10``, ``std_10d``, ``turn_10d``, ...) or a raw Qlib
    expression.  ``preset`` (``industry_size`` or ``strict``) names a ready list; the default is
    ``industry_size``.  Without ``industry`` an intercept is used instead of the dummies.  ``source``:
    ``qlib`` (fetch), ``df`` (columns of the df) or ``auto`` (a df column when present, else fetch).

    Names with a missing exposure or industry are left out of the day's regression and get NaN, as
    do whole days with fewer than ``min_names`` usable names or fewer than 2 residual degrees of
    freedom (see ``residualize_xsection``).  ``standardize`` z-scores the residual (ddof = 1).
    Stateless: ``fit`` learns nothing, so no look-ahead from the fit window.
    """

    def __init__(self, fields_group: str | Sequence[str] | None = "label", against: Sequence[str] | None = None,
                 preset: str | None = None, source: str = "qlib", industry_field: str = "$industry",
                 min_names: int = 10, standardize: bool = True):
        if against is not None and preset is not None:
            raise ValueError("Neutralize: give either `against` or `preset`, not both")
        if against is None:
            preset = "industry_size" if preset is None else preset
            if not isinstance(preset, str):
                raise ValueError(f"Neutralize: preset must be one of {sorted(NEUTRALIZE_PRESETS)}, got {preset!r}"
                                 " (a list of exposures goes in `against`)")
            if preset not in NEUTRALIZE_PRESETS:
                raise ValueError(f"Neutralize: unknown preset {preset!r}; known: {sorted(NEUTRALIZE_PRESETS)}")
            against = NEUTRALIZE_PRESETS[preset]
        if isinstance(against, str):
            against = [against]
        if len(against) == 0 or len(set(against)) != len(against):
            raise ValueError(f"Neutralize: `against` must be non-empty without repeats, got {list(against)}")
        if source not in _SOURCES:
            raise ValueError(f"Neutralize: source must be one of {_SOURCES}, got {source!r}")
        if min_names < 2:
            raise ValueError(f"Neutralize: min_names must be >= 2, got {min_names}")
        self.expressions = {a: industry_field if a == INDUSTRY else resolve_factor(a) for a in against}
        self.fields_group = fields_group
        self.against = list(against)
        self.preset = preset
        self.source = source
        self.min_names = min_names
        self.standardize = standardize

    def is_for_infer(self) -> bool:
        """Same-day cross-sectional data only, so usable at inference, except on the label (unknown then)."""
        return "label" not in self._groups()

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        cols = self._columns(df)
        if len(df) == 0 or len(cols) == 0:
            return df
        expo = self.exposures(df)
        continuous = [a for a in self.against if a != INDUSTRY]
        res = residualize_xsection(
            df[cols].to_numpy(dtype=np.float64), expo[continuous].to_numpy(dtype=np.float64),
            df.index.get_level_values("datetime").to_numpy(),
            expo[INDUSTRY].to_numpy(dtype=np.float64) if INDUSTRY in expo else None,
            min_names=self.min_names, standardize=self.standardize,
        )
        if np.isfinite(df[cols].to_numpy(dtype=np.float64)).any() and not np.isfinite(res).any():
            per_day = pd.Series(np.isfinite(expo.to_numpy(dtype=np.float64)).all(axis=1)).groupby(
                df.index.get_level_values("datetime").to_numpy()).sum()
            logger.warning(f"{self.describe()}: every value of {cols} is NaN after neutralisation: no day has "
                           f"min_names={self.min_names} names with finite exposures and 2 residual degrees of "
                           f"freedom (at most {int(per_day.max())} names with exposures on any day)")
        dtype = np.result_type(*df[cols].dtypes, np.float32)
        df[cols] = res.astype(dtype)
        return df

    def describe(self) -> str:
        """``Neutralize(preset='industry_size')`` or ``Neutralize(against=[...])``, for messages."""
        return f"Neutralize(preset={self.preset!r})" if self.preset else f"Neutralize(against={self.against})"

    def check_fields(self, names: Sequence[str] | None = None) -> None:
        """Raise :class:`MissingFieldsError` when the dataset lacks a field of the exposures ``names`` (default: all).

        Looks at the local Qlib dataset's feature folders only (no data read); does nothing for a
        non-local provider.
        """
        names = self.against if names is None else names
        found = missing_field_uses({f"exposure {n}": self.expressions[n] for n in names})
        if found is None or not found[1]:
            return
        root, missing = found
        bad = {n for n in names for f in missing if f"exposure {n}" in missing[f]}
        keep = [a for a in self.against if a not in bad]
        remedies = [f"neutralise against exposures the dataset has: against={keep}"
                    + (" (no industry: an intercept is used)" if INDUSTRY not in keep else "") if keep else
                    "neutralise against exposures the dataset has (none of these)",
                    "drop the neutralisation (neutralize=None in qlib_ext.handlers)"]
        raise missing_fields_error(self.describe(), root, missing, remedies)

    def exposures(self, df: pd.DataFrame) -> pd.DataFrame:
        """The regressors on ``df``'s index, one column per ``against`` name (from the df or from Qlib)."""
        out, fetch = {}, {}
        for name in self.against:
            col = self._df_column(df, name) if self.source != "qlib" else None
            if col is not None:
                out[name] = df[col].to_numpy(dtype=np.float64)
            elif self.source == "df":
                raise KeyError(f"Neutralize(source='df'): no column named {name!r} in the data "
                               f"(columns: {list(df.columns)[:20]})")
            else:
                fetch[name] = self.expressions[name]
        if fetch:
            self.check_fields(list(fetch))
            got = _fetch_from_qlib(fetch, df.index)
            for name in fetch:
                values = got[name].to_numpy(dtype=np.float64)
                if len(values) and not np.isfinite(values).any():
                    dates = df.index.get_level_values("datetime")
                    raise ValueError(
                        f"{self.describe()}: exposure {name!r} ({fetch[name]}) has no finite value for the "
                        f"{df.index.get_level_values('instrument').nunique()} instruments between "
                        f"{pd.Timestamp(dates.min()).date()} and {pd.Timestamp(dates.max()).date()}; its field "
                        f"exists but is empty there (check it with `qlib-ext data check`), or leave the exposure "
                        f"out of `against`")
                out[name] = values
        return pd.DataFrame({a: out[a] for a in self.against}, index=df.index)

    def _groups(self) -> list:
        g = self.fields_group
        return [g] if g is None or isinstance(g, str) else list(g)

    def _columns(self, df: pd.DataFrame) -> list:
        cols: list = []
        for g in self._groups():
            picked = get_group_columns(df, g)
            cols.extend([picked] if np.isscalar(picked) else list(picked))
        return cols

    def _df_column(self, df: pd.DataFrame, name: str):
        """The one column of ``df`` whose (last-level) name is ``name``, or None."""
        hits = [c for c in df.columns if (c[-1] if isinstance(c, tuple) else c) == name]
        if len(hits) > 1:
            raise ValueError(f"Neutralize: exposure {name!r} matches several columns {hits}")
        return hits[0] if hits else None


def _fetch_from_qlib(expressions: dict[str, str], index: pd.MultiIndex) -> pd.DataFrame:
    """``D.features`` of the expressions for the index's instruments and date range, aligned to the index."""
    from qlib.data import D

    if set(index.names) != {"datetime", "instrument"}:
        raise ValueError(f"Neutralize: expected a (datetime, instrument) index, got levels {index.names}")
    dates = index.get_level_values("datetime")
    instruments = sorted(index.get_level_values("instrument").unique())
    raw = D.features(instruments, list(expressions.values()), start_time=dates.min(), end_time=dates.max(),
                     freq="day")
    raw.columns = list(expressions)
    return raw.reorder_levels(index.names).reindex(index)
