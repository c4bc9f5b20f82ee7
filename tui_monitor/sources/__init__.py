"""Sources: bytes in (files, directories, sockets), records out, into the store.

Each source runs off the UI thread; :class:`Ingest` puts what they read into
one :class:`~tui_monitor.store.Store`.
"""
from .follow import Follower, filesystem_type, needs_polling
from .ingest import Ingest, as_dict, open_ingest
from .listen import Listener
from .tail import FileTail

__all__ = ["FileTail", "Follower", "Ingest", "Listener", "as_dict", "filesystem_type", "needs_polling", "open_ingest"]
