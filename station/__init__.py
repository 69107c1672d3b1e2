"""The station: EVSE state machines, sessions, configuration, protocols and the command line."""

__version__ = "0.1.0"
