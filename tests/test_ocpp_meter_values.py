"""Meter values (J): clock-aligned data (AlignedDataCtrlr) as MeterValues outside and TransactionEvent
MeterValueClock inside a transaction, TxEndedInterval samples in Ended, TriggerMessage(MeterValues),
per-phase values, and signed (OCMF) data carried unchanged and schema-valid."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ocpp.charge_point import snake_to_camel_case
from ocpp.messages import Call, validate_payload
from ocpp.v201 import call

from hal.meter import MeterReading, SignedMeterValue
from station.ocpp.aligned_data import seconds_to_boundary
from station.ocpp.meter_values import sampled_values
from tests.ocpp_support import DevCsms, OcppStation, eventually, ready
from tests.ocpp_tx_support import PROFILE, tx_config


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


async def test_clock_aligned_outside_and_inside_a_transaction(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"AlignedDataCtrlr.Interval": 1,
                                                   "AlignedDataCtrlr.Measurands": "Energy.Active.Import.Register,Voltage"})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        value = (await cp.wait_for("MeterValues", timeout=4))[0]
        assert value["evse_id"] == 1
        samples = value["meter_value"][0]["sampled_value"]
        assert {s["context"] for s in samples} == {"Sample.Clock"}
        assert {s.get("phase") for s in samples if s["measurand"] == "Voltage"} == {"L1-N", "L2-N", "L3-N"}
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        clock = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "MeterValueClock",
                                   timeout=4))[0]
        assert clock["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Clock"


async def test_tx_ended_interval_samples_in_ended(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"SampledDataCtrlr.TxEndedInterval": 1,
                                                   "AlignedDataCtrlr.Interval": 0,
                                                   "AlignedDataCtrlr.TxEndedInterval": 1})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        tracker = st.svc.transactions.trackers[1]
        def kept(context: str) -> int:
            return [v["sampled_value"][0]["context"] for v in (tracker.tx or {}).get("ended_values", [])].count(context)
        await eventually(lambda: kept("Sample.Periodic") >= 2 and kept("Sample.Clock") >= 1, timeout=5,
                         what="samples kept for Ended")
        await st.sim("sim.unplug", evse=1)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        contexts = [v["sampled_value"][0]["context"] for v in ended["meter_value"]]
        assert contexts[-1] == "Transaction.End"
        assert contexts.count("Sample.Periodic") >= 2
        assert contexts.count("Sample.Clock") >= 1  # AlignedDataCtrlr.TxEndedInterval
        registers = [v["sampled_value"][0]["value"] for v in ended["meter_value"]]
        assert registers == sorted(registers)  # energy never goes backwards


async def test_trigger_meter_values(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url, variables={"AlignedDataCtrlr.Interval": 0}), tmp_path):
        cp = await ready(csms)
        result = await cp.call(call.TriggerMessage(requested_message="MeterValues", evse={"id": 1}), suppress=False)
        assert result.status == "Accepted"
        value = (await cp.wait_for("MeterValues"))[0]
        assert value["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"


async def test_signed_value_passes_through_unchanged_and_schema_valid() -> None:
    signed = SignedMeterValue(signed_meter_data="OCMF|{\"FV\":\"1.0\",\"RD\":[{\"RV\":1.234}]}|{\"SD\":\"3045\"}",
                              public_key="3059301306072a8648ce3d0201")
    reading = MeterReading(timestamp=datetime.now(timezone.utc), energy_import_wh=1234.0, power_w=7000.0,
                           voltage_v=(230.0, 231.0, 229.0), current_a=(10.0, 10.1, 9.9), signed=signed)
    samples = sampled_values(reading, ["Energy.Active.Import.Register", "Current.Import"], "Transaction.End")
    assert samples[0]["signed_meter_value"] == {"signed_meter_data": signed.signed_meter_data,
                                                "signing_method": signed.signing_method,
                                                "encoding_method": "OCMF", "public_key": signed.public_key}
    assert [s["phase"] for s in samples[1:]] == ["L1", "L2", "L3"]
    payload = call.TransactionEvent(
        event_type="Ended", timestamp="2026-01-01T00:00:00.000Z", trigger_reason="EVCommunicationLost", seq_no=3,
        transaction_info={"transaction_id": "t", "stopped_reason": "EVDisconnected"},
        meter_value=[{"timestamp": "2026-01-01T00:00:00.000Z", "sampled_value": samples}])
    body = snake_to_camel_case({k: v for k, v in dataclasses.asdict(payload).items() if v is not None})
    await validate_payload(Call("1", "TransactionEvent", body), "2.0.1")  # raises on a schema violation


def test_clock_alignment() -> None:
    assert seconds_to_boundary(86400 * 3 + 899.5, 900) == pytest.approx(0.5)
    assert seconds_to_boundary(86400 * 3 + 900, 900) == 900


async def test_signed_values_at_begin_and_end_from_a_signing_meter(tmp_path: Path, csms) -> None:
    """A meter that signs on request (like hal/modbus with an [ocmf] map): the signed start value goes out
    as Updated SignedDataReceived, the Ended event waits for the signed end value."""
    async with OcppStation(tx_config(tmp_path, csms.url, variables={"AlignedDataCtrlr.Interval": 0}), tmp_path) as st:
        meter = st.station.meters[1]
        contexts: list[str] = []

        async def signed_reading(self: object, context: str) -> SignedMeterValue:
            contexts.append(context)
            return SignedMeterValue(signed_meter_data=f"OCMF|{{\"TX\":\"{context}\"}}|{{\"SD\":\"30\"}}",
                                    public_key="04ab")
        # the sim meter's own class, with signed_reading as a signing meter has it
        meter.__class__ = type("SigningSimMeter", (type(meter),), {"signed_reading": signed_reading,
                                                                    "can_sign": True})
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        begin = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "SignedDataReceived"))[0]
        sample = begin["meter_value"][0]["sampled_value"][0]
        assert sample["context"] == "Transaction.Begin"
        assert sample["signed_meter_value"]["signed_meter_data"] == 'OCMF|{"TX":"Transaction.Begin"}|{"SD":"30"}'
        await st.sim("sim.unplug", evse=1)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        signed = [s for v in ended["meter_value"] for s in v["sampled_value"] if "signed_meter_value" in s]
        assert signed[0]["signed_meter_value"]["signed_meter_data"] == 'OCMF|{"TX":"Transaction.End"}|{"SD":"30"}'
        assert signed[0]["context"] == "Transaction.End"
        assert contexts == ["Transaction.Begin", "Transaction.End"]


async def test_grid_meter_goes_out_as_evse_0(tmp_path: Path, csms) -> None:
    """[grid_meter] (the sim one sums every simulated port): MeterValues with evseId 0, clock-aligned and
    triggered, at least the EVSEs' registers together (it is read a moment after their last reading)."""
    from station.config_model import DriverConfig

    cfg = tx_config(tmp_path, csms.url, evses=2, variables={"AlignedDataCtrlr.Interval": 1})
    cfg = cfg.copy(update={"grid_meter": DriverConfig(driver="sim")})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        clock = (await cp.wait_for("MeterValues", lambda p: p["evse_id"] == 0, timeout=4))[0]
        assert clock["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Clock"
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.plug", evse=2, profile=PROFILE)
        await eventually(lambda: all(st.station.evses[n].charging_state.value == "Charging" for n in (1, 2)),
                         what="both charging")
        await eventually(lambda: all((st.station.evses[n].last_reading or MeterReading(
            datetime.now(timezone.utc), 0.0, 0.0)).energy_import_wh > 1 for n in (1, 2)), what="energy")
        evse_wh = sum(st.station.evses[n].last_reading.energy_import_wh for n in (1, 2))
        before = len(cp.of("MeterValues"))
        await cp.call(call.TriggerMessage(requested_message="MeterValues"), suppress=False)
        triggered = (await cp.wait_for("MeterValues", lambda p: p["evse_id"] == 0 and
                                       p["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"))[0]
        grid_wh = triggered["meter_value"][0]["sampled_value"][0]["value"]
        assert evse_wh <= grid_wh <= evse_wh + 50, (evse_wh, grid_wh)
        assert len(cp.of("MeterValues")) > before
