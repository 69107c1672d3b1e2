"""OCPP 2.0.1 client (charging-station side). Entry point: station.ocpp.service.OcppService."""
