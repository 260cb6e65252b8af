from collections import namedtuple

from kazoo.exceptions import NoWatcherError
from kazoo.protocol.serialization import Watch, int_struct, write_string
from kazoo.recipe.cache import TreeCache, TreeEvent

zk = client()
other = client()
reset_root(zk)

version = zk.server_version()
eq((len(version) >= 3, version[:2]), (True, (3, 8)), "server_version from envi")

# TreeCache: an initial load, then events for every change below its root.
zk.create(ROOT + "/tree/a", b"1", makepath=True)
events = []
cache = TreeCache(zk, ROOT + "/tree")
cache.listen(lambda event: events.append(event.event_type))
cache.start()
wait_for(lambda: TreeEvent.INITIALIZED in events, "TreeCache initialized")
eq(cache.get_data(ROOT + "/tree/a").data, b"1", "cached data")
other.create(ROOT + "/tree/a/b", b"2")
other.set(ROOT + "/tree/a", b"3")
wait_for(lambda: cache.get_data(ROOT + "/tree/a/b") is not None
         and cache.get_data(ROOT + "/tree/a").data == b"3", "cache follows changes")
other.delete(ROOT + "/tree/a", recursive=True)
wait_for(lambda: cache.get_data(ROOT + "/tree/a") is None, "cache follows deletes")
cache.close()


# removeWatches (op 18) and checkWatches (op 17), which kazoo 2.11 has no API for.
class RemoveWatches(namedtuple("RemoveWatches", "path watcher_type")):
    type = 18

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, buffer, offset):
        return True


class CheckWatches(RemoveWatches):
    type = 17


def call(request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=10)


raw_events = []
read_watch_event = zk._connection._read_watch_event


def recording(buffer, offset):
    watch, _ = Watch.deserialize(buffer, offset)
    raw_events.append((watch.type, watch.path))
    return read_watch_event(buffer, offset)


zk._connection._read_watch_event = recording
zk.create(ROOT + "/w", b"")
raises(NoWatcherError, lambda: call(CheckWatches(ROOT + "/w", 3)), "checkWatches, no watch")
raises(NoWatcherError, lambda: call(RemoveWatches(ROOT + "/w", 1)), "removeWatches, no watch")
zk.get(ROOT + "/w", watch=lambda event: None)
eq(call(CheckWatches(ROOT + "/w", 2)), True, "checkWatches finds a data watch")
raises(NoWatcherError, lambda: call(CheckWatches(ROOT + "/w", 1)), "no child watch there")
eq(call(RemoveWatches(ROOT + "/w", 3)), True, "removeWatches any")
raises(NoWatcherError, lambda: call(CheckWatches(ROOT + "/w", 2)), "the watch is gone")
zk.get_children(ROOT + "/w", watch=lambda event: None)
zk.get(ROOT + "/w", watch=lambda event: None)
raw_events.clear()
eq(call(RemoveWatches(ROOT + "/w", 1)), True, "removeWatches children")
eq(call(CheckWatches(ROOT + "/w", 2)), True, "the data watch stays")
raises(NoWatcherError, lambda: call(CheckWatches(ROOT + "/w", 1)), "the child watch went")
zk.sync(ROOT)
# The Java client makes the *WatchRemoved events itself; the server sends none.
eq(raw_events, [], "no watch-removed event on the wire")
finish()
