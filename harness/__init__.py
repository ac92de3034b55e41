"""Running the project's processes and servers, for `make`, the tests and the bench alike.

Not imported by the product apps: child processes (`processes.py`), embedded PostgreSQL and
Redis (`services.py`), and `python -m harness.devservices` for `make run` and `make test`.
"""
