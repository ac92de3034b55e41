from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from django.db import DatabaseError

        from config.probes import Probe, probe_register
        from reports.probes import rollups_probe_read

        probe_register(
            Probe(
                name="rollups",
                source="database",
                read=rollups_probe_read,
                errors=(DatabaseError,),
                in_health=False,
            )
        )
