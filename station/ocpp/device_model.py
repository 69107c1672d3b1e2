"""The OCPP 2.0.1 device model: components, variables, attributes, characteristics, and the rules for
reading and writing them (B06 GetVariables, B05 SetVariables). Reports live in dm_report.

Value precedence at start: a value the CSMS set (persisted) > the config seed > the catalog default.
If a config seed changed since the CSMS value was set, the field engineer's new seed wins.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from station.ocpp.dm_catalog import VarDef
from station.ocpp.dm_store import DeviceModelStore

log = logging.getLogger("station.ocpp.dm")
ATTRIBUTES = ("Actual", "Target", "MinSet", "MaxSet")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class ComponentRef:
    name: str
    instance: str | None = None
    evse: int | None = None
    connector: int | None = None

    def to_ocpp(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.instance:
            data["instance"] = self.instance
        if self.evse is not None:
            data["evse"] = {"id": self.evse, **({"connector_id": self.connector} if self.connector else {})}
        return data


@dataclass
class Variable:
    component: ComponentRef
    definition: VarDef
    #: attribute type -> stored value; live attributes come from `live` instead.
    values: dict[str, str | None] = field(default_factory=dict)
    live: dict[str, Callable[[], str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.definition.variable

    @property
    def instance(self) -> str | None:
        return self.definition.instance

    @property
    def attributes(self) -> list[str]:
        return [a for a in ATTRIBUTES if a in self.values or a in self.live]

    def read(self, attribute: str = "Actual") -> str | None:
        if attribute in self.live:
            return self.live[attribute]()
        return self.values.get(attribute)

    def store_key(self, attribute: str) -> str:
        c = self.component
        return "|".join(str(x) if x is not None else "" for x in
                        (c.name, c.instance, c.evse, c.connector, self.name, self.instance, attribute))


class SetOutcome:
    ACCEPTED, REJECTED, REBOOT = "Accepted", "Rejected", "RebootRequired"


def check_value(definition: VarDef, value: str) -> str | None:
    """Why `value` does not fit the variable's characteristics, or None if it does."""
    kind, low, high = definition.data_type, definition.min_limit, definition.max_limit
    allowed = definition.values_list.split(",") if definition.values_list else None
    if kind in ("integer", "decimal"):
        try:
            number: float = int(value) if kind == "integer" else float(value)
        except ValueError:
            return f"not an {kind}"
        if (low is not None and number < low) or (high is not None and number > high):
            return f"outside {low}..{high}"
        return None
    if kind == "boolean":
        return None if value in ("true", "false") else "not true/false"
    if kind == "dateTime":
        return None if _DATETIME.match(value) else "not an RFC 3339 date-time"
    if kind in ("string", "passwordString"):
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return "length outside limits"
        return None
    if kind == "OptionList":
        return None if allowed is None or value in allowed else "not in valuesList"
    if kind in ("MemberList", "SequenceList"):
        items = value.split(",") if value else []
        if len(set(items)) != len(items):
            return "repeated member"
        bad = [i for i in items if allowed is not None and i not in allowed]
        return f"not in valuesList: {','.join(bad)}" if bad else None
    return None


