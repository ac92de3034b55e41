from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Attribution"

    def ready(self) -> None:
        from django.db import DatabaseError

        from attribution.probes import postbacks_probe_read
        from config.probes import Probe, probe_register

        probe_register(
            Probe(
                name="postbacks",
                source="database",
                read=postbacks_probe_read,
                errors=(DatabaseError,),
            )
        )
