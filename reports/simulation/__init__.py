"""The demo: `manage.py simulate` (see `reports/simulation/run.py` for what goes where)."""

from reports.simulation.catalog import simulation_catalog_ensure, simulation_exists
from reports.simulation.run import MAX_CONTACTS, MAX_DAYS, SimulationSummary, simulation_run

__all__ = [
    "MAX_CONTACTS",
    "MAX_DAYS",
    "SimulationSummary",
    "simulation_catalog_ensure",
    "simulation_exists",
    "simulation_run",
]
