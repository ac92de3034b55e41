from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-wide pieces that belong to no single app: roles (`manage.py setup_roles`)."""

    name = "config"
    label = "config"
    verbose_name = "creditflow configuration"
