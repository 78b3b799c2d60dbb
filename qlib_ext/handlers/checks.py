"""What our handlers check before and after loading: the fields their expressions read, and all-NaN columns.

A dataset without a field (plain Qlib data has no ``$vwap``, ``$turnover``, ``$mcap``, ``$industry``)
must fail with a message naming the field, the handler and the fix, not with Qlib's "Empty data
from dataset" or a feature filled with 0 downstream.  :func:`require_fields` runs at construction
(a listing of feature folders, see :mod:`qlib_ext.factors.requirements`); :func:`check_loaded` runs
on the raw loaded frame, for fields that exist but have no value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from qlib.log import get_module_logger

from ..factors.requirements import expression_fields, missing_field_uses, missing_fields_error

__all__ = ["ON_MISSING", "check_loaded", "neutralize_kwargs", "require_fields"]

logger = get_module_logger("qlib_ext.handlers")

#: ``on_missing`` values: raise on a feature whose fields are absent, or leave it out (logged)
ON_MISSING = ("raise", "drop")


def neutralize_kwargs(neutralize, who: str) -> dict | None:
    """``Neutralize`` kwargs of a handler's ``neutralize``: a preset name, a list of exposures, or None."""
    from ..processors.neutralize import NEUTRALIZE_PRESETS

    if neutralize is None:
        return None
    if isinstance(neutralize, str):
        if neutralize not in NEUTRALIZE_PRESETS:
            raise ValueError(f"{who}: neutralize must be one of {[None, *NEUTRALIZE_PRESETS]} or a list of "
                             f"exposures (e.g. ['ret_10', 'std_10d']): unknown preset {neutralize!r}")
        return {"preset": neutralize}
    if isinstance(neutralize, Sequence) and len(neutralize) and all(isinstance(a, str) for a in neutralize):
        return {"against": list(neutralize)}
    raise ValueError(f"{who}: neutralize must be one of {[None, *NEUTRALIZE_PRESETS]} or a non-empty list of "
                     f"exposures (e.g. ['ret_10', 'std_10d']), got {neutralize!r}")


def require_fields(who: str, features: Mapping[str, str], label: Mapping[str, str], neutralize: dict | None,
                   *, feature_fix: str, label_fix: str, on_missing: str = "raise", freq: str = "day") -> list[str]:
    """Raise ``MissingFieldsError`` when the dataset lacks a field the features, label or neutralisation read.

    ``features``/``label``: column name -> expression; ``neutralize``: ``Neutralize`` kwargs or None;
    ``feature_fix``/``label_fix``: the keyword that runs without them, quoted in the message
    (``{keep}`` in ``feature_fix`` becomes the features whose fields exist).  With ``on_missing="drop"``
    features with a missing field are not an error: their names are returned (and logged) for the
    caller to leave out.  Nothing is checked on a non-local provider.
    """
    if on_missing not in ON_MISSING:
        raise ValueError(f"{who}: on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    uses = {f"feature {n}": e for n, e in features.items()} | {f"label {n}": e for n, e in label.items()}
    neut = None
    if neutralize is not None:
        from ..processors.neutralize import Neutralize

        neut = Neutralize(fields_group="label", **neutralize)
        uses |= {f"{neut.describe()} exposure {a}": e for a, e in neut.expressions.items()}
    found = missing_field_uses(uses, freq=freq)
    if found is None or not found[1]:
        return []
    root, missing = found
    bad_uses = {u for us in missing.values() for u in us}
    dropped = [n for n in features if f"feature {n}" in bad_uses]
    if on_missing == "drop" and dropped:
        if len(dropped) == len(features):
            raise missing_fields_error(who, root, missing, ["choose features whose fields exist"])
        lacking = sorted(f for f, us in missing.items() if any(u.startswith("feature ") for u in us))
        logger.warning(f"{who}: on_missing='drop' leaves out the features {dropped}: the dataset {root} has no "
                       f"{', '.join('$' + f for f in lacking)}")
        missing = {f: [u for u in us if not u.startswith("feature ")] for f, us in missing.items()}
        missing = {f: us for f, us in missing.items() if us}
        if not missing:
            return dropped
        bad_uses = {u for us in missing.values() for u in us}
    remedies = []
    if any(u.startswith("feature ") for u in bad_uses):
        remedies.append(feature_fix.format(keep=[n for n in features if n not in dropped]))
    if any(u.startswith("label ") for u in bad_uses):
        remedies.append(label_fix)
    if neut is not None and any(u.startswith(neut.describe()) for u in bad_uses):
        bad = {u.rsplit(" ", 1)[1] for u in bad_uses if u.startswith(neut.describe())}
        keep = [a for a in neut.against if a not in bad]
        remedies.append("neutralize=None (raw label)" + (f" or neutralize={keep}" if keep else ""))
    raise missing_fields_error(who, root, missing, [r for r in dict.fromkeys(remedies) if r])


def check_loaded(who: str, df: pd.DataFrame, exprs: Mapping[str, str], label_horizon: int | None = None,
                 freq: str = "day") -> None:
    """Raise ``ValueError`` naming each loaded column with no finite value (field present but empty).

    ``df``: the handler's raw frame (column groups ``feature``/``label``); ``exprs``: column name ->
    expression.  A label column is only an error when some date of the frame has ``label_horizon + 1``
    later sessions in the calendar (a frame at the data's end has no label to know).
    """
    if df is None or len(df) == 0:
        return
    names = [c[-1] if isinstance(c, tuple) else c for c in df.columns]
    groups = [c[0] if isinstance(c, tuple) else "feature" for c in df.columns]
    finite = [bool(np.isfinite(df.iloc[:, j].to_numpy()).any()) for j in range(df.shape[1])]  # no frame copy
    empty = [(g, n) for g, n, ok in zip(groups, names, finite, strict=True) if not ok]
    if not empty:
        return
    dates = df.index.get_level_values("datetime")
    d0, d1 = pd.Timestamp(dates.min()), pd.Timestamp(dates.max())
    if label_horizon is not None and any(g == "label" for g, _ in empty):
        from qlib.data import D

        cal = D.calendar(freq=freq)
        if int(np.searchsorted(cal, d0, side="left")) + label_horizon + 1 >= len(cal):
            empty = [(g, n) for g, n in empty if g != "label"]  # no date of the span can know its label
    if not empty:
        return
    desc = "; ".join(f"{g} {n} = {exprs.get(n, '?')} (fields "
                     f"{', '.join('$' + f for f in expression_fields(exprs.get(n, '')))})" for g, n in empty)
    raise ValueError(
        f"{who}: no finite value in {desc} for any of the {dates.nunique()} dates {d0.date()}..{d1.date()} and "
        f"{df.index.get_level_values('instrument').nunique()} instruments: the fields exist but are empty there "
        f"(see `qlib-ext data check`), or the span is shorter than the expression's look-back")
