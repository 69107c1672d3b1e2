"""The station's controller variables (OCPP 2.0.1 part 2, appendix 3): pure data, no behaviour.

Each entry is one variable of one controller component with its characteristics and default. EVSE and
Connector components come from the station config (see device_model.build_device_model).
"""
from __future__ import annotations

from dataclasses import dataclass

MEASURANDS = ("Current.Import,Current.Offered,Energy.Active.Import.Register,Power.Active.Import,"
              "Power.Offered,SoC,Voltage")
TX_POINTS = "ParkingBayOccupancy,EVConnected,Authorized,DataSigned,PowerPathClosed,EnergyTransfer"


@dataclass(frozen=True)
class VarDef:
    component: str
    variable: str
    data_type: str = "integer"  # DataEnumType
    default: str | None = None
    mutability: str = "ReadWrite"  # ReadOnly / WriteOnly / ReadWrite
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    instance: str | None = None  # variable instance, e.g. ItemsPerMessage "GetVariables"
    reboot_required: bool = False  # a CSMS change answers RebootRequired and applies after reboot

    @property
    def key(self) -> str:
        return f"{self.component}.{self.variable}" + (f".{self.instance}" if self.instance else "")


def _v(component: str, variable: str, default: object, data_type: str = "integer", **kw: object) -> VarDef:
    if isinstance(default, bool):
        default = "true" if default else "false"
    return VarDef(component, variable, data_type, None if default is None else str(default), **kw)  # type: ignore[arg-type]


