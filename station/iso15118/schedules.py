"""Charging schedules and service lists the SECC offers: one flat schedule at the EVSE's present
power limit (no tariffs: pricing belongs to the backend, a later issue)."""
from __future__ import annotations

from typing import List, Optional, Union

from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntry as PMaxScheduleEntryDIN
from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntryDetails as PMaxScheduleEntryDetailsDIN
from iso15118.shared.messages.din_spec.datatypes import RelativeTimeInterval as RelativeTimeIntervalDIN
from iso15118.shared.messages.din_spec.datatypes import SAScheduleTupleEntry as SAScheduleTupleEntryDIN
from iso15118.shared.messages.enums import ControlMode, Protocol, UnitSymbol
from iso15118.shared.messages.iso15118_2.datatypes import (
    PMaxSchedule, PMaxScheduleEntry, PVPMax, RelativeTimeInterval, SAScheduleTuple,
)
from iso15118.shared.messages.iso15118_20.common_messages import (
    DynamicScheduleExchangeResParams, Parameter, ParameterSet, PowerSchedule, PowerScheduleEntry,
    PowerScheduleEntryList, PriceLevelSchedule, PriceLevelScheduleEntry, PriceLevelScheduleEntryList,
    ChargingSchedule, ScheduledScheduleExchangeResParams, ScheduleTuple, Service, ServiceList, ServiceParameterList,
)
from iso15118.shared.messages.iso15118_20.common_types import RationalNumber

DAY_S = 86400


def _pmax_v2(watts: float) -> PVPMax:
    value, multiplier = int(watts), 0
    while value > 32767:
        value //= 10
        multiplier += 1
    return PVPMax(multiplier=multiplier, value=value, unit=UnitSymbol.WATT)


def sa_schedules_v2(max_power_w: float, departure_time_s: int = 0) -> List[SAScheduleTuple]:
    duration = departure_time_s or DAY_S
    entry = PMaxScheduleEntry(p_max=_pmax_v2(max_power_w), time_interval=RelativeTimeInterval(start=0, duration=duration))
    return [SAScheduleTuple(sa_schedule_tuple_id=1, p_max_schedule=PMaxSchedule(schedule_entries=[entry]))]


def sa_schedules_din(max_power_w: float) -> List[SAScheduleTupleEntryDIN]:
    # DIN's PMax is a plain int in W with no multiplier; the package's model caps it at 32767.
    details = PMaxScheduleEntryDetailsDIN(p_max=int(min(max_power_w, 32767)),
                                          time_interval=RelativeTimeIntervalDIN(start=0, duration=DAY_S))
    entry = PMaxScheduleEntryDIN(p_max_schedule_id=0, entry_details=[details])
    return [SAScheduleTupleEntryDIN(sa_schedule_tuple_id=1, p_max_schedule=entry, sales_tariff=None)]


def _flat_price_levels() -> PriceLevelSchedule:
    entries = PriceLevelScheduleEntryList(entries=[PriceLevelScheduleEntry(duration=DAY_S, price_level=0)])
    return PriceLevelSchedule(id="id1", time_anchor=0, schedule_id=1, schedule_description="flat",
                              num_price_levels=1, schedule_entries=entries)


def schedule_exchange_v20(control_mode: ControlMode, max_power_w: float
                          ) -> Union[ScheduledScheduleExchangeResParams, DynamicScheduleExchangeResParams]:
    if control_mode == ControlMode.SCHEDULED:
        entry = PowerScheduleEntry(duration=DAY_S, power=RationalNumber.get_rational_repr(max_power_w))
        schedule = PowerSchedule(time_anchor=0, schedule_entry_list=PowerScheduleEntryList(entries=[entry]))
        return ScheduledScheduleExchangeResParams(
            schedule_tuples=[ScheduleTuple(schedule_tuple_id=1, charging_schedule=ChargingSchedule(
                power_schedule=schedule, price_level_schedule=_flat_price_levels()))])
    return DynamicScheduleExchangeResParams(departure_time=DAY_S // 12, price_level_schedule=_flat_price_levels())


def energy_services_v20(protocol: Optional[Protocol]) -> ServiceList:
    service_id = 2 if protocol == Protocol.ISO_15118_20_DC else 1  # DC / AC
    return ServiceList(services=[Service(service_id=service_id, free_service=False)])


def service_parameters_v20(service_id: int, nominal_voltage_v: float) -> ServiceParameterList:
    """One parameter set per control mode: 1 scheduled, 2 dynamic."""
    sets = []
    for set_id, control_mode in ((1, 1), (2, 2)):
        sets.append(ParameterSet(id=set_id, parameters=[
            Parameter(name="Connector", int_value=2 if service_id in (2, 6) else 1),
            Parameter(name="ControlMode", int_value=control_mode),
            Parameter(name="EVSENominalVoltage", int_value=int(nominal_voltage_v)),
            Parameter(name="MobilityNeedsMode", int_value=1),
            Parameter(name="Pricing", int_value=0),
        ]))
    return ServiceParameterList(parameter_sets=sets)
