"""Quality monitoring: periodic E-model reports per call, and statistics on demand.

Run: ``python examples/quality_monitoring.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    MediaControl,
    QualityMetrics,
    SessionId,
    SessionManagerBuilder,
    tone_source,
)


class QualityMonitor(AutoAnswerHandler):
    """Warns when a call's estimated MOS drops below a threshold."""

    def __init__(self, threshold: float = 3.5) -> None:
        self.threshold = threshold
        self.reports = 0

    async def on_media_quality(self, session_id: SessionId, metrics: QualityMetrics) -> None:
        self.reports += 1
        mos = metrics.mos_score or 0.0
        flag = "POOR" if mos < self.threshold else "good"
        print(
            f"report {self.reports}: MOS {mos:.2f} ({flag}), R {metrics.r_factor or 0:.1f}, "
            f"loss {metrics.packet_loss_percent:.1f}%, jitter {metrics.jitter_ms:.1f} ms"
        )


async def main() -> None:
    monitor = QualityMonitor()
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:agent@127.0.0.1")
        .with_handler(monitor)
        .with_quality_interval(0.5)
        .build() as agent,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:customer@127.0.0.1")
        .build() as customer,
    ):
        host, port = agent.local_sip_address
        call = await customer.create_outgoing_call(
            "sip:customer@127.0.0.1", f"sip:agent@{host}:{port}"
        )
        await customer.wait_for_answer(call.id, 10)
        await customer.set_audio_source(call.id, tone_source(1000))
        with anyio.fail_after(10):
            while monitor.reports < 2:
                await anyio.sleep(0.05)
        # RTCP reports both ways now (besides their schedule) give a round-trip time:
        # the agent's report carries LSR/DLSR for the customer's sender report.
        (agent_leg,) = await agent.list_active_sessions()
        await customer.send_rtcp_report(call.id)
        await anyio.sleep(0.05)
        await agent.send_rtcp_report(agent_leg.id)
        await anyio.sleep(0.05)
        stats = await MediaControl.get_media_statistics(customer, call.id)
        if stats and stats.quality_metrics:
            q = stats.quality_metrics
            print(
                f"customer side: {stats.packets_sent} sent, {stats.packets_received} received, "
                f"MOS {q.mos_score}, RTT {q.round_trip_ms or 0:.2f} ms"
            )
        await customer.terminate_session(call.id)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
