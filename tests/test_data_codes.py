"""The one tushare <-> Qlib code rule, against every form seen in the importers and the minute sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.codes import is_index, qlib_codes, to_qlib, to_tushare
from qlib_ext.data.importers.daily import ts_code
from qlib_ext.data.importers.sources import qlib_codes as importer_codes
from qlib_ext.ops.sources import qlib_code

FORMS = {
    "600519.SH": "SH600519", "600519.sh": "SH600519", " 600519.SH ": "SH600519", "sh600519": "SH600519",
    "SH600519": "SH600519", "Sh600519": "SH600519", "600519": "SH600519", "sh.600519": "SH600519",
    "600519.XSHG": "SH600519", "000001.XSHE": "SZ000001", "000001.SZ": "SZ000001", "sz000001": "SZ000001",
    "000001": "SZ000001", "300750": "SZ300750", "688981": "SH688981", "830799.BJ": "BJ830799",
    "830799": "BJ830799", "920002": "BJ920002",
    # index codes keep their exchange; CSI's own suffix is Shanghai's
    "000300.SH": "SH000300", "000905.CSI": "SH000905", "SH000001": "SH000001", "399006.SZ": "SZ399006",
}
BAD = ("ABC123", "60051.SH", "600519.HK", "", "SH60051", "1600519", "900001.SH1")


@pytest.mark.parametrize("raw,sym", FORMS.items())
def test_every_form_maps_to_the_qlib_symbol(raw, sym):
    assert to_qlib(raw) == sym
    assert to_tushare(sym) == f"{sym[2:]}.{sym[:2]}"
    assert to_qlib(to_tushare(sym)) == sym                         # round trip


@pytest.mark.parametrize("raw", BAD)
def test_unrecognisable_codes_are_none(raw):
    assert to_qlib(raw) is None


def test_bare_index_like_code_is_a_stock_and_aliases_fold_only_when_asked():
    assert to_qlib("000300") == "SZ000300"                          # documented: bare codes are stocks
    assert to_qlib("399300.SZ") == "SZ399300"
    assert to_qlib("399300.SZ", fold_aliases=True) == "SH000300"
    assert to_qlib("000852.SH", fold_aliases=True) == "SH000852"


def test_vectorised_mapping_equals_the_scalar_rule_and_keeps_missing_values():
    raw = pd.Series([*FORMS, *BAD, None, np.nan, "600519.SH"], dtype=object)
    got = qlib_codes(raw, fold_aliases=False)
    want = [to_qlib(c) for c in raw]
    assert list(got) == want
    assert list(importer_codes(pd.Series(["399905.SZ", "sz000001"]))) == ["SH000905", "SZ000001"]


def test_every_copy_of_the_mapping_uses_the_one_rule():
    assert ts_code("SH600519") == "600519.SH" and ts_code("sz000001") == "000001.SZ"
    assert qlib_code("600519") == "SH600519" and qlib_code("sh.600519") == "SH600519"
    with pytest.raises(ValueError, match="'XYZ'"):
        qlib_code("XYZ")
    with pytest.raises(ValueError, match="not a stock or index code"):
        to_tushare("XYZ")


def test_index_instruments_are_told_from_stocks():
    assert all(is_index(s) for s in ("SH000300", "SH000905", "SH000852", "SH000985", "SH000001", "sz399006"))
    assert not any(is_index(s) for s in ("SZ000001", "SH600000", "SZ300750", "BJ830799"))
