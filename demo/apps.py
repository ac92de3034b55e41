from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data through the real paths (`simulate`, `demo_setup`, `demo_banner`).

    It sits above every app and may import any of them; no app imports it.
    """

    name = "demo"
    verbose_name = "Demo"
