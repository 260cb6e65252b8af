zk = client()
reset_root(zk)
zk.create(ROOT + "/x", b"")
zk.create(ROOT + "/x/child", b"")
zk.create(ROOT + "/eph", b"", ephemeral=True)

raises(NoNodeError, lambda: zk.get(ROOT + "/missing"), "get missing")
raises(NoNodeError, lambda: zk.set(ROOT + "/missing", b""), "set missing")
raises(NoNodeError, lambda: zk.delete(ROOT + "/missing"), "delete missing")
raises(NoNodeError, lambda: zk.get_children(ROOT + "/missing"), "children of missing")
raises(NoNodeError, lambda: zk.get_acls(ROOT + "/missing"), "acls of missing")
raises(NoNodeError, lambda: zk.set_acls(ROOT + "/missing", OPEN_ACL_UNSAFE), "set acls missing")
raises(NoNodeError, lambda: zk.create(ROOT + "/missing/child"), "create under missing")
raises(NodeExistsError, lambda: zk.create(ROOT + "/x"), "create existing")
raises(NodeExistsError, lambda: zk.create("/"), "create root")
raises(BadVersionError, lambda: zk.set(ROOT + "/x", b"", version=5), "set wrong version")
raises(BadVersionError, lambda: zk.delete(ROOT + "/x/child", version=3), "delete wrong version")
raises(BadVersionError, lambda: zk.set_acls(ROOT + "/x", OPEN_ACL_UNSAFE, version=9),
       "set_acls wrong version")
raises(NotEmptyError, lambda: zk.delete(ROOT + "/x"), "delete non-empty")
raises(NoChildrenForEphemeralsError, lambda: zk.create(ROOT + "/eph/child"),
       "child of an ephemeral")
raises(NoChildrenForEphemeralsError, lambda: zk.create(ROOT + "/eph/s", sequence=True),
       "sequential child of an ephemeral")
raises(BadArgumentsError, lambda: zk.create(ROOT + "/bad\x01name"), "control char in a name")
raises(BadArgumentsError, lambda: zk.create(ROOT + "/bad\ufffename"), "U+FFFE in a name")
raises(NoNodeError, lambda: zk.create(ROOT + "/missing/bad\x01"),
       "control char under a missing parent")
raises(BadArgumentsError, lambda: zk.exists(ROOT + "/bad\x00name"), "NUL in an exists path")
raises(InvalidACLError, lambda: zk.create(ROOT + "/badid", acl=[ACL(31, Id("digest", "nocolon"))]),
       "digest id without a colon")
raises(InvalidACLError, lambda: zk.create(ROOT + "/badip", acl=[ACL(31, Id("ip", "1.2.3.4/99"))]),
       "ip id with a bad mask")
raises(InvalidACLError, lambda: zk.create(ROOT + "/auth", acl=[ACL(31, Id("auth", ""))]),
       "auth scheme without credentials")
raises(InvalidACLError, lambda: zk.create(ROOT + "/scheme", acl=[ACL(31, Id("nosuch", "x"))]),
       "unknown scheme")
raises(InvalidACLError, lambda: zk.set_acls(ROOT + "/x", []), "set_acls empty")
zk.create(ROOT + "/locked", b"", acl=READ_ACL_UNSAFE)
raises(NoAuthError, lambda: zk.set(ROOT + "/locked", b"w"), "write a read-only node")
raises(NoAuthError, lambda: zk.create(ROOT + "/locked/child"), "create under a read-only node")
raises(NoAuthError, lambda: zk.set_acls(ROOT + "/locked", OPEN_ACL_UNSAFE),
       "set_acls on a read-only node")
zk.create(ROOT + "/hidden", b"", acl=[make_acl("world", "anyone", create=True, delete=True)])
raises(NoAuthError, lambda: zk.get(ROOT + "/hidden"), "read without READ")
raises(NoAuthError, lambda: zk.get_children(ROOT + "/hidden"), "list without READ")
raises(NoAuthError, lambda: zk.get_acls(ROOT + "/hidden"), "get_acls without READ or ADMIN")
check(zk.exists(ROOT + "/hidden") is not None, "exists is not ACL-checked")
raises(BadVersionError, lambda: zk.delete(ROOT + "/hidden", version=4), "version before ACL")
eq(zk.get(ROOT + "/x")[1].version, 0, "failed writes changed nothing")
finish()
