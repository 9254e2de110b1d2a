"""Name matching against a growing roster: what checking a message's names costs as the roster grows.

Every report's heading is matched against the roster's names (``ingest.sanity``: does the report name the school
that sent it?), and so is every message from an address the roster does not know (``identify.by_name``). This
times ``match_names`` over texts as schools write them, on rosters from the demo's 41 institutions to a merged
city's 3,000 (tests/big_roster.py), against trying every phrase of the roster in turn (the method before the index
of phrases by their rarest pair of words), and checks that both find the same institutions.

    python bench/identify.py [--texts N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailbot.ingest.identify import Roster, match_names  # noqa: E402
from mailbot.models import Institution  # noqa: E402
from mailbot.text import fold  # noqa: E402
from tests.big_roster import city_roster, match_every_phrase, mentions  # noqa: E402

SIZES = (41, 400, 1500, 3000)


def per_text_us(match: Callable[[str, Roster], set[Institution]], texts: list[str], roster: Roster) -> float:
    for text in texts:
        fold(text)  # folded once beforehand, as the cache would have it: only the matching is timed
    start = time.perf_counter()
    for text in texts:
        match(text, roster)
    return (time.perf_counter() - start) / len(texts) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="texts matched per roster size (default 2000)")
    args = parser.parse_args()
    print(f"{'institutions':>12} {'phrases':>8} {'pair index':>12} {'every phrase':>13} {'speed-up':>9}  same result")
    ok = True
    for size in SIZES:
        roster = Roster.of(city_roster(size))
        texts = mentions(roster.institutions, args.texts, seed=size)
        same = [match_names(t, roster) for t in texts] == [match_every_phrase(t, roster) for t in texts]
        indexed, linear = per_text_us(match_names, texts, roster), per_text_us(match_every_phrase, texts, roster)
        print(
            f"{size:>12} {len(roster.name_keys):>8} {indexed:>9.1f} µs {linear:>10.1f} µs {linear / indexed:>8.1f}x"
            f"  {'yes' if same else 'NO'}"
        )
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
