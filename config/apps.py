from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-wide pieces that belong to no single app: roles (`manage.py setup_roles`),
    the probe of the Celery queues (each app registers its own probes), and API fields that
    take only the JSON type the OpenAPI document names (config/strict_fields.py)."""

    name = "config"
    label = "config"
    verbose_name = "creditflow configuration"

    def ready(self) -> None:
        from redis import RedisError

        from config.strict_fields import strict_json_types

        strict_json_types()

        from config.probes import Probe, probe_register
        from config.queues import queues_probe_read

        probe_register(
            Probe(name="queues", source="redis", read=queues_probe_read, errors=(RedisError,))
        )
