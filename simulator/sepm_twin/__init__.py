"""sepm_twin: a faithful SEPM simulator (sites, replication, real TLS ports, a client fleet)."""

from sepm_twin.scenario import Scenario, load_scenario
from sepm_twin.twin import Twin

__all__ = ["Scenario", "Twin", "load_scenario"]
