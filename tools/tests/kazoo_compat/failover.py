# A client whose server dies moves to another server of the ensemble and keeps its session
# and its ephemeral node. (kazoo itself drops its watchers when a connection is lost: each
# gets one NONE event and the application registers again — the same against ZooKeeper.)
# PIDS (client port -> server process id) is set by the test just before this script.
import signal

zk = client(timeout=10.0)
reset_root(zk)
zk.create(ROOT + "/eph", b"e", ephemeral=True)
zk.create(ROOT + "/watched", b"0")
events = []
zk.get(ROOT + "/watched", watch=events.append)
session = zk.client_id
port = zk._connection._socket.getpeername()[1]
states = []
zk.add_listener(states.append)
os.kill(PIDS[port], signal.SIGKILL)
print(f"killed the server on port {port}")
wait_for(lambda: KazooState.SUSPENDED in states, "the client notices its server died")
wait_for(lambda: zk.state == KazooState.CONNECTED and zk._connection._socket is not None
         and zk._connection._socket.getpeername()[1] != port, "the client moves on")
eq(zk.client_id, session, "the session after the move")
check(zk.retry(zk.exists, ROOT + "/eph") is not None, "the ephemeral node survives the move")
eq([e.type for e in events], [EventType.NONE], "kazoo's disconnect event to the watcher")
moved = []
zk.retry(zk.get, ROOT + "/watched", watch=moved.append)
other = client()
other.retry(other.set, ROOT + "/watched", b"1")
wait_for(lambda: len(moved) == 1, "a watch set after the move fires")
eq(moved[0].type, EventType.CHANGED, "its type")
eq(zk.retry(zk.get, ROOT + "/watched")[0], b"1", "read after the move")
zk.retry(zk.set, ROOT + "/watched", b"2")
other.retry(other.sync, ROOT + "/watched")  # other may sit on another, lagging, server
eq(other.retry(other.get, ROOT + "/watched")[0], b"2", "write through the new server")
zk.stop()
wait_for(lambda: other.retry(other.exists, ROOT + "/eph") is None,
         "the ephemeral goes with the session")
finish()