RO = {"mutability": "ReadOnly"}
CONTROLLER_VARIABLES: tuple[VarDef, ...] = (
    # OCPPCommCtrlr
    _v("OCPPCommCtrlr", "ActiveNetworkProfile", 0, **RO),
    _v("OCPPCommCtrlr", "FileTransferProtocols", "HTTPS", "MemberList", values_list="FTP,FTPS,HTTP,HTTPS", **RO),
    _v("OCPPCommCtrlr", "HeartbeatInterval", 300, unit="s", min_limit=1, max_limit=86400),
    _v("OCPPCommCtrlr", "MessageTimeout", 30, unit="s", min_limit=1, max_limit=600, instance="Default"),
    _v("OCPPCommCtrlr", "MessageAttempts", 3, min_limit=0, max_limit=100, instance="TransactionEvent"),
    _v("OCPPCommCtrlr", "MessageAttemptInterval", 60, unit="s", min_limit=0, max_limit=3600,
       instance="TransactionEvent"),
    _v("OCPPCommCtrlr", "NetworkConfigurationPriority", "0", "SequenceList", values_list="0",
       reboot_required=True),
    _v("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", 3, min_limit=1, max_limit=100),
    _v("OCPPCommCtrlr", "OfflineThreshold", 600, unit="s", min_limit=0, max_limit=86400),
    _v("OCPPCommCtrlr", "QueueAllMessages", False, "boolean"),
    _v("OCPPCommCtrlr", "ResetRetries", 2, min_limit=0, max_limit=10),
    _v("OCPPCommCtrlr", "RetryBackOffRepeatTimes", 3, min_limit=0, max_limit=20),
    _v("OCPPCommCtrlr", "RetryBackOffRandomRange", 10, unit="s", min_limit=0, max_limit=3600),
    _v("OCPPCommCtrlr", "RetryBackOffWaitMinimum", 3, unit="s", min_limit=0, max_limit=3600),
    _v("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", True, "boolean", **RO),
    _v("OCPPCommCtrlr", "WebSocketPingInterval", 30, unit="s", min_limit=0, max_limit=3600),
    # TxCtrlr
    _v("TxCtrlr", "EVConnectionTimeOut", 60, unit="s", min_limit=0, max_limit=3600),
    # False keeps the transaction after an unplug until a stop point ends it (e.g. the bay is left).
    _v("TxCtrlr", "StopTxOnEVSideDisconnect", True, "boolean"),
    _v("TxCtrlr", "StopTxOnInvalidId", True, "boolean"),
    _v("TxCtrlr", "MaxEnergyOnInvalidId", 0, unit="Wh", min_limit=0, max_limit=1000000),
    _v("TxCtrlr", "TxStartPoint", "EVConnected,Authorized", "MemberList", values_list=TX_POINTS),
    _v("TxCtrlr", "TxStopPoint", "EVConnected,Authorized", "MemberList", values_list=TX_POINTS),
    # DeviceDataCtrlr
    _v("DeviceDataCtrlr", "ItemsPerMessage", 50, min_limit=1, max_limit=1000, instance="GetReport", **RO),
    _v("DeviceDataCtrlr", "ItemsPerMessage", 50, min_limit=1, max_limit=1000, instance="GetVariables", **RO),
    _v("DeviceDataCtrlr", "ItemsPerMessage", 50, min_limit=1, max_limit=1000, instance="SetVariables", **RO),
    _v("DeviceDataCtrlr", "BytesPerMessage", 65536, min_limit=1024, max_limit=1048576, instance="GetReport", **RO),
    _v("DeviceDataCtrlr", "BytesPerMessage", 65536, min_limit=1024, max_limit=1048576, instance="GetVariables",
       **RO),
    _v("DeviceDataCtrlr", "BytesPerMessage", 65536, min_limit=1024, max_limit=1048576, instance="SetVariables",
       **RO),
    # ClockCtrlr (DateTime is live: see device_model)
    _v("ClockCtrlr", "DateTime", None, "dateTime", **RO),
    _v("ClockCtrlr", "TimeSource", "Heartbeat", "SequenceList",
       values_list="Heartbeat,NTP,GPS,RealTimeClock,MobileNetwork,RadioTimeTransmitter"),
    # SecurityCtrlr
    _v("SecurityCtrlr", "BasicAuthPassword", None, "passwordString", mutability="WriteOnly",
       min_limit=16, max_limit=40),
    _v("SecurityCtrlr", "Identity", None, "string", max_limit=48, **RO),
    _v("SecurityCtrlr", "OrganizationName", "", "string", max_limit=50),
    _v("SecurityCtrlr", "CertificateEntries", 0, **RO),
    _v("SecurityCtrlr", "SecurityProfile", 1, min_limit=1, max_limit=3, **RO),
    # SampledDataCtrlr
    _v("SampledDataCtrlr", "Enabled", True, "boolean"),
    _v("SampledDataCtrlr", "TxStartedMeasurands", "Energy.Active.Import.Register", "MemberList",
       values_list=MEASURANDS),
    _v("SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register,Power.Active.Import",
       "MemberList", values_list=MEASURANDS),
    _v("SampledDataCtrlr", "TxUpdatedInterval", 60, unit="s", min_limit=0, max_limit=86400),
    _v("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register", "MemberList",
       values_list=MEASURANDS),
    _v("SampledDataCtrlr", "TxEndedInterval", 0, unit="s", min_limit=0, max_limit=86400),
    # Signed start / end values from a meter that signs (and so TxStartPoint DataSigned) only when true.
    _v("SampledDataCtrlr", "SignReadings", True, "boolean"),
    # AlignedDataCtrlr
    _v("AlignedDataCtrlr", "Enabled", True, "boolean"),
    _v("AlignedDataCtrlr", "Measurands", "Energy.Active.Import.Register", "MemberList", values_list=MEASURANDS),
    _v("AlignedDataCtrlr", "Interval", 900, unit="s", min_limit=0, max_limit=86400),
    _v("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register", "MemberList",
       values_list=MEASURANDS),
    _v("AlignedDataCtrlr", "TxEndedInterval", 0, unit="s", min_limit=0, max_limit=86400),
    # AuthCtrlr
    _v("AuthCtrlr", "Enabled", True, "boolean"),
    _v("AuthCtrlr", "AuthorizeRemoteStart", True, "boolean"),
    _v("AuthCtrlr", "LocalAuthorizeOffline", True, "boolean"),
    _v("AuthCtrlr", "LocalPreAuthorize", False, "boolean"),
    _v("AuthCtrlr", "OfflineTxForUnknownIdEnabled", False, "boolean"),
    _v("AuthCtrlr", "MasterPassGroupId", "", "string", max_limit=36),
    # AuthCacheCtrlr (MaxEntries: this station's bound on the cache, least recently used evicted first)
    _v("AuthCacheCtrlr", "Enabled", True, "boolean"),
    _v("AuthCacheCtrlr", "LifeTime", 86400, unit="s", min_limit=1, max_limit=31536000),
    _v("AuthCacheCtrlr", "Policy", "LRU", "OptionList", values_list="LRU", **RO),
    _v("AuthCacheCtrlr", "MaxEntries", 1000, min_limit=1, max_limit=100000),
    # LocalAuthListCtrlr
    _v("LocalAuthListCtrlr", "Enabled", True, "boolean"),
    _v("LocalAuthListCtrlr", "ItemsPerMessage", 500, min_limit=1, max_limit=10000, **RO),
    _v("LocalAuthListCtrlr", "BytesPerMessage", 65536, min_limit=1024, max_limit=1048576, **RO),
)

#: Set from the config, not the seeds table (identity, profile, password have their own keys).
NOT_SEEDABLE = {"SecurityCtrlr.Identity", "SecurityCtrlr.SecurityProfile", "SecurityCtrlr.BasicAuthPassword",
                "ClockCtrlr.DateTime"}


def seedable_keys() -> dict[str, VarDef]:
    return {v.key: v for v in CONTROLLER_VARIABLES if v.key not in NOT_SEEDABLE}
