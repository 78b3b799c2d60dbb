"""Stock and index codes: the one rule that maps tushare-like codes to Qlib symbols and back.

Qlib names an instrument ``SH600519`` (exchange prefix, upper case, six digits); tushare writes
``600519.SH``.  Every form seen in the files users hold maps to the Qlib symbol:

=====================  =============  ==============================================================
form                   example        rule
=====================  =============  ==============================================================
tushare                ``600519.SH``  ``CODE.EXCH``; ``.CSI`` (CSI's own index codes) -> ``SH``
JoinQuant / RiceQuant  ``600519.XSHG`` ``.XSHG`` -> ``SH``, ``.XSHE`` -> ``SZ``
baostock               ``sh.600519``  ``exch.CODE``
Qlib, any case         ``sh600519``   ``EXCHCODE``
bare six digits        ``600519``     exchange from the first digits: ``6`` -> SH (stocks), ``0``/``2``/``3``
                                      -> SZ, ``4``/``8``/``92`` -> BJ.  A bare code is always read as a
                                      stock: ``000300`` is Shenzhen stock SZ000300, never CSI300.
=====================  =============  ==============================================================

Exchanges: ``SH``, ``SZ``, ``BJ``.  Surrounding blanks are ignored; anything else maps to ``None``.
Index codes keep their exchange (``000300.SH`` -> ``SH000300``); with ``fold_aliases`` the
Shenzhen copies of the CSI indexes (``399300.SZ``, ``399905.SZ``, ``399852.SZ``) become the
Shanghai ones the datasets use.  An instrument is an index when it is ``SH000xxx`` or
``SZ399xxx`` (:func:`is_index`), which is how the exchanges number them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..schema import INDEX_INSTRUMENTS

EXCHANGES = ("SH", "SZ", "BJ")
#: Index codes that name the same index under another exchange's code.
INDEX_ALIASES = {"SZ399300": INDEX_INSTRUMENTS["csi300"], "SZ399905": INDEX_INSTRUMENTS["csi500"],
                 "SZ399852": INDEX_INSTRUMENTS["csi1000"]}
_SUFFIX = {"SH": "SH", "SZ": "SZ", "BJ": "BJ", "CSI": "SH", "XSHG": "SH", "XSHE": "SZ"}
_DOTTED = re.compile(r"^(\d{6})\.(SH|SZ|BJ|CSI|XSHG|XSHE)$")
_PREFIXED = re.compile(r"^(SH|SZ|BJ)\.?(\d{6})$")
_BARE = re.compile(r"^(\d{6})$")
_INDEX = re.compile(r"^(SH000\d{3}|SZ399\d{3})$")


def bare_exchange(code: str) -> str | None:
    """Exchange of a bare six-digit stock code from its leading digits (None when no board starts so)."""
    if code.startswith("6"):
        return "SH"
    if code[0] in "023":
        return "SZ"
    if code[0] in "48" or code.startswith("92"):
        return "BJ"
    return None


def to_qlib(code: object, fold_aliases: bool = False) -> str | None:
    """One code in any form of the module table -> Qlib symbol (``SH600519``); None when unrecognisable."""
    if code is None or (isinstance(code, float) and np.isnan(code)) or code is pd.NA:
        return None
    s = str(code).strip().upper()
    m = _DOTTED.match(s)
    if m:
        out = _SUFFIX[m.group(2)] + m.group(1)
    elif (m := _PREFIXED.match(s)):
        out = m.group(1) + m.group(2)
    elif (m := _BARE.match(s)):
        exch = bare_exchange(s)
        out = exch + s if exch else None
    else:
        out = None
    return INDEX_ALIASES.get(out, out) if fold_aliases and out else out


def to_tushare(symbol: str) -> str:
    """Qlib symbol -> tushare code: ``SH600519`` -> ``600519.SH`` (any form of :func:`to_qlib` is accepted)."""
    q = to_qlib(symbol)
    if q is None:
        raise ValueError(f"code {symbol!r} is not a stock or index code (expected e.g. 600519.SH or SH600519)")
    return f"{q[2:]}.{q[:2]}"


def qlib_codes(codes: pd.Series | np.ndarray | list, fold_aliases: bool = True) -> np.ndarray:
    """Vectorised :func:`to_qlib` (object array, None where unrecognisable); parsed once per distinct code."""
    pos, uniq = pd.factorize(pd.Series(codes, dtype="string"), use_na_sentinel=True)
    mapped = np.array([to_qlib(c, fold_aliases) for c in uniq] + [None], dtype=object)
    return mapped[np.where(pos >= 0, pos, len(uniq))]


def is_index(symbol: str) -> bool:
    """True for an index instrument (``SH000300``, ``SH000001``, ``SZ399006``), False for a stock."""
    return bool(_INDEX.match(str(symbol).strip().upper()))
