# reconfig answers (kazoo's TestReconfig probes them): with reconfigEnabled=true an ensemble
# checks the request in ZooKeeper's order (the version, then the server strings, then the
# voting members left, then WRITE on /zookeeper/config, which only super has), a standalone
# server answers Unimplemented. RECONFIG_MODE is "ensemble" or "standalone". The config
# node holds an ensemble's membership (empty on a standalone server).
import re

from kazoo.exceptions import MarshallingError, UnimplementedError

zk = client()
config, stat = zk.get("/zookeeper/config")
eq((stat.czxid, stat.ctime, stat.version, stat.aversion), (0, 0, -1 if config else 0, -1),
   "config node czxid, ctime, version, aversion")
if RECONFIG_MODE == "standalone":
    eq((config, stat.mzxid, stat.mtime), (b"", 0, 0), "standalone config node")
else:
    lines = config.decode().split("\n")
    eq(len(lines), 4, "config lines")
    for line in lines[:3]:
        check(re.fullmatch(r"server\.[123]=127\.0\.0\.1:\d+:\d+:participant", line), line)
    eq(lines[3], "version=100000000", "config version")
    eq(stat.mzxid, 0x100000000, "config mzxid")
    check(stat.mtime > 0, "config mtime set")
OBSERVER = "server.999=0.0.0.0:1234:2345:observer;3456"


def reconfig(joining=None, leaving=None, new_members=None, from_config=-1):
    return lambda: zk.reconfig(joining, leaving, new_members, from_config)


if RECONFIG_MODE == "standalone":
    raises(UnimplementedError, reconfig(joining=OBSERVER), "standalone reconfig")
    raises(UnimplementedError, reconfig(joining="some thing"), "standalone bad input")
else:
    raises(BadArgumentsError, reconfig(joining="some thing"), "joiner without =")
    raises(NoAuthError, reconfig(joining=OBSERVER), "observer joins without super")
    raises(BadVersionError, reconfig(joining=OBSERVER, from_config=12345), "stale config id")
    raises(MarshallingError, reconfig(leaving="x"), "leaving id no number")
    raises(BadArgumentsError, reconfig(leaving="1,2,3"), "no voter left")
    raises(BadArgumentsError, reconfig(joining="server.9=127.0.0.1:1234:2345:observer"),
           "joiner without client port")
    raises(MarshallingError, reconfig(joining="server.x=127.0.0.1:1234:2345;3456"),
           "joiner id no number")
    raises(NoAuthError, reconfig(joining="server.4=127.0.0.1:1234:2345;3456"),
           "participant joins without super")
    raises(BadArgumentsError, reconfig(new_members="garbage"), "new members no server")
    # A refused reconfig is a failed write: it takes a zxid, as ZooKeeper's error txns do.
    before = zk.create(ROOT + "/before", makepath=True)
    before_zxid = zk.exists(ROOT + "/before").czxid
    raises(NoAuthError, reconfig(joining=OBSERVER), "observer joins again")
    zk.create(ROOT + "/after")
    eq(zk.exists(ROOT + "/after").czxid - before_zxid, 2, "zxids between the two creates")
print("done")
