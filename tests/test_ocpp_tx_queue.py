"""The durable message queue: a session that happens offline is delivered in order on reconnect with
offline=true (E04); queued events and the open transaction survive a station restart (ended PowerLoss);
CALLERRORs are retried per MessageAttempts / MessageAttemptInterval and dropped (and reported) after."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.ocpp_support import DevCsms, OcppStation, eventually, ready
from tests.ocpp_tx_support import PROFILE, check_sequence, tx_config, tx_events


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


async def test_session_offline_is_delivered_in_order_after_reconnect(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url), tmp_path) as st:
        await ready(csms)
        port = csms.port
        await csms.stop()  # the CSMS goes away (connections closed)
        await eventually(lambda: not st.svc.connected, what="link down")
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        await st.sim("sim.unplug", evse=1)
        await eventually(lambda: st.svc.queue.pending() >= 4, what="events queued")
        assert st.svc.queue.offline()
        back = await DevCsms(port=port, verbose=False).start()
        try:
            cp = await back.station("TEST-1")
            await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
            events = tx_events(cp)
            check_sequence(events)
            assert all(e["offline"] is True for e in events)
            await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
        finally:
            await back.stop()


@pytest.mark.parametrize("stop", ["power-cut", "clean"])
async def test_queue_and_open_transaction_survive_a_restart(tmp_path: Path, csms, stop: str) -> None:
    """Offline all along, then restarted: after a power cut the open transaction ends with PowerLoss at
    the restart; a clean stop (systemctl stop) ends it at once with Reboot, queued with the rest."""
    port = csms.port
    await csms.stop()  # nobody answers during the first run
    cfg = tx_config(tmp_path, f"ws://127.0.0.1:{port}")
    async with OcppStation(cfg, tmp_path) as st:
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        await eventually(lambda: st.svc.queue.pending() >= 3, what="events queued")
        queued = st.svc.queue.pending()
        if stop == "power-cut":  # the process dies before its shutdown code runs
            async def nothing() -> None:
                return None
            st.svc.transactions.end_for_shutdown = nothing  # type: ignore[method-assign]
    db = sqlite3.connect(tmp_path / "state" / "ocpp_queue.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM message").fetchone()[0] == queued + (stop == "clean")
    assert db.execute("SELECT count(*) FROM tx").fetchone()[0] == (stop == "power-cut")
    db.close()
    back = await DevCsms(port=port, verbose=False).start()
    try:
        async with OcppStation(cfg, tmp_path) as st:
            cp = await back.station("TEST-1")
            ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
            assert ended["transaction_info"]["stopped_reason"] == ("PowerLoss" if stop == "power-cut" else "Reboot")
            assert ended["trigger_reason"] == "AbnormalCondition"
            events = tx_events(cp)
            check_sequence(events)
            assert len(events) == queued + 1
            # offline: everything that happened while the CSMS was away; the PowerLoss end is decided now
            assert all(e["offline"] is True for e in (events[:-1] if stop == "power-cut" else events))
            await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
    finally:
        await back.stop()


async def test_callerror_is_retried_then_delivered(tmp_path: Path, csms) -> None:
    csms.fail_transaction_events = 2
    cfg = tx_config(tmp_path, csms.url, variables={"OCPPCommCtrlr.MessageAttempts.TransactionEvent": 3,
                                                   "OCPPCommCtrlr.MessageAttemptInterval.TransactionEvent": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        assert [p["seq_no"] for p in cp.of("TransactionEventFailed")] == [0, 0]
        check_sequence(tx_events(cp))
        assert st.svc.queue.retried == 2 and st.svc.queue.dropped == 0


async def test_dropped_after_the_last_attempt_and_reported(tmp_path: Path, csms) -> None:
    csms.fail_transaction_events = 2
    cfg = tx_config(tmp_path, csms.url, variables={"OCPPCommCtrlr.MessageAttempts.TransactionEvent": 2,
                                                   "OCPPCommCtrlr.MessageAttemptInterval.TransactionEvent": 1})
    async with OcppStation(cfg, tmp_path) as st:
        published: list[dict] = []
        st.station.control.publish = published.append  # type: ignore[method-assign]
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        first = time.monotonic()
        await cp.wait_for("TransactionEvent", lambda p: p["seq_no"] == 1, timeout=8)
        assert time.monotonic() - first >= 0.9  # MessageAttemptInterval between the two attempts
        assert st.svc.queue.dropped == 1
        assert [p["seq_no"] for p in cp.of("TransactionEventFailed")] == [0, 0]
        assert 0 not in [p["seq_no"] for p in tx_events(cp)]  # Started was dropped; the rest still goes
        assert any(e.get("event") == "OcppMessageDropped" for e in published)


async def test_queue_all_messages_keeps_status_changes_made_offline(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"OCPPCommCtrlr.QueueAllMessages": True})
    async with OcppStation(cfg, tmp_path) as st:
        await ready(csms)
        await eventually(lambda: st.svc.queue.pending() == 0, what="boot statuses answered")
        port = csms.port
        await csms.stop()
        await eventually(lambda: not st.svc.connected, what="link down")
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        await st.sim("sim.unplug", evse=1)
        await eventually(lambda: st.station.evses[1].connector_status.value == "Available", what="available")
        back = await DevCsms(port=port, verbose=False).start()
        try:
            cp = await back.station("TEST-1")
            await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
            await cp.wait_for("StatusNotification", count=2)
            await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
            # Both offline changes, in the order they happened, interleaved with the transaction events.
            order = [a for a, _ in cp.received if a in ("StatusNotification", "TransactionEvent")]
            assert [p["connector_status"] for p in cp.of("StatusNotification")] == ["Occupied", "Available"]
            assert order.index("StatusNotification") < len(order) - 2  # Occupied before the session's end
            assert all(p.get("offline") for p in cp.of("TransactionEvent"))
        finally:
            await back.stop()


async def test_backlog_beyond_the_memory_window_stays_on_disk(tmp_path: Path, csms, monkeypatch) -> None:
    from station.ocpp.message_queue import DurableQueue

    monkeypatch.setattr(DurableQueue, "window", 2)
    port = csms.port
    await csms.stop()
    cfg = tx_config(tmp_path, f"ws://127.0.0.1:{port}")
    async with OcppStation(cfg, tmp_path) as st:
        for _ in range(2):
            await st.sim("sim.plug", evse=1, profile=PROFILE)
            await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
            await st.sim("sim.unplug", evse=1)
            await eventually(lambda: st.svc.transactions.trackers[1].tx is None, what="ended")
        assert st.svc.queue.pending() >= 8 and st.svc.queue.in_memory() <= 2
        assert st.svc.queue.queued_transaction_events()
    back = await DevCsms(port=port, verbose=False).start()
    try:
        async with OcppStation(cfg, tmp_path) as st:  # restart: the backlog is paged in from SQLite
            assert st.svc.queue.in_memory() <= 2
            cp = await back.station("TEST-1")
            await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended", count=2)
            await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
            assert not st.svc.queue.queued_transaction_events()
            events = tx_events(cp)
            first = events[0]["transaction_info"]["transaction_id"]
            check_sequence([e for e in events if e["transaction_info"]["transaction_id"] == first])
            check_sequence([e for e in events if e["transaction_info"]["transaction_id"] != first])
            assert events[len([e for e in events if e["transaction_info"]["transaction_id"] == first]) - 1][
                "event_type"] == "Ended"  # the first session entirely before the second: queue order
    finally:
        await back.stop()


async def test_a_stored_message_that_cannot_be_rebuilt_is_dropped_not_blocking(tmp_path: Path, csms) -> None:
    port = csms.port
    await csms.stop()
    cfg = tx_config(tmp_path, f"ws://127.0.0.1:{port}")
    async with OcppStation(cfg, tmp_path) as st:
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.svc.queue.pending() >= 2, what="events queued")
    db = sqlite3.connect(tmp_path / "state" / "ocpp_queue.sqlite")
    with db:  # a row from some other version: unknown field
        db.execute("UPDATE message SET payload = json_set(payload, '$.no_such_field', 1) "
                   "WHERE seq = (SELECT min(seq) FROM message)")
    db.close()
    back = await DevCsms(port=port, verbose=False).start()
    try:
        async with OcppStation(cfg, tmp_path) as st:
            cp = await back.station("TEST-1")
            await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
            assert st.svc.queue.dropped == 1
            assert [e["seq_no"] for e in tx_events(cp)][0] == 1  # the rest went on, in order
    finally:
        await back.stop()
