zk = client(timeout=4.0)
other = client()
reset_root(zk)
eq(zk._session_timeout, 4000, "negotiated session timeout (ms)")


def deleted_watch(path):
    events = []
    check(other.exists(path, watch=lambda event: events.append(event.type)) is not None,
          f"watching {path}")
    return events


# An ephemeral belongs to its session and goes when the session closes.
zk.create(ROOT + "/e", b"mine", ephemeral=True)
eq(other.exists(ROOT + "/e").ephemeralOwner, zk.client_id[0], "ephemeralOwner is the session")
eq(zk.exists(ROOT).ephemeralOwner, 0, "a persistent node has no owner")
events = deleted_watch(ROOT + "/e")
zk.stop()
wait_for(lambda: events == [EventType.DELETED], "close fires DELETED on the ephemeral")
eq(other.exists(ROOT + "/e"), None, "close removed the ephemeral")

# A second client resumes the session with its id and password; closing it ends the session
# (kazoo's own test harness expires sessions this way). The first client finds it expired.
first = client(timeout=4.0)
first.create(ROOT + "/e2", b"", ephemeral=True)
states = []
first.add_listener(states.append)
session_id, password = first.client_id
twin = KazooClient(hosts=HOSTS, client_id=(session_id, password), timeout=4.0)
twin.start(timeout=15)
eq(twin.client_id[0], session_id, "resumed with the same session id")
events = deleted_watch(ROOT + "/e2")
twin.stop()
wait_for(lambda: events == [EventType.DELETED], "closing the twin removed the ephemeral")
wait_for(lambda: KazooState.LOST in states, "the first client saw its session lost")
wait_for(lambda: first.connected and first.client_id[0] != session_id,
         "the first client started a new session")
first.create(ROOT + "/after-expiry", b"", ephemeral=True)
check(other.exists(ROOT + "/after-expiry") is not None, "the new session works")

# A wrong password is refused like an expired session (kazoo then starts a new one). Real
# ZooKeeper 3.8 was seen to sometimes end the owner's session too, so only the owner's client
# working afterwards is checked.
owner_id = other.client_id[0]
intruder = KazooClient(hosts=HOSTS, client_id=(owner_id, b"\x01" * 16), timeout=4.0)
intruder.start(timeout=15)
CLIENTS.append(intruder)


def new_session(zk, refused):
    session_id = (zk.client_id or (None,))[0]
    return zk.connected and session_id not in (None, refused)


wait_for(lambda: new_session(intruder, owner_id),
         "the intruder got a session of its own")
check(other.exists(ROOT) is not None, "the owner's client still works")

# A client that dies without closing: the session expires after its timeout.
child = f"""
import os, sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=os.environ["ZK_HOSTS"], timeout=4.0)
zk.start(timeout=15)
zk.create("{ROOT}/dead", b"", ephemeral=True)
print(zk.client_id[0], zk.client_id[1].hex(), flush=True)
os._exit(0)
"""
output = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                        check=True).stdout.split()
dead_id, dead_password = int(output[0]), bytes.fromhex(output[1])
died = time.monotonic()
events = deleted_watch(ROOT + "/dead")
wait_for(lambda: events == [EventType.DELETED], "the dead client's ephemeral expired")
elapsed = time.monotonic() - died
check(3.0 < elapsed < 12.0, f"expired after its 4 s timeout ({elapsed:.1f} s)")
eq(other.exists(ROOT + "/dead"), None, "expiry removed the ephemeral")
late = KazooClient(hosts=HOSTS, client_id=(dead_id, dead_password), timeout=4.0)
late.start(timeout=15)
CLIENTS.append(late)
wait_for(lambda: new_session(late, dead_id), "resuming an expired session is refused")
finish()
