"""DC half of StationEvseController: limits, cable check through the isolation monitor and the
power modules through hal.power_supply. Pre-charge current is capped (IEC 61851-23: 2 A)."""
from __future__ import annotations

import time
from typing import Any, Optional, Union

from iso15118.shared.messages.datatypes import (
    DCEVSEChargeParameter, DCEVSEStatus, DCEVSEStatusCode, PhysicalValue, PVEVSEMaxCurrentLimit, PVEVSEMaxPowerLimit,
    PVEVSEMaxVoltageLimit, PVEVSEMinCurrentLimit, PVEVSEMinVoltageLimit, PVEVSEPeakCurrentRipple,
)
from iso15118.shared.messages.enums import IsolationLevel, ServiceV20
from iso15118.shared.messages.iso15118_20.common_types import RationalNumber
from iso15118.shared.messages.iso15118_20.dc import (
    BPTDCChargeParameterDiscoveryResParams, DCChargeParameterDiscoveryResParams,
)

#: Below this insulation resistance per volt of the EVSE's max voltage: Warning (IEC 61851-23: 500 ohm/V).
WARNING_OHM_PER_V = 500.0


def pv(cls: Any, value: float, unit: str) -> Any:
    exponent, number = PhysicalValue.get_exponent_value_repr(value)
    return cls(multiplier=exponent, value=number, unit=unit)


