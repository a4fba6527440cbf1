"""A deterministic CSV shaped like nycflights13's `flights` table (336,776 rows in the original).

Same columns in the same order, the same kinds of values (integers, clock times as numbers like 517 for 05:17,
two-character carrier codes, tail numbers, airport codes, an ISO 8601 UTC timestamp) and `NA` for missing values
as R writes them: cancelled flights have no dep_time/dep_delay/arr_time/arr_delay/air_time, a few more have no
arr_time or no arrival delay, some have no tailnum. Rows are in date and scheduled-time order, like the original.

    python -m tests.support.flights --rows 336776 > flights.csv
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TextIO

COLUMNS = ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
           "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute",
           "time_hour"]
NUMERIC = ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
           "arr_delay", "flight", "air_time", "distance", "hour", "minute"]
TEXT = ["carrier", "tailnum", "origin", "dest"]
FULL_ROWS = 336_776

CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
ORIGINS = ["EWR", "JFK", "LGA"]
# destination -> distance in miles from New York (about right; the shape matters, not the geography)
DESTS = {"ATL": 762, "ORD": 733, "LAX": 2475, "BOS": 187, "MCO": 950, "CLT": 544, "SFO": 2586, "FLL": 1069,
         "MIA": 1089, "DCA": 214, "DTW": 502, "DFW": 1372, "RDU": 427, "TPA": 1005, "DEN": 1620, "IAH": 1416,
         "MSP": 1029, "PBI": 1028, "BNA": 764, "LAS": 2248, "SJU": 1598, "IAD": 228, "BUF": 301, "PHX": 2153,
         "CLE": 405, "STL": 888, "MCI": 1113, "SEA": 2422, "HNL": 4983, "ANC": 3370, "BQN": 1576, "PIT": 319}
NA = "NA"


def _clock(minutes: int) -> int:
    """Minutes after midnight -> the table's clock number (517 is 05:17; 2400 stays 2400 as in the original)."""
    minutes %= 24 * 60
    return (minutes // 60) * 100 + minutes % 60 or 2400


def rows(count: int, seed: int = 13) -> Iterator[list[str]]:
    rng = random.Random(seed)
    tails = [f"N{rng.randint(100, 999)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.choice('AJQUW')}"
             for _ in range(4000)]
    per_day = max(1, count // 365)
    start = date(2013, 1, 1)
    made = 0
    day_no = 0
    while made < count:
        today = start + timedelta(days=day_no % 365)
        n = min(per_day if day_no < 364 else count - made, count - made)
        sched = sorted(rng.randint(5 * 60, 23 * 60 + 59) for _ in range(n))
        for s in sched:
            carrier = rng.choice(CARRIERS)
            dest = rng.choice(list(DESTS))
            distance = DESTS[dest]
            air = max(20, int(distance / 8.2) + rng.randint(-15, 25))
            sched_arr = s + air + 40
            delay = int(rng.expovariate(1 / 18)) - 8 if rng.random() < 0.6 else rng.randint(-15, 5)
            cancelled = rng.random() < 0.025
            tail = NA if (cancelled and rng.random() < 0.3) or rng.random() < 0.003 else rng.choice(tails)
            if cancelled:
                dep_time = dep_delay = arr_time = arr_delay = air_time = NA
            else:
                arr_d = delay + rng.randint(-25, 20)
                dep_time, dep_delay = str(_clock(s + delay)), str(delay)
                arr_time = str(_clock(sched_arr + arr_d))
                arr_delay, air_time = str(arr_d), str(air)
                if rng.random() < 0.002:  # diverted: arrived elsewhere, no delay or air time
                    arr_delay = air_time = NA
                    if rng.random() < 0.5:
                        arr_time = NA
            utc = s + 5 * 60  # the timestamp is the scheduled hour in UTC (New York in winter: +5 h)
            stamp = today + timedelta(days=utc // (24 * 60))
            yield [str(today.year), str(today.month), str(today.day), dep_time, str(_clock(s)), dep_delay,
                   arr_time, str(_clock(sched_arr)), arr_delay, carrier, str(rng.randint(1, 6181)), tail,
                   rng.choice(ORIGINS), dest, air_time, str(distance), str(s // 60), str(s % 60),
                   f"{stamp.isoformat()}T{(utc // 60) % 24:02d}:00:00Z"]
            made += 1
        day_no += 1


def write_csv(out: TextIO, count: int, seed: int = 13) -> None:
    """Plain CSV as R's write.csv leaves it unquoted: no value here needs quoting."""
    out.write(",".join(COLUMNS) + "\n")
    for row in rows(count, seed):
        out.write(",".join(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    write_csv(sys.stdout, args.rows, args.seed)


if __name__ == "__main__":
    main()
