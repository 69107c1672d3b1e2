"""Hardware abstraction layer: the contracts the station talks to, and their drivers.

hal/ never imports station/: drivers know nothing of OCPP, sessions or EVSE logic.
"""
