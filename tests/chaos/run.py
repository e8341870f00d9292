"""``make chaos``: many chaos schedules with random seeds, a survival table, the seeds that failed.

``python -m tests.chaos.run [--schedules 500] [--seed-base N] [--kinds mz_campaign,bsg_bulk]``;
``CHAOS_SEED=<n>[,<m>]`` reruns chosen schedules (with their full description and outcome).
Starts its own sandbox on 127.0.0.1 and an isolated AIRFLOW_HOME; exits 1 if any schedule failed.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# Airflow reads its configuration at import time: isolate it first, as tests/conftest.py does.
_HOME = Path(tempfile.mkdtemp(prefix="airflow-sms-chaos-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL")  # thousands of expected errors otherwise
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"


def main(argv: list[str] | None = None) -> int:
    import logging

    from airflow_sms_provider.sandbox import SandboxServer
    from tests.chaos.harness import KINDS, Result, draw, run_guarded, seeds_from_env
    from tests.chaos.known_failing import KNOWN_FAILING

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=int(os.environ.get("CHAOS_SCHEDULES", "500")))
    parser.add_argument("--seed-base", type=int, default=None, help="first seed (default: random)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    base = args.seed_base if args.seed_base is not None else random.SystemRandom().randrange(10**6, 10**9)
    seeds = seeds_from_env(list(range(base, base + args.schedules)))
    kinds = tuple(args.kinds.split(","))
    logging.disable(logging.CRITICAL)  # the operators' own logs: thousands of lines of expected errors
    results: list[Result] = []
    started = time.monotonic()
    print(f"chaos: {len(seeds)} schedules, seeds {seeds[0]}..{seeds[-1]}", flush=True)
    with SandboxServer(taskqueue_min_interval=0) as server:
        for seed in seeds:
            schedule = draw(seed, kinds)
            print(f"... {schedule.describe()}", file=sys.stderr, flush=True)
            result = run_guarded(server.url, schedule)
            if result.outcome == "hung":  # where it hangs, for the report
                faulthandler.dump_traceback(all_threads=True)
            results.append(result)
            if not result.survived:
                known = " (known failing)" if seed in KNOWN_FAILING else ""
                print(f"FAILED{known} CHAOS_SEED={seed}: {result.line()}", flush=True)
            elif os.environ.get("CHAOS_SEED"):
                print(result.line())
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in results:
        row = table[r.schedule.kind]
        row["ran"] += 1
        row["survived"] += r.survived
        row[r.outcome] += 1
        row["killed"] += r.killed
        row["overlap"] += r.schedule.overlap
        row["no-store"] += not r.schedule.durable
    cols = ["ran", "survived", "sent", "fatal", "exhausted", "hung", "killed", "overlap", "no-store"]
    print(f"\n{'operator':<16}" + "".join(f"{c:>10}" for c in cols))
    for kind in sorted(table):
        print(f"{kind:<16}" + "".join(f"{table[kind][c]:>10}" for c in cols))
    total = {c: sum(table[k][c] for k in table) for c in cols}
    print(f"{'total':<16}" + "".join(f"{total[c]:>10}" for c in cols))
    failed = [r.schedule.seed for r in results if not r.survived]
    print(f"\n{total['survived']}/{total['ran']} schedules survived in {time.monotonic() - started:.0f} s"
          + (f"; failing seeds: {','.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
