"""Services enqueue tasks by name (`config/enqueue.py`): every name they use is a real task.

A misspelt name would be sent to the broker and never run; no worker would complain.
"""

import ast
import importlib
from pathlib import Path

from config.celery_app import app

PRODUCT = ("config", "tracking", "attribution", "reports", "webhooks", "demo")
HELPERS = {"task_enqueue_on_commit", "tasks_enqueue_on_commit"}
ROOT = Path(__file__).resolve().parent.parent


def enqueued_task_names() -> dict[str, str]:
    """{task name: where it is enqueued} for every call of the helpers in the product."""
    found: dict[str, str] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                if node.func.id not in HELPERS:
                    continue
                [name] = [keyword.value for keyword in node.keywords if keyword.arg == "name"]
                if isinstance(name, ast.Constant):
                    found[str(name.value)] = f"{module}:{node.lineno}"
                elif isinstance(name, ast.Name) and module != "config.enqueue":
                    value = getattr(importlib.import_module(module), name.id)
                    found[value] = f"{module}:{node.lineno}"
    return found


def test_every_task_a_service_enqueues_is_registered_with_celery():
    # given: the task modules a worker imports
    app.loader.import_default_modules()
    # when
    enqueued = enqueued_task_names()
    # then
    assert "attribution.process_postback" in enqueued
    unknown = {name: where for name, where in enqueued.items() if name not in app.tasks}
    assert not unknown, f"enqueued but no such task: {unknown}"
