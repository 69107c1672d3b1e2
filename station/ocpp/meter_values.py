"""MeterReading -> OCPP MeterValueType (J): the configured measurands, per phase where the meter has them,
and the meter's signed data (OCMF) carried as SignedMeterValueType on the energy register, byte for byte."""
from __future__ import annotations

from typing import Any

from hal.meter import MeterReading

PHASES = ("L1", "L2", "L3")


def measurands(value: str | None) -> list[str]:
    return [m.strip() for m in (value or "").split(",") if m.strip()]


def _sample(value: float, measurand: str, context: str, unit: str, phase: str | None = None) -> dict[str, Any]:
    sample: dict[str, Any] = {"value": round(float(value), 3), "measurand": measurand, "context": context,
                              "unit_of_measure": {"unit": unit}}
    if phase is not None:
        sample["phase"] = phase
    return sample


def sampled_values(reading: MeterReading, wanted: list[str], context: str,
                   offered_a: float | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for measurand in wanted:
        if measurand == "Energy.Active.Import.Register":
            sample = _sample(reading.energy_import_wh, measurand, context, "Wh")
            if reading.signed is not None:
                signed = reading.signed
                sample["signed_meter_value"] = {"signed_meter_data": signed.signed_meter_data,
                                                "signing_method": signed.signing_method,
                                                "encoding_method": signed.encoding_method,
                                                "public_key": signed.public_key}
            out.append(sample)
        elif measurand == "Power.Active.Import":
            out.append(_sample(reading.power_w, measurand, context, "W"))
        elif measurand == "Current.Import":
            out += [_sample(a, measurand, context, "A", PHASES[i]) for i, a in enumerate(reading.current_a[:3])]
        elif measurand == "Voltage":
            out += [_sample(v, measurand, context, "V", f"{PHASES[i]}-N") for i, v in enumerate(reading.voltage_v[:3])]
        elif measurand == "Current.Offered" and offered_a is not None:
            out.append(_sample(offered_a, measurand, context, "A"))
    return out


def meter_value(reading: MeterReading, wanted: list[str], context: str, timestamp: str,
                offered_a: float | None = None) -> dict[str, Any] | None:
    samples = sampled_values(reading, wanted, context, offered_a)
    return {"timestamp": timestamp, "sampled_value": samples} if samples else None