def canonical(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class DeviceModel:
    def __init__(self, store: DeviceModelStore) -> None:
        self.store = store
        self.variables: list[Variable] = []
        self._by_component: dict[ComponentRef, list[Variable]] = {}
        self._watchers: dict[str, list[Callable[[str], None]]] = {}

    # ----------------------------------------------------------------- building
    def add(self, component: ComponentRef, definition: VarDef, *, live: dict[str, Callable[[], str]] | None = None,
            extra: dict[str, str] | None = None) -> Variable:
        variable = Variable(component, definition, live=live or {})
        if "Actual" not in variable.live:
            variable.values["Actual"] = definition.default
        variable.values.update(extra or {})
        self.variables.append(variable)
        self._by_component.setdefault(component, []).append(variable)
        return variable

    async def load(self, seeds: dict[str, str]) -> dict[str, str]:
        """Apply config seeds and persisted CSMS values. Returns the other persisted station state."""
        stored, stored_seeds, state = await self.store.load()
        changed_seeds: dict[str, str | None] = {}
        drop: dict[str, str | None] = {}
        for variable in self.variables:
            key = variable.store_key("Actual")
            seed_key = self.seed_key(variable)
            if seed_key in seeds:
                variable.values["Actual"] = seeds[seed_key]
                if stored_seeds.get(key) != seeds[seed_key]:
                    changed_seeds[key] = seeds[seed_key]
                    if key in stored:
                        drop[key] = None  # the engineer changed the seed: it overrides the CSMS value
                        log.info("config seed %s=%s replaces the value the CSMS set", seed_key, seeds[seed_key])
                        continue
            for attribute in list(variable.values):
                value = stored.get(variable.store_key(attribute))
                if value is not None and variable.definition.mutability != "ReadOnly":
                    variable.values[attribute] = value
        if changed_seeds:
            await self.store.save_seeds(changed_seeds)
        if drop:
            await self.store.save_values(drop)
        return state

    @staticmethod
    def seed_key(variable: Variable) -> str:
        return variable.definition.key

    # ----------------------------------------------------------------- internal access
    def find(self, component: str, variable: str, instance: str | None = None, *, evse: int | None = None,
             connector: int | None = None, component_instance: str | None = None) -> Variable | None:
        ref = ComponentRef(component, component_instance, evse, connector)
        candidates = [v for v in self._by_component.get(ref, ()) if v.name == variable]
        exact = [v for v in candidates if v.instance == instance]
        if exact:
            return exact[0]
        if instance is None and len(candidates) == 1:
            return candidates[0]  # a CSMS may leave out the only instance there is
        return None

    def value(self, component: str, variable: str, instance: str | None = None, **where: Any) -> str | None:
        found = self.find(component, variable, instance, **where)
        return found.read() if found else None

    def int_value(self, component: str, variable: str, instance: str | None = None, default: int = 0) -> int:
        raw = self.value(component, variable, instance)
        try:
            return int(raw) if raw is not None else default
        except ValueError:
            return default

    def bool_value(self, component: str, variable: str, default: bool = False) -> bool:
        raw = self.value(component, variable)
        return default if raw is None else raw == "true"

    def watch(self, key: str, callback: Callable[[str], None]) -> None:
        """Call `callback(new_value)` after the CSMS changes the variable "Component.Variable[.Instance]"."""
        self._watchers.setdefault(key, []).append(callback)

    def components(self) -> Iterable[ComponentRef]:
        return self._by_component.keys()

    def of_component(self, ref: ComponentRef) -> list[Variable]:
        return self._by_component.get(ref, [])

    def has_component(self, ref: ComponentRef) -> bool:
        return ref in self._by_component

    # ----------------------------------------------------------------- GetVariables / SetVariables
    def _locate(self, item: dict[str, Any]) -> tuple[str, Variable | None]:
        comp, var = item["component"], item["variable"]
        evse = comp.get("evse") or {}
        ref = ComponentRef(comp["name"], comp.get("instance"), evse.get("id"), evse.get("connector_id"))
        if not self.has_component(ref):
            return "UnknownComponent", None
        found = self.find(ref.name, var["name"], var.get("instance"), evse=ref.evse, connector=ref.connector,
                          component_instance=ref.instance)
        return ("Accepted", found) if found else ("UnknownVariable", None)

    def get_variables(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        for item in items:
            attribute = item.get("attribute_type") or "Actual"
            status, variable = self._locate(item)
            result: dict[str, Any] = {"component": item["component"], "variable": item["variable"]}
            if item.get("attribute_type"):
                result["attribute_type"] = attribute
            if variable is not None:
                if attribute not in variable.attributes:
                    status = "NotSupportedAttributeType"
                elif variable.definition.mutability == "WriteOnly":
                    status = "Rejected"
                    result["attribute_status_info"] = {"reason_code": "WriteOnly"}
                else:
                    value = variable.read(attribute)
                    result["attribute_value"] = "" if value is None else value
            result["attribute_status"] = status
            results.append(result)
        return results

    async def set_variables(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results, changes, notify = [], {}, []
        for item in items:
            attribute = item.get("attribute_type") or "Actual"
            status, variable = self._locate(item)
            result: dict[str, Any] = {"component": item["component"], "variable": item["variable"]}
            if item.get("attribute_type"):
                result["attribute_type"] = attribute
            if variable is not None:
                value = item["attribute_value"]
                problem = check_value(variable.definition, value)
                if attribute not in variable.attributes or attribute in variable.live:
                    status = "NotSupportedAttributeType" if attribute not in variable.attributes else "Rejected"
                elif variable.definition.mutability == "ReadOnly":
                    status = "Rejected"
                    result["attribute_status_info"] = {"reason_code": "ReadOnly"}
                elif problem:
                    status = "Rejected"
                    result["attribute_status_info"] = {"reason_code": "InvalidValue",
                                                       "additional_info": problem[:512]}
                elif variable.definition.reboot_required:
                    status = "RebootRequired"  # persisted now, applied at the next start
                    changes[variable.store_key(attribute)] = value
                else:
                    changes[variable.store_key(attribute)] = value
                    notify.append((variable, attribute, value))
            result["attribute_status"] = status
            results.append(result)
        if changes:
            await self.store.save_values(changes)  # persisted before the CSMS hears Accepted
        for variable, attribute, value in notify:
            old = variable.values.get(attribute)
            variable.values[attribute] = value
            if attribute == "Actual" and old != value:
                for callback in self._watchers.get(variable.definition.key, []):
                    try:
                        callback(value)
                    except Exception:  # noqa: BLE001 - one consumer's bug must not undo the change
                        log.exception("device-model watcher for %s failed", variable.definition.key)
        return results


def now_iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
