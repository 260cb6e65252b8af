# Read-only mode, as kazoo's own TestReadOnlyMode.test_read_only: a read_only client of an
# ensemble whose first member loses both peers gets CONNECTED_RO there, reads what was
# committed, gets NotReadOnlyCallError for writes, keeps its session past its timeout, and
# is CONNECTED (read-write) again once the peers are back. The test stops and restarts the
# peers when this script asks ("STOP OTHERS" / "START OTHERS" on stdout, "ok" on stdin).
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState


def ask(what):
    print(what, flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "ok":
        raise AssertionError(f"{what}: the test answered {answer!r}")


writer = client(timeout=10.0)
reset_root(writer)
writer.create(ROOT + "/kept", b"before")
writer.stop()
writer.close()
for host in HOSTS.split(","):
    # Every member has applied the create before two of them stop.
    member = KazooClient(hosts=host)
    member.start(timeout=15)
    member.sync(ROOT)
    check(member.exists(ROOT + "/kept") is not None, f"{host} has the node")
    member.stop()
    member.close()

ro = KazooClient(hosts=HOSTS, read_only=True, timeout=4.0)
states = []
connected_ro = threading.Event()


def listen(state):
    states.append(state)
    if ro.client_state == KeeperState.CONNECTED_RO:
        connected_ro.set()


ro.add_listener(listen)
ro.start(timeout=15)
CLIENTS.append(ro)
eq(ro.client_state, KeeperState.CONNECTED, "a read_only client of a whole ensemble")
ask("STOP OTHERS")
# As kazoo's test: a fresh session (the old one is global, which no read-only server resumes).
ro.stop()
ro.start(timeout=30)
wait_for(connected_ro.is_set, "CONNECTED_RO", timeout_s=30)
eq(ro.client_state, KeeperState.CONNECTED_RO, "the client's state")
eq(ro.get_children(ROOT), ["kept"], "children read from the read-only server")
eq(ro.get(ROOT + "/kept")[0], b"before", "data read from the read-only server")
raises(NotReadOnlyCallError, lambda: ro.create(ROOT + "/fred"), "a create")
raises(NotReadOnlyCallError, lambda: ro.set(ROOT + "/kept", b"x"), "a setData")
raises(NotReadOnlyCallError, lambda: ro.delete(ROOT + "/kept"), "a delete")
transaction = ro.transaction()
transaction.create(ROOT + "/in-multi")
raises(NotReadOnlyCallError, transaction.commit, "a multi")
# Pings keep the read-only session alive past its timeout.
time.sleep(6)
eq(ro.client_state, KeeperState.CONNECTED_RO, "the state after 1.5 session timeouts")
eq(ro.get(ROOT + "/kept")[0], b"before", "a read after 1.5 session timeouts")
ask("START OTHERS")
wait_for(lambda: ro.client_state == KeeperState.CONNECTED, "read-write again", timeout_s=60)
ro.retry(ro.create, ROOT + "/after", b"rw")
eq(ro.retry(ro.get, ROOT + "/after")[0], b"rw", "a write once the quorum is back")
finish()
