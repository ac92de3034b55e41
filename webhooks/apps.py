from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from django.db import DatabaseError

        from config.probes import Probe, probe_register
        from webhooks.probes import webhooks_probe_read

        probe_register(
            Probe(
                name="webhooks",
                source="database",
                read=webhooks_probe_read,
                errors=(DatabaseError,),
            )
        )
