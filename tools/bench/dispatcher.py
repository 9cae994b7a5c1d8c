#!/usr/bin/env python3
"""Call rate through Kamailio's dispatcher to 1, 2 and 3 ``rvoip answer`` workers.

    .venv/bin/python tools/bench/dispatcher.py [--workers 1,2,3] [--rates 200,300,...]
        [--seconds 3] [--hold-ms 0] [--quick]

For each worker count, the layout of ``deploy/kamailio/`` (``tools/kamailio_dispatcher.py``:
Kamailio with 2 UDP receiver processes, workers ``rvoip answer --quiet``) takes a ramp of
SIPp steps (``deploy/kamailio/uac.xml``: INVITE through the balancer, ACK and BYE through
its Record-Route), ``rate x seconds`` calls each. A step passes when every call succeeded
and SIPp sustained >= 90 % of the rate; the ramp stops at the first step that fails.
Printed per step: achieved calls/s, failures, retransmissions, and the CPU per call of
Kamailio, of all workers together and of SIPp. Nothing is pinned: SIPp, Kamailio and the
workers share the machine's cores, which is the point (what more workers buy on it).
Everything runs on 127.0.0.1; each step is bounded in calls and time.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
from _sipp_run import _epoch, _int, _stats_row, proc_cpu

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kamailio_dispatcher import (  # tools/ is put on the path just above
    LocalCluster,
    dispatcher_module_present,
    find_kamailio,
)

DEFAULT_RATES = "200,300,400,500,600,800,1000,1200"
QUICK_RATES = "50,100"


@attrs.frozen
class Step:
    """One SIPp step at a fixed rate through the balancer."""

    rate: float
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed: float
    kamailio_cpu: float
    workers_cpu: float
    sipp_cpu: float

    @property
    def achieved(self) -> float:
        """Successful calls per second of SIPp's run time."""
        return self.successful / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def passed(self) -> bool:
        """Every call succeeded and >= 90 % of the rate was sustained."""
        return (
            self.failed == 0 and self.successful == self.calls and self.achieved >= 0.9 * self.rate
        )


def _cluster_cpu(cluster: LocalCluster) -> tuple[float, float]:
    assert cluster.kamailio is not None
    # Kamailio forks its receivers: count the whole process group's children too.
    kamailio = sum(proc_cpu(pid) for pid in _descendants(cluster.kamailio.pid))
    workers = sum(proc_cpu(w.proc.pid) for w in cluster.workers)
    return kamailio, workers


def _descendants(pid: int) -> list[int]:
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += _descendants(int(child))
    return found


def run_step(
    cluster: LocalCluster, sipp: str, rate: float, seconds: float, hold_ms: int, work: Path
) -> Step:
    """``rate x seconds`` calls through the balancer; the step's figures."""
    calls = max(1, round(rate * seconds))
    work.mkdir(parents=True, exist_ok=True)
    cmd = cluster.sipp_command(
        sipp, rate=rate, calls=calls, hold_ms=hold_ms, timeout=seconds * 3 + 15
    )
    kam_before, workers_before = _cluster_cpu(cluster)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        cmd,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds * 3 + 30,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    kam_after, workers_after = _cluster_cpu(cluster)
    row = _stats_row(work / "stat.csv")
    return Step(
        rate=rate,
        calls=calls,
        successful=_int(row, "SuccessfulCall(C)"),
        failed=_int(row, "FailedCall(C)"),
        retransmissions=_int(row, "Retransmissions(C)"),
        elapsed=_epoch(row.get("CurrentTime", "")) - _epoch(row.get("StartTime", "")),
        kamailio_cpu=kam_after - kam_before,
        workers_cpu=workers_after - workers_before,
        sipp_cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def ramp(workers: int, rates: list[float], args: argparse.Namespace, work: Path) -> Step | None:
    """The ramp for one worker count; its best passing step."""
    sipp = shutil.which("sipp")
    assert sipp is not None
    print(f"\n== {workers} worker(s)", flush=True)
    print(
        f"{'target/s':>9} {'calls':>6} {'ok':>6} {'failed':>6} {'retrans':>7} "
        f"{'achieved/s':>10} {'kamailio us/call':>16} {'workers us/call':>15} "
        f"{'SIPp us/call':>12}",
        flush=True,
    )
    best: Step | None = None
    with LocalCluster(
        workers, workdir=None, quiet=True, ping_interval=1, drain_timeout=5
    ) as cluster:
        for worker in cluster.workers:
            cluster.wait_state(worker, active=True, timeout=10)
        for index, rate in enumerate(rates):
            step = run_step(
                cluster, sipp, rate, args.seconds, args.hold_ms, work / f"{workers}-{index}"
            )
            per_call = max(step.successful, 1)
            print(
                f"{rate:>9g} {step.calls:>6} {step.successful:>6} {step.failed:>6} "
                f"{step.retransmissions:>7} {step.achieved:>10,.0f} "
                f"{step.kamailio_cpu / per_call * 1e6:>16,.0f} "
                f"{step.workers_cpu / per_call * 1e6:>15,.0f} "
                f"{step.sipp_cpu / per_call * 1e6:>12,.0f}" + ("" if step.passed else "  FAIL"),
                flush=True,
            )
            if not step.passed:
                break
            best = step
            time.sleep(0.5)
    return best


def main() -> int:
    """Run the ramps and print one headline per worker count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3", help="comma list of worker counts")
    parser.add_argument("--rates", default=None, help=f"comma list (default {DEFAULT_RATES})")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per step (3)")
    parser.add_argument("--hold-ms", type=int, default=0, help="pause between ACK and BYE")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 short steps")
    args = parser.parse_args()
    if args.quick:
        args.rates = args.rates or QUICK_RATES
        args.seconds = 1.0
    rates = [float(r) for r in (args.rates or DEFAULT_RATES).split(",") if r]
    counts = [int(n) for n in args.workers.split(",") if n]
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    if shutil.which("sipp") is None or find_kamailio() is None or not dispatcher_module_present():
        print("sipp or kamailio (with its dispatcher module) not installed: nothing measured")
        return 2
    results: dict[int, Step | None] = {}
    with tempfile.TemporaryDirectory(prefix="rvoip-dispatcher-bench-") as tmp:
        for count in counts:
            results[count] = ramp(count, rates, args, Path(tmp))
    print()
    top = max(rates)
    for count, best in results.items():
        if best is None:
            print(f"{count} worker(s): no step passed")
            continue
        capped = " (the top of the ramp)" if best.rate >= top else ""
        per_call = max(best.successful, 1)
        print(
            f"{count} worker(s): {best.rate:g} calls/s with 0 failures "
            f"(achieved {best.achieved:,.0f}/s){capped}; CPU per call: Kamailio "
            f"{best.kamailio_cpu / per_call * 1e6:,.0f} us, workers "
            f"{best.workers_cpu / per_call * 1e6:,.0f} us, SIPp "
            f"{best.sipp_cpu / per_call * 1e6:,.0f} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
