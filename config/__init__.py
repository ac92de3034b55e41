import multiprocessing
import signal
import threading

# A web server's worker process loading the app (granian's are forked from its main process;
# importing `config.wsgi` runs this first) holds the main process's SIGTERM and SIGINT
# handlers until the server puts in its own, after the load: a stop asked for meanwhile only
# set a flag in this process's copy of the main process, and the main process waited for the
# worker forever (`make run` stopped with Ctrl-C in its first seconds). Until the server's own
# handlers are in, these signals stop such a process, as they would any other.
if (
    multiprocessing.parent_process() is not None
    and threading.current_thread() is threading.main_thread()
):
    for _stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_stop, signal.SIG_DFL)

from config.celery_app import app as celery_app

__all__ = ("celery_app",)
