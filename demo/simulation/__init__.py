"""The demo: `manage.py simulate` (see `demo/simulation/run.py` for what goes where)."""

from demo.simulation.catalog import simulation_catalog_ensure, simulation_exists
from demo.simulation.run import MAX_CONTACTS, MAX_DAYS, SimulationSummary, simulation_run

__all__ = [
    "MAX_CONTACTS",
    "MAX_DAYS",
    "SimulationSummary",
    "simulation_catalog_ensure",
    "simulation_exists",
    "simulation_run",
]