class DcControl:
    """Mixed into StationEvseController; uses its evse, cfg, power_supply, isolation_monitor, log."""

    evse: Any
    cfg: Any
    power_supply: Any
    isolation_monitor: Any
    log: Any
    stop_reason: Optional[str]
    evse_data_context: Any
    last_request: float
    isolation: IsolationLevel = IsolationLevel.INVALID
    target: tuple[float, float] = (0.0, 0.0)

    def dc_limits(self) -> tuple[float, float, float, float, float]:
        """(max V, min V, max A, min A, max W): the config's, capped by the power supply's."""
        c = self.cfg.dc
        limits = [c.max_voltage_v, c.min_voltage_v, c.max_current_a, c.min_current_a, c.max_power_w]
        if self.power_supply is not None:
            caps = self.power_supply.capabilities
            limits = [min(limits[0], caps.max_voltage_v), max(limits[1], caps.min_voltage_v),
                      min(limits[2], caps.max_current_a), max(limits[3], caps.min_current_a),
                      min(limits[4], caps.max_power_w)]
        return limits[0], limits[1], limits[2], limits[3], limits[4]

    def max_power_w(self) -> float:
        if self.evse.config.kind == "dc":
            return self.dc_limits()[4]
        return float(self.evse.limiter.value) * 230.0 * self.evse.config.phases

    async def dc_off(self) -> None:
        self.target = (0.0, 0.0)
        if self.power_supply is not None:
            await self.power_supply.set_on(False)
        if self.isolation_monitor is not None:
            await self.isolation_monitor.stop()
        self.evse_data_context.present_current = 0
        self.evse_data_context.present_voltage = 0

    async def get_dc_evse_status(self) -> DCEVSEStatus:
        self.last_request = time.monotonic()
        from iso15118.shared.messages.datatypes import EVSENotification
        stopping = self.stop_reason is not None
        return DCEVSEStatus(
            notification_max_delay=0,
            evse_notification=EVSENotification.STOP_CHARGING if stopping else EVSENotification.NONE,
            evse_isolation_status=self.isolation if self.isolation != IsolationLevel.INVALID else IsolationLevel.VALID,
            evse_status_code=DCEVSEStatusCode.EVSE_SHUTDOWN if stopping else DCEVSEStatusCode.EVSE_READY,
        )

    async def get_dc_charge_parameters(self) -> DCEVSEChargeParameter:
        v_max, v_min, i_max, i_min, p_max = self.dc_limits()
        return DCEVSEChargeParameter(
            dc_evse_status=await self.get_dc_evse_status(),
            evse_maximum_power_limit=pv(PVEVSEMaxPowerLimit, p_max, "W"),
            evse_maximum_current_limit=pv(PVEVSEMaxCurrentLimit, i_max, "A"),
            evse_maximum_voltage_limit=pv(PVEVSEMaxVoltageLimit, v_max, "V"),
            evse_minimum_current_limit=pv(PVEVSEMinCurrentLimit, i_min, "A"),
            evse_minimum_voltage_limit=pv(PVEVSEMinVoltageLimit, v_min, "V"),
            evse_peak_current_ripple=pv(PVEVSEPeakCurrentRipple, self.cfg.dc.peak_current_ripple_a, "A"),
        )

    async def get_dc_charge_params_v20(self, energy_service: ServiceV20) -> Any:
        v_max, v_min, i_max, i_min, p_max = self.dc_limits()
        r = RationalNumber.get_rational_repr
        params = DCChargeParameterDiscoveryResParams(
            evse_max_charge_power=r(p_max), evse_min_charge_power=r(0), evse_max_charge_current=r(i_max),
            evse_min_charge_current=r(i_min), evse_max_voltage=r(v_max), evse_min_voltage=r(v_min),
            evse_power_ramp_limit=r(100))
        if energy_service == ServiceV20.DC_BPT:
            return BPTDCChargeParameterDiscoveryResParams(
                **params.dict(), evse_max_discharge_power=r(0), evse_min_discharge_power=r(0),
                evse_max_discharge_current=r(0), evse_min_discharge_current=r(0))
        return params

    async def start_cable_check(self) -> None:
        self.isolation = IsolationLevel.INVALID
        if self.isolation_monitor is None:
            return
        await self.isolation_monitor.start()

    async def get_cable_check_status(self) -> Union[IsolationLevel, None]:
        if self.isolation_monitor is None:
            self.isolation = IsolationLevel.NO_IMD
            return self.isolation
        reading = await self.isolation_monitor.read()
        if reading.fault:
            self.isolation = IsolationLevel.FAULT
            self.log.error("cable check: insulation fault (%.0f ohm)", reading.resistance_ohm)
        elif reading.resistance_ohm < WARNING_OHM_PER_V * self.dc_limits()[0]:
            self.isolation = IsolationLevel.WARNING
        else:
            self.isolation = IsolationLevel.VALID
        return self.isolation

    async def send_charging_command(self, ev_target_voltage: Optional[float], ev_target_current: Optional[float],
                                    is_precharge: bool = False, is_session_bpt: bool = False) -> None:
        self.last_request = time.monotonic()
        if self.power_supply is None:
            return
        if self.stop_reason is not None or not self.evse.hlc_power_request:
            await self.dc_off()
            return
        v_max, v_min, i_max, _, p_max = self.dc_limits()
        volts = max(0.0, min(float(ev_target_voltage or 0.0), v_max))
        amps = max(0.0, min(float(ev_target_current or 0.0), i_max))
        if is_precharge:
            amps = min(amps, self.cfg.dc.precharge_current_a)
        if volts > 0:
            amps = min(amps, p_max / volts)
        self.target = (volts, amps)
        try:
            await self.power_supply.set_output(volts, amps)
            await self.power_supply.set_on(True)
            status = await self.power_supply.status()
        except Exception:
            # The package answers FAILED and ends the session ~2 s later; the power goes now.
            self.log.error("power supply failed during %s: cutting power", "pre-charge" if is_precharge else "charging")
            await self.end_power("power supply failure")  # type: ignore[attr-defined]
            raise
        self.evse_data_context.present_voltage = status.voltage_v
        self.evse_data_context.present_current = status.current_a

    async def is_evse_current_limit_achieved(self) -> bool:
        return self.target[1] >= self.dc_limits()[2] > 0

    async def is_evse_voltage_limit_achieved(self) -> bool:
        return self.target[0] >= self.dc_limits()[0] > 0

    async def is_evse_power_limit_achieved(self) -> bool:
        volts, amps = self.target
        return volts * amps >= self.dc_limits()[4] > 0
