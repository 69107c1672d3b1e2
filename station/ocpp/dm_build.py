"""Builds the device model for one station: the Core controllers from the catalog, plus ChargingStation,
EVSE and Connector components from the station config, with live values read from the running EVSEs."""
from __future__ import annotations

from typing import Callable

from station import __version__
from station.config_model import StationConfig
from station.ocpp.config import OcppConfig
from station.ocpp.dm_catalog import CONTROLLER_VARIABLES, VarDef
from station.ocpp.dm_store import DeviceModelStore
from station.ocpp.device_model import ComponentRef, DeviceModel, canonical

VOLTS = 230.0

#: Live views the service provides: availability per (evse, connector) (0 = station), station time.
AvailabilityView = Callable[[int, int], str]


def build_device_model(config: StationConfig, ocpp: OcppConfig, store: DeviceModelStore, *,
                       availability: AvailabilityView, problem: Callable[[int], bool],
                       power_w: Callable[[int], float], clock_iso: Callable[[], str]) -> DeviceModel:
    dm = DeviceModel(store)
    for definition in CONTROLLER_VARIABLES:
        live = {"Actual": clock_iso} if definition.key == "ClockCtrlr.DateTime" else None
        dm.add(ComponentRef(definition.component), definition, live=live)
    fixed = {"SecurityCtrlr.Identity": config.station.id,
             "SecurityCtrlr.SecurityProfile": str(ocpp.security_profile),
             "SecurityCtrlr.OrganizationName": config.station.vendor}
    for key, value in fixed.items():
        component, name = key.split(".")
        variable = dm.find(component, name)
        assert variable is not None
        variable.values["Actual"] = value

    def ro(component: str, name: str, data_type: str = "string", **kw: object) -> VarDef:
        return VarDef(component, name, data_type, mutability="ReadOnly", **kw)  # type: ignore[arg-type]

    def flag(fn: Callable[[], bool]) -> Callable[[], str]:
        return lambda: canonical(fn())

    states = "Available,Occupied,Reserved,Unavailable,Faulted"
    station = ComponentRef("ChargingStation")
    dm.add(station, ro("ChargingStation", "AvailabilityState", "OptionList", values_list=states),
           live={"Actual": lambda: availability(0, 0)})
    dm.add(station, ro("ChargingStation", "Available", "boolean"),
           live={"Actual": flag(lambda: availability(0, 0) != "Unavailable")})
    dm.add(station, ro("ChargingStation", "Problem", "boolean"),
           live={"Actual": flag(lambda: any(problem(e.id) for e in config.evses))})
    dm.add(station, ro("ChargingStation", "Model", default=config.station.model))
    dm.add(station, ro("ChargingStation", "VendorName", default=config.station.vendor))
    dm.add(station, ro("ChargingStation", "FirmwareVersion", default=__version__))
    if config.station.serial_number:
        dm.add(station, ro("ChargingStation", "SerialNumber", default=config.station.serial_number))
    for evse in config.evses:
        ref = ComponentRef("EVSE", evse=evse.id)
        max_power = evse.max_current_a * evse.phases * VOLTS
        dm.add(ref, ro("EVSE", "AvailabilityState", "OptionList", values_list=states),
               live={"Actual": lambda e=evse.id: availability(e, 0)})
        dm.add(ref, ro("EVSE", "Available", "boolean"),
               live={"Actual": flag(lambda e=evse.id: availability(e, 0) != "Unavailable")})
        dm.add(ref, ro("EVSE", "Problem", "boolean"), live={"Actual": flag(lambda e=evse.id: problem(e))})
        dm.add(ref, ro("EVSE", "Power", "decimal", unit="W", max_limit=max_power),
               live={"Actual": lambda e=evse.id: canonical(round(power_w(e), 1))}, extra={"MaxSet": canonical(max_power)})
        dm.add(ref, ro("EVSE", "SupplyPhases", "integer", default=str(evse.phases)))
        for connector in evse.connectors:
            cref = ComponentRef("Connector", evse=evse.id, connector=connector.id)
            dm.add(cref, ro("Connector", "AvailabilityState", "OptionList", values_list=states),
                   live={"Actual": lambda e=evse.id, c=connector.id: availability(e, c)})
            dm.add(cref, ro("Connector", "Available", "boolean"),
                   live={"Actual": flag(lambda e=evse.id, c=connector.id: availability(e, c) != "Unavailable")})
            dm.add(cref, ro("Connector", "ConnectorType", default=connector.type))
            dm.add(cref, ro("Connector", "SupplyPhases", "integer", default=str(evse.phases)))
    return dm


def config_seeds(ocpp: OcppConfig, password: str | None) -> dict[str, str]:
    seeds = {key: canonical(value) for key, value in ocpp.variables.items()}
    if password is not None:
        seeds["SecurityCtrlr.BasicAuthPassword"] = password
    return seeds
