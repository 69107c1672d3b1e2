"""Device-model reports (B07 GetBaseReport, B08 GetReport): which variables, as NotifyReport reportData."""
from __future__ import annotations

from typing import Any, Iterable

from station.ocpp.device_model import DeviceModel, Variable

SUMMARY_VARIABLES = {"AvailabilityState", "Available", "Problem"}


def report_data(variable: Variable) -> dict[str, Any]:
    definition = variable.definition
    attributes = []
    for attribute in variable.attributes:
        entry: dict[str, Any] = {"type": attribute, "mutability": definition.mutability,
                                 "persistent": not variable.live, "constant": definition.mutability == "ReadOnly"
                                 and not variable.live}
        if definition.mutability != "WriteOnly":
            value = variable.read(attribute)
            if value is not None:
                entry["value"] = value[:2500]
        attributes.append(entry)
    # The 2.0.1 NotifyReport schema has no passwordString data type: a password reports as a (write-only) string.
    data_type = "string" if definition.data_type == "passwordString" else definition.data_type
    characteristics: dict[str, Any] = {"data_type": data_type, "supports_monitoring": False}
    for key in ("unit", "min_limit", "max_limit", "values_list"):
        value = getattr(definition, key)
        if value is not None:
            characteristics[key] = value
    variable_ref: dict[str, Any] = {"name": variable.name}
    if variable.instance:
        variable_ref["instance"] = variable.instance
    return {"component": variable.component.to_ocpp(), "variable": variable_ref,
            "variable_attribute": attributes, "variable_characteristics": characteristics}


def base_report(dm: DeviceModel, base: str) -> list[dict[str, Any]]:
    if base == "ConfigurationInventory":
        chosen: Iterable[Variable] = (v for v in dm.variables if v.definition.mutability != "ReadOnly")
    elif base == "SummaryInventory":
        chosen = (v for v in dm.variables if v.name in SUMMARY_VARIABLES)
    else:  # FullInventory
        chosen = dm.variables
    return [report_data(v) for v in chosen]


def criteria_report(dm: DeviceModel, component_variables: list[dict[str, Any]] | None,
                    criteria: list[str] | None) -> list[dict[str, Any]]:
    """Variables matching any of `component_variables` (all if none given) on components meeting any of
    `criteria` (Active / Available / Enabled / Problem, read from the component's variable of that name)."""
    chosen = []
    for variable in dm.variables:
        if component_variables and not any(_matches(variable, cv) for cv in component_variables):
            continue
        if criteria and not any(_meets(dm, variable, c) for c in criteria):
            continue
        chosen.append(report_data(variable))
    return chosen


def _matches(variable: Variable, cv: dict[str, Any]) -> bool:
    comp, ref = cv["component"], variable.component
    if comp["name"] != ref.name or comp.get("instance") not in (None, ref.instance):
        return False
    evse = comp.get("evse")
    if evse is not None and (evse["id"] != ref.evse or evse.get("connector_id") not in (None, ref.connector)):
        return False
    wanted = cv.get("variable")
    if wanted is None:
        return True
    return wanted["name"] == variable.name and wanted.get("instance") in (None, variable.instance)


def _meets(dm: DeviceModel, variable: Variable, criterion: str) -> bool:
    for candidate in dm.of_component(variable.component):
        if candidate.name == criterion:
            return candidate.read() == "true"
    # Components without that variable: Active/Enabled/Available default to true (always on), Problem false.
    return criterion != "Problem"


def split(items: list[dict[str, Any]], per_message: int) -> list[list[dict[str, Any]]]:
    per_message = max(1, per_message)
    return [items[i:i + per_message] for i in range(0, len(items), per_message)] or [[]]
