from collections import namedtuple

from kazoo.protocol.serialization import Watch, int_struct, write_string
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

zk = client()
other = client()
reset_root(zk)


class Recorder:
    """A one-shot watch callback that keeps the events it gets."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append((event.type, event.path))

    def wait(self, count, what):
        wait_for(lambda: len(self.events) >= count, what)
        return self.events


def settle():
    # A round trip on each client: any event caused by earlier writes has been delivered.
    zk.sync(ROOT)
    other.sync(ROOT)
    time.sleep(0.2)


# One-shot data watch: fires once, for a change made by another session.
zk.create(ROOT + "/d", b"0")
data_watch = Recorder()
zk.get(ROOT + "/d", watch=data_watch)
other.set(ROOT + "/d", b"1")
eq(data_watch.wait(1, "data watch fired"), [(EventType.CHANGED, ROOT + "/d")], "CHANGED event")
other.set(ROOT + "/d", b"2")
settle()
eq(len(data_watch.events), 1, "a one-shot watch fires once")

# Exists watch on a missing node fires on create; on an existing node, on delete.
exists_watch = Recorder()
eq(zk.exists(ROOT + "/e", watch=exists_watch), None, "exists watch on a missing node")
other.create(ROOT + "/e", b"")
eq(exists_watch.wait(1, "exists watch fired"), [(EventType.CREATED, ROOT + "/e")], "CREATED")
deleted_watch = Recorder()
zk.exists(ROOT + "/e", watch=deleted_watch)
other.delete(ROOT + "/e")
eq(deleted_watch.wait(1, "delete watch fired"), [(EventType.DELETED, ROOT + "/e")], "DELETED")

# Child watch: fires on a child create, and on the parent's own delete.
zk.create(ROOT + "/p", b"")
child_watch = Recorder()
eq(zk.get_children(ROOT + "/p", watch=child_watch), [], "child watch set")
other.create(ROOT + "/p/k", b"")
eq(child_watch.wait(1, "child watch fired"), [(EventType.CHILD, ROOT + "/p")], "CHILD event")
data_only = Recorder()
zk.get(ROOT + "/p", watch=data_only)
other.set(ROOT + "/p/k", b"changed")
settle()
eq(data_only.events, [], "a child's data change fires no parent watch")
parent_gone = Recorder()
zk.get_children(ROOT + "/p", watch=parent_gone)
other.delete(ROOT + "/p", recursive=True)
eq(parent_gone.wait(1, "child watch fired on a recursive delete"),
   [(EventType.CHILD, ROOT + "/p")], "deleting the child fires CHILD, once")
eq(data_only.wait(1, "data watch fired on the parent delete"),
   [(EventType.DELETED, ROOT + "/p")], "deleting the parent fires DELETED")

# Data and children watch recipes.
zk.create(ROOT + "/dw", b"a")
seen = []
DataWatch(zk, ROOT + "/dw", lambda data, stat: seen.append(
    (data, stat.version if stat else None)))
wait_for(lambda: seen == [(b"a", 0)], "DataWatch initial call")
other.set(ROOT + "/dw", b"b")
wait_for(lambda: seen[-1] == (b"b", 1), "DataWatch sees the change")
other.delete(ROOT + "/dw")
wait_for(lambda: seen[-1] == (None, None), "DataWatch sees the delete")
other.create(ROOT + "/dw", b"again")
wait_for(lambda: seen[-1] == (b"again", 0), "DataWatch sees the re-create")

zk.create(ROOT + "/cw", b"")
lists = []
ChildrenWatch(zk, ROOT + "/cw", lambda children: lists.append(sorted(children)))
wait_for(lambda: lists == [[]], "ChildrenWatch initial call")
other.create(ROOT + "/cw/x", b"")
wait_for(lambda: lists[-1] == ["x"], "ChildrenWatch sees a create")
other.create(ROOT + "/cw/y", b"")
wait_for(lambda: lists[-1] == ["x", "y"], "ChildrenWatch sees a second create")
other.delete(ROOT + "/cw/x")
wait_for(lambda: lists[-1] == ["y"], "ChildrenWatch sees a delete")

# A dropped connection: the session resumes (same id, its ephemeral kept). kazoo 2.11 sends
# no SetWatches; it tells each pending watch with a NONE event and forgets it.
zk.create(ROOT + "/r", b"")
zk.create(ROOT + "/r/mine", b"", ephemeral=True)
session = zk.client_id
dropped = Recorder()
zk.get(ROOT + "/r", watch=dropped)
states = []
zk.add_listener(states.append)
zk._connection._socket.shutdown(socket.SHUT_RDWR)
wait_for(lambda: KazooState.SUSPENDED in states and zk.state == KazooState.CONNECTED,
         "reconnected after a dropped connection")
eq(zk.client_id, session, "the same session resumed")
check(other.exists(ROOT + "/r/mine") is not None, "its ephemeral survived")
eq(dropped.wait(1, "pending watch told"), [(EventType.NONE, None)], "NONE event")
again = Recorder()
zk.get(ROOT + "/r", watch=again)
other.set(ROOT + "/r", b"after")
eq(again.wait(1, "new watch fired"), [(EventType.CHANGED, ROOT + "/r")], "watch after resume")


# Persistent and persistent-recursive watches (addWatch, op 106). kazoo 2.11 has no API for
# them, so the request is built here and every raw event the connection reads is recorded.
class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, buffer, offset):
        return True


raw_events = []
read_watch_event = zk._connection._read_watch_event


def recording(buffer, offset):
    watch, _ = Watch.deserialize(buffer, offset)
    raw_events.append((watch.type, watch.path))
    return read_watch_event(buffer, offset)


zk._connection._read_watch_event = recording


def add_watch(path, mode):
    result = zk.handler.async_result()
    zk._call(AddWatch(path, mode), result)
    return result.get(timeout=10)


zk.create(ROOT + "/pw", b"")
add_watch(ROOT + "/pw", 0)
other.set(ROOT + "/pw", b"1")
other.set(ROOT + "/pw", b"2")
other.create(ROOT + "/pw/c", b"")
other.set(ROOT + "/pw/c", b"not seen")
other.delete(ROOT + "/pw/c")
other.delete(ROOT + "/pw")
wait_for(lambda: len(raw_events) >= 5, "persistent watch events")
settle()
eq(raw_events, [(3, ROOT + "/pw"), (3, ROOT + "/pw"), (4, ROOT + "/pw"), (4, ROOT + "/pw"),
                (2, ROOT + "/pw")], "persistent watch: changed, changed, child, child, deleted")
raw_events.clear()
other.create(ROOT + "/pw", b"")
wait_for(lambda: len(raw_events) >= 1, "a persistent watch outlives its node's delete")
eq(raw_events, [(1, ROOT + "/pw")], "persistent watch: created again")

raw_events.clear()
zk.create(ROOT + "/rw", b"")
add_watch(ROOT + "/rw", 1)
other.create(ROOT + "/rw/a", b"")
other.create(ROOT + "/rw/a/b", b"")
other.set(ROOT + "/rw/a/b", b"x")
other.set(ROOT + "/rw", b"y")
other.delete(ROOT + "/rw/a/b")
wait_for(lambda: len(raw_events) >= 5, "recursive watch events")
settle()
eq(raw_events, [(1, ROOT + "/rw/a"), (1, ROOT + "/rw/a/b"), (3, ROOT + "/rw/a/b"),
                (3, ROOT + "/rw"), (2, ROOT + "/rw/a/b")],
   "recursive watch: created, created, changed, changed, deleted; no child events")
finish()
