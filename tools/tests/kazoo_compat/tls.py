# TLS on secureClientPort, as kazoo's own TestSSLClient connects (use_ssl, keyfile, certfile,
# ca). HOSTS is the secure port; PLAIN_HOSTS the plain one of the same server and TLS_DIR the
# certificates (set by the test before this script).
from kazoo.handlers.threading import KazooTimeoutError


def tls_options(key="client.key", cert="client.pem"):
    options = dict(use_ssl=True, ca=os.path.join(TLS_DIR, "ca.pem"))
    if key:
        options.update(keyfile=os.path.join(TLS_DIR, key), certfile=os.path.join(TLS_DIR, cert))
    return options


def refused(what, **options):
    """A client the server must not let in: its start times out, and it is stopped."""
    zk = KazooClient(hosts=HOSTS, **options)
    try:
        zk.start(timeout=4)
    except KazooTimeoutError:
        print(f"ok {what}")
        return
    finally:
        zk.stop()
        zk.close()
    raise AssertionError(f"{what}: the server let the client in")


def plain_bytes_closed():
    """A plain ConnectRequest on the TLS port: no ConnectResponse, the connection ends."""
    host, port = HOSTS.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    connect = (0).to_bytes(4, "big") + (0).to_bytes(8, "big") + (30000).to_bytes(4, "big")
    connect += (0).to_bytes(8, "big") + (16).to_bytes(4, "big") + bytes(16)
    sock.sendall(len(connect).to_bytes(4, "big") + connect)
    received = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    # Nothing, or one TLS alert record (content type 21); never a jute ConnectResponse.
    check(received == b"" or received[0] == 21, f"plain bytes on the TLS port: closed ({received[:8]!r})")


zk = client(**tls_options())
reset_root(zk)
eq(zk.create(ROOT + "/a", b"secret"), ROOT + "/a", "create over TLS")
stat = zk.exists(ROOT + "/a")
eq((stat.dataLength, stat.version), (6, 0), "exists over TLS")
data, got = zk.get(ROOT + "/a")
eq((data, got), (b"secret", stat), "get over TLS")
fired = threading.Event()
zk.get(ROOT + "/a", watch=lambda event: fired.set())
zk.set(ROOT + "/a", b"changed")
check(fired.wait(10), "a watch fires over TLS")
big = os.urandom(400_000)
zk.set(ROOT + "/a", big)
check(zk.get(ROOT + "/a")[0] == big, "a 400 kB value round-trips over TLS")
many = [zk.create_async(ROOT + "/n", b"x" * 100, sequence=True) for _ in range(500)]
eq(len({result.get(timeout=20) for result in many}), 500, "500 pipelined creates over TLS")

plain = KazooClient(hosts=PLAIN_HOSTS)
plain.start(timeout=15)
CLIENTS.append(plain)
check(plain.get(ROOT + "/a")[0] == big, "the plain port serves the same tree")
eq(len(plain.get_children(ROOT)), 501, "the plain port sees the TLS client's creates")

refused("a client without a certificate is refused", **tls_options(key=None))
refused("a client whose certificate no trusted CA signed is refused",
        **tls_options(key="rogue-client.key", cert="rogue-client.pem"))
plain_bytes_closed()
eq(zk.get(ROOT + "/a")[0] == big, True, "the TLS session lives on after the refusals")
second = client(**tls_options())
eq(second.exists(ROOT + "/a").version, stat.version + 2, "a new TLS client still connects")
finish()
