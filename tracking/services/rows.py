"""Model instances for rows this app inserts with its own SQL, the cursor it sends
large arrays through, and the garbage collector held off while it builds them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, models
from django.db.models.base import ModelState

_Model = TypeVar("_Model", bound=models.Model)

# Inserts of this many rows or more try a plain INSERT in a savepoint before one that skips
# conflicts (which costs about 5 us more a row); below it, the savepoint's two extra
# round trips cost more than they save.
PLAIN_INSERT_MIN_ROWS = 100


def row_instance(model: type[_Model], values: dict[str, Any], **related: models.Model) -> _Model:
    """An instance of a row this app wrote itself, built the way Django unpickles one
    (`__new__`, then its attributes): `Model.__init__` walks every field per instance and
    cost more than the insert for ten thousand rows. `values` names every concrete
    field's attname, so nothing is deferred; `related` fills the relation cache."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    state.fields_cache = related
    instance._state = state
    return instance


@contextmanager
def array_cursor() -> Iterator[psycopg.Cursor[Any]]:
    """A psycopg cursor on Django's connection (the same transaction) that binds its
    parameters on the server, so an array given as `%b` travels in binary: adapting ten
    thousand ids or phones that way costs about a quarter of the text literal Django's
    client-side binding writes. Errors are Django's, as from `connection.cursor()`."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for one bulk call, and resumed after.

    Ten thousand messages allocate a few hundred thousand objects that live until the call
    returns (specs, rows, results); meanwhile the collector made two or three full passes
    over the whole process (about 220k objects, 70-130 ms each): a third of the call's
    CPU, finding nothing, since none of those objects forms a cycle. The caller that
    paused it resumes it, so a nested call, or a process that runs without it, keeps it
    as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
