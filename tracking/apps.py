from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from config.probes import Probe, probe_register
        from config.roles import roles_operator_only_register
        from tracking.masking import personal_data_permission_ensure
        from tracking.probes import click_spool_probe_read

        probe_register(
            Probe(
                name="click_spool",
                source="click_spool",
                read=click_spool_probe_read,
                errors=(OSError,),
            )
        )
        roles_operator_only_register(label=self.label, permissions=personal_data_permission_ensure)
