"""Our EVSEControllerInterface: what the iso15118 package's SECC asks of the hardware, answered
from the EVSE state machine (station/evse.py) and the HAL, for one EVSE.

Contactors: the SECC asks for them (cable check, PowerDelivery) and we pass the request to the
EVSE with `set_hlc_power_request`; the EVSE closes them only in state C/D while authorized, and
we report what the board's feedback says. Everything that ends a session (the EV's stop, our
stop, an error in the package, unplug) goes through `end_power()`: power modules off first, then
contactors open.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Optional

from iso15118.secc.controller.evse_data import (
    EVSEACCLLimits, EVSEACCPDLimits, EVSEDataContext, EVSEDCCLLimits, EVSEDCCPDLimits, EVSERatedLimits,
    EVSESessionLimits,
)
from iso15118.secc.controller.interface import AuthorizationResponse, EVSEControllerInterface, ServiceStatus
from iso15118.shared.messages.datatypes import EVSENotification as EVSENotificationV2
from iso15118.shared.messages.din_spec.datatypes import ResponseCode as ResponseCodeDIN
from iso15118.shared.messages.enums import (
    AuthorizationStatus, AuthorizationTokenType, ControlMode, CpState, EnergyTransferModeEnum, Protocol,
    ServiceV20, SessionStopAction, UnitSymbol,
)
from iso15118.shared.messages.iso15118_2.datatypes import (
    ACEVSEChargeParameter, ACEVSEStatus, MeterInfo as MeterInfoV2, PVEVSEMaxCurrent, PVEVSENominalVoltage,
    ResponseCode as ResponseCodeV2,
)
from iso15118.shared.messages.iso15118_20.ac import (
    ACChargeParameterDiscoveryResParams, BPTACChargeParameterDiscoveryResParams,
)
from iso15118.shared.messages.iso15118_20.common_types import (
    EVSENotification as EVSENotificationV20, EVSEStatus, MeterInfo as MeterInfoV20, RationalNumber,
    ResponseCode as ResponseCodeV20,
)
from iso15118.shared.states import State

from station.evse import Evse
from station.iso15118.config import Iso15118Config
from station.iso15118.contracts import ContractAuthority, ContractRequest, NoPlugAndCharge
from station.iso15118.controller_dc import DcControl
from station.iso15118 import schedules

AC_NOMINAL_V = 230.0
CONTACTOR_POLL_S = 0.02
CP_STATES = {"A": CpState.A1, "B1": CpState.B1, "B2": CpState.B2, "C1": CpState.C1, "C2": CpState.C2,
             "D1": CpState.D1, "D2": CpState.D2, "E": CpState.E, "F": CpState.F, "Faulted": CpState.F}


class StationEvseController(DcControl, EVSEControllerInterface):
    def __init__(self, evse: Evse, config: Iso15118Config, *, station_id: str, power_supply: Any = None,
                 isolation_monitor: Any = None, contracts: ContractAuthority | None = None) -> None:
        EVSEControllerInterface.__init__(self)
        self.evse = evse
        self.cfg = config
        self.station_id = station_id
        self.power_supply = power_supply
        self.isolation_monitor = isolation_monitor
        self.contracts: ContractAuthority = contracts or NoPlugAndCharge()
        self.log = logging.getLogger(f"evse{evse.id}.secc")
        self.status = ServiceStatus.STARTING
        self.protocol_state = ""
        self.hlc_charging = False
        self.stop_reason: str | None = None  # the station wants the session to end (OCPP stop, fault)
        self.last_request = time.monotonic()
        self.session_active = False
        #: (stage, "close"/"open") when the SECC asks for a contactor change, (stage, "closed"/"opened", ok)
        #: when the feedback came (or not): the order tests check.
        self.contactor_log: list[tuple[Any, ...]] = []
        self.ended: list[tuple[str, str]] = []
        self.evse_data_context = self._data_context()

    # ------------------------------------------------------------------ lifecycle
    async def set_status(self, status: ServiceStatus) -> None:
        self.status = status

    async def set_status_starting(self) -> None:
        await self.set_status(ServiceStatus.STARTING)

    async def set_present_protocol_state(self, state: State) -> None:
        self.protocol_state = type(state).__name__ if not isinstance(state, str) else state
        self.last_request = time.monotonic()
        self.session_active = True

    async def set_hlc_charging(self, is_ongoing: bool) -> None:
        self.hlc_charging = is_ongoing

    async def update_data_link(self, action: SessionStopAction) -> None:
        pass  # the PLC link stays; SLAC runs again on the next plug-in

    async def session_ended(self, current_state: str, reason: str) -> None:
        self.log.info("V2G session ended in %s: %s", current_state, reason)
        self.ended.append((current_state, reason))
        self.session_active = False
        await self.end_power(f"session ended in {current_state}")
        self.reset_ev_data_context()

    def request_stop(self, reason: str) -> None:
        """The station wants the session over (OCPP stop, fault): told to the EV in the next status."""
        if self.stop_reason is None:
            self.log.info("stop requested: %s", reason)
            self.stop_reason = reason

    def reset(self) -> None:
        """New plug-in: forget the last session's stop request and data."""
        self.stop_reason = None
        self.hlc_charging = False
        self.protocol_state = ""
        self.session_active = False
        self.reset_ev_data_context()
        self.evse_data_context = self._data_context()

    async def end_power(self, why: str) -> None:
        """Power modules off (ramped down), then contactors open. Never raises."""
        try:
            await self.dc_off()
        except Exception as exc:  # noqa: BLE001 - contactors must open whatever the supply says
            self.log.error("power supply did not turn off (%s): opening contactors anyway", exc)
        if self.evse.hlc_power_request:
            self.log.info("opening contactors: %s", why)
        self.evse.set_hlc_power_request(False)

    def ready_to_charge(self) -> bool:
        return self.stop_reason is None and self.evse.authorized

    # ------------------------------------------------------------------ identity, services
    async def get_evse_id(self, protocol: Protocol) -> str:
        configured = self.cfg.evse_id
        if protocol == Protocol.DIN_SPEC_70121:
            if configured and all(c in "0123456789abcdefABCDEF" for c in configured) and len(configured) % 2 == 0:
                return configured
            return f"{self.evse.id:02X}"
        return configured or "ZZ00000"

    async def get_supported_energy_transfer_modes(self, protocol: Protocol) -> List[EnergyTransferModeEnum]:
        if self.evse.config.kind == "dc" or protocol == Protocol.DIN_SPEC_70121:
            return [EnergyTransferModeEnum.DC_EXTENDED]
        if self.evse.config.phases == 1:
            return [EnergyTransferModeEnum.AC_SINGLE_PHASE_CORE]
        return [EnergyTransferModeEnum.AC_THREE_PHASE_CORE]

    async def get_energy_service_list(self) -> Any:
        return schedules.energy_services_v20(self.get_selected_protocol())

    async def get_service_parameter_list(self, service_id: int) -> Any:
        return schedules.service_parameters_v20(service_id, self._nominal_voltage())

    async def service_renegotiation_supported(self) -> bool:
        return False

    async def get_supported_providers(self) -> Optional[List[Any]]:
        return None

    async def get_schedule_exchange_params(self, selected_energy_service: Any, control_mode: ControlMode,
                                           schedule_exchange_req: Any) -> Any:
        return schedules.schedule_exchange_v20(control_mode, self.max_power_w())

    async def get_sa_schedule_list(self, ev_data_context: Any, is_free_charging_service: bool,
                                   max_schedule_entries: Optional[int], departure_time: int = 0) -> Any:
        return schedules.sa_schedules_v2(self.max_power_w(), departure_time)

    async def get_sa_schedule_list_dinspec(self, max_schedule_entries: Optional[int], departure_time: int = 0) -> Any:
        return schedules.sa_schedules_din(self.max_power_w())

    async def send_display_params(self) -> None:
        pass

    async def send_rated_limits(self) -> None:
        pass

    # ------------------------------------------------------------------ authorization
    def is_eim_authorized(self) -> bool:
        return self.evse.authorized

    async def is_authorized(self, id_token: Optional[str] = None,
                            id_token_type: Optional[AuthorizationTokenType] = None,
                            certificate_chain: Optional[bytes] = None,
                            hash_data: Optional[List[Dict[str, str]]] = None) -> AuthorizationResponse:
        protocol = self.get_selected_protocol()
        ok_code: Any = (ResponseCodeDIN.OK if protocol == Protocol.DIN_SPEC_70121
                        else ResponseCodeV20.OK if protocol and protocol.name.startswith("ISO_15118_20")
                        else ResponseCodeV2.OK)
        if certificate_chain is not None or id_token_type == AuthorizationTokenType.EMAID:
            request = ContractRequest(self.evse.id, id_token, certificate_chain, hash_data)
            accepted = await self.contracts.authorize(request)
            status = AuthorizationStatus.ACCEPTED if accepted else AuthorizationStatus.REJECTED
        elif self.stop_reason is not None:
            status = AuthorizationStatus.REJECTED
        else:
            # EIM: the station's own authorization (free mode, RFID, OCPP) decides; the EV asks again.
            status = AuthorizationStatus.ACCEPTED if self.evse.authorized else AuthorizationStatus.ONGOING
        return AuthorizationResponse(authorization_status=status, certificate_response_status=ok_code)

    async def get_15118_ev_certificate(self, base64_encoded_cert_installation_req: str, namespace: str) -> str:
        return await self.contracts.ev_certificate(self.evse.id, base64_encoded_cert_installation_req, namespace)

    # ------------------------------------------------------------------ CP, contactors
    async def get_cp_state(self) -> CpState:
        return CP_STATES.get(self.evse.state, CpState.UNKNOWN)

    def contactor_closed(self) -> bool:
        return bool(self.evse.board.inputs.contactor_closed)

    async def is_contactor_closed(self) -> Optional[bool]:
        """Ask the EVSE for power and wait for the contactor feedback. During CableCheck a pending
        close answers None ("still closing") so the EV keeps polling instead of waiting on us."""
        if self.stop_reason is not None:
            return False
        # PowerDelivery(Start) calls set_hlc_charging(True) first; before that it is the cable check.
        cable_check = not self.hlc_charging
        stage = "CableCheck" if cable_check else "PowerDelivery"
        self.contactor_log.append((stage, "close"))
        self.evse.set_hlc_power_request(True)
        closed = await self._wait_contactor(True, 0.0 if cable_check else self.cfg.contactor_timeout_s)
        self.contactor_log.append((stage, "closed", closed))
        if not closed and cable_check:
            return None
        if not closed:
            self.evse.set_hlc_power_request(False)
        return closed

    async def is_contactor_opened(self) -> bool:
        self.contactor_log.append(("PowerDelivery", "open"))
        await self.end_power(f"{self.protocol_state}: EV stopped")
        opened = await self._wait_contactor(False, self.cfg.contactor_timeout_s)
        self.contactor_log.append(("PowerDelivery", "opened", opened))
        return opened

    async def _wait_contactor(self, closed: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            await asyncio.sleep(CONTACTOR_POLL_S if timeout else 0)
            if self.contactor_closed() == closed:
                return True
            if time.monotonic() >= deadline:
                return False

    async def stop_charger(self) -> None:
        try:
            await self.dc_off()
        except Exception as exc:  # noqa: BLE001
            self.log.error("power supply did not turn off: %s", exc)

    # ------------------------------------------------------------------ metering
    def _energy_wh(self) -> int:
        session = self.evse.session
        return int(session.energy_wh) if session is not None else 0

    def _meter_id(self) -> str:
        return f"{self.station_id}-{self.evse.id}"[:32]

    async def get_meter_info_v2(self) -> MeterInfoV2:
        reading = self.evse.last_reading
        register = int(reading.energy_import_wh) if reading else 0
        return MeterInfoV2(meter_id=self._meter_id(), meter_reading=register, t_meter=int(time.time()))

    async def get_meter_info_v20(self) -> MeterInfoV20:
        return MeterInfoV20(meter_id=self._meter_id(), charged_energy_reading_wh=self._energy_wh(),
                            meter_timestamp=int(time.time()))

    # ------------------------------------------------------------------ AC
    def ac_current_limit_a(self) -> float:
        return float(self.evse.limiter.value)

    def _nominal_voltage(self) -> float:
        return self.dc_limits()[0] if self.evse.config.kind == "dc" else AC_NOMINAL_V

    async def get_evse_status(self) -> Optional[EVSEStatus]:
        if self.stop_reason is not None:
            return EVSEStatus(notification_max_delay=0, evse_notification=EVSENotificationV20.TERMINATE)
        return None

    def _notification_v2(self) -> EVSENotificationV2:
        return EVSENotificationV2.STOP_CHARGING if self.stop_reason is not None else EVSENotificationV2.NONE

    async def get_ac_evse_status(self) -> ACEVSEStatus:
        self.last_request = time.monotonic()
        self._refresh_ac_limits()
        return ACEVSEStatus(notification_max_delay=0, evse_notification=self._notification_v2(), rcd=False)

    async def get_ac_charge_params_v2(self) -> ACEVSEChargeParameter:
        return ACEVSEChargeParameter(
            ac_evse_status=await self.get_ac_evse_status(),
            evse_nominal_voltage=PVEVSENominalVoltage(multiplier=0, value=int(AC_NOMINAL_V), unit=UnitSymbol.VOLTAGE),
            evse_max_current=PVEVSEMaxCurrent(multiplier=0, value=int(self.ac_current_limit_a()), unit=UnitSymbol.AMPERE),
        )

    async def get_ac_charge_params_v20(self, energy_service: ServiceV20) -> Any:
        phase_w = self.ac_current_limit_a() * AC_NOMINAL_V
        r = RationalNumber.get_rational_repr
        params = ACChargeParameterDiscoveryResParams(
            evse_max_charge_power=r(phase_w * self.evse.config.phases), evse_min_charge_power=r(6 * AC_NOMINAL_V),
            evse_nominal_frequency=r(50))
        if energy_service == ServiceV20.AC_BPT:
            return BPTACChargeParameterDiscoveryResParams(**params.dict(), evse_max_discharge_power=r(0),
                                                          evse_min_discharge_power=r(0))
        return params

    def _refresh_ac_limits(self) -> None:
        """The EVSE's present current limit (PP, site, OCPP) as the session limit; the package's -2
        code turns session power / present voltage into EVSEMaxCurrent, so power is per phase here."""
        context = self.evse_data_context
        context.session_limits.ac_limits.max_charge_power = self.ac_current_limit_a() * AC_NOMINAL_V
        reading = self.evse.last_reading
        volts = reading.voltage_v[0] if reading is not None and reading.voltage_v else AC_NOMINAL_V
        context.present_voltage = volts or AC_NOMINAL_V

    # ------------------------------------------------------------------ data context
    def _data_context(self) -> EVSEDataContext:
        v_max, v_min, i_max, i_min, p_max = self.dc_limits()
        phases = self.evse.config.phases
        ac_w = self.ac_current_limit_a() * AC_NOMINAL_V
        rated = EVSERatedLimits(
            ac_limits=EVSEACCPDLimits(max_current=self.ac_current_limit_a(), max_charge_power=ac_w * phases,
                                      min_charge_power=6 * AC_NOMINAL_V, max_discharge_power=0, min_discharge_power=0),
            dc_limits=EVSEDCCPDLimits(max_charge_power=p_max, min_charge_power=0, max_charge_current=i_max,
                                      min_charge_current=i_min, max_voltage=v_max, min_voltage=v_min,
                                      max_discharge_power=0, min_discharge_power=0, max_discharge_current=0,
                                      min_discharge_current=0))
        session = EVSESessionLimits(
            ac_limits=EVSEACCLLimits(max_charge_power=ac_w, max_discharge_power=0),
            dc_limits=EVSEDCCLLimits(max_charge_power=p_max, min_charge_power=0, max_charge_current=i_max,
                                     max_voltage=v_max, min_voltage=v_min, max_discharge_power=0,
                                     min_discharge_power=0, max_discharge_current=0))
        context = EVSEDataContext(rated_limits=rated, session_limits=session)
        context.nominal_voltage = self._nominal_voltage()
        context.nominal_frequency = 50
        context.max_power_asymmetry = 0
        context.power_ramp_limit = 100
        context.current_regulation_tolerance = 5
        context.peak_current_ripple = self.cfg.dc.peak_current_ripple_a
        context.energy_to_be_delivered = 0
        context.present_current = 0
        context.present_voltage = 0
        return context
