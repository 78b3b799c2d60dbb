"""Trading calendars: Shanghai exchange sessions and the 240 one-minute bars of a session."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

#: Bar end-times of one session: 09:31..11:30 and 13:01..15:00 (the convention of tushare/real feeds).
MINUTES_PER_DAY = 240


@lru_cache(maxsize=1)
def minute_offsets() -> pd.TimedeltaIndex:
    """Offsets from midnight of the 240 one-minute bar labels of a Shanghai/Shenzhen session."""
    morning = pd.timedelta_range("09:31:00", "11:30:00", freq="1min")
    afternoon = pd.timedelta_range("13:01:00", "15:00:00", freq="1min")
    out = morning.append(afternoon)
    assert len(out) == MINUTES_PER_DAY
    return out


def trading_days(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """XSHG sessions in [start, end] from ``exchange_calendars`` (real holidays included)."""
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XSHG")
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if start < cal.first_session or end > cal.last_session:
        raise ValueError(
            f"span {start.date()}..{end.date()} is outside the XSHG calendar "
            f"{cal.first_session.date()}..{cal.last_session.date()}"
        )
    days = cal.sessions_in_range(start, end)
    return pd.DatetimeIndex(np.asarray(days.tz_localize(None) if days.tz is not None else days))


def minute_calendar(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """All minute bar labels of the given sessions, in order."""
    offs = minute_offsets().to_numpy()
    d = pd.DatetimeIndex(days).normalize().to_numpy()
    return pd.DatetimeIndex((d[:, None] + offs[None, :]).ravel())
