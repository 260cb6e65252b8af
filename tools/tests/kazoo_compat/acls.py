from kazoo.security import CREATOR_ALL_ACL, make_digest_acl_credential

alice = client(auth_data=[("digest", "alice:secret")])
bob = client()
bob.add_auth("digest", "bob:pw")
anonymous = client()
reset_root(alice)

alice_all = make_digest_acl("alice", "secret", all=True)
alice.create(ROOT + "/private", b"s", acl=[alice_all])
eq(alice.get(ROOT + "/private")[0], b"s", "the owner reads")
raises(NoAuthError, lambda: anonymous.get(ROOT + "/private"), "anonymous read")
raises(NoAuthError, lambda: bob.get(ROOT + "/private"), "another user's read")
raises(NoAuthError, lambda: bob.set(ROOT + "/private", b"x"), "another user's write")
check(bob.exists(ROOT + "/private") is not None, "exists needs no permission")
acls, _ = alice.get_acls(ROOT + "/private")
eq(acls, [alice_all], "get_acls with ADMIN shows the digest")
anonymous.add_auth("digest", "alice:secret")
eq(anonymous.get(ROOT + "/private")[0], b"s", "add_auth grants access on the same session")

alice.create(ROOT + "/mine", b"", acl=CREATOR_ALL_ACL)
acls, _ = alice.get_acls(ROOT + "/mine")
eq([(acl.perms, acl.id.scheme, acl.id.id) for acl in acls],
   [(31, "digest", make_digest_acl_credential("alice", "secret"))],
   "CREATOR_ALL_ACL becomes the creator's digest")
plain = client()
raises(InvalidACLError, lambda: plain.create(ROOT + "/nobody", acl=CREATOR_ALL_ACL),
       "CREATOR_ALL_ACL without credentials")
alice.add_auth("digest", "carol:pw")
alice.create(ROOT + "/shared", b"", acl=CREATOR_ALL_ACL)
acls, _ = alice.get_acls(ROOT + "/shared")
eq(sorted(acl.id.id for acl in acls),
   sorted(make_digest_acl_credential(user, password)
          for user, password in [("alice", "secret"), ("carol", "pw")]),
   "auth expands to every identity of the session")

alice.create(ROOT + "/ro", b"r", acl=READ_ACL_UNSAFE)
eq(bob.get(ROOT + "/ro")[0], b"r", "world read-only: read")
raises(NoAuthError, lambda: bob.set(ROOT + "/ro", b"w"), "world read-only: write")
raises(NoAuthError, lambda: alice.set_acls(ROOT + "/ro", OPEN_ACL_UNSAFE), "world read-only: admin")
bob.delete(ROOT + "/ro")
eq(bob.exists(ROOT + "/ro"), None, "deleting is governed by the parent's ACL")

alice.create(ROOT + "/masked", b"", acl=[make_digest_acl("alice", "secret", read=True),
                                           make_acl("world", "anyone", read=True)])
acls, _ = bob.get_acls(ROOT + "/masked")
eq(sorted((acl.id.scheme, acl.id.id) for acl in acls),
   [("digest", "alice:x"), ("world", "anyone")], "READ without ADMIN masks digests")

alice.create(ROOT + "/ip-ok", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
eq(plain.get(ROOT + "/ip-ok")[0], b"i", "ip ACL of the client's address")
alice.create(ROOT + "/ip-net", b"", acl=[make_acl("ip", "127.0.0.0/8", read=True)])
eq(plain.get(ROOT + "/ip-net")[0], b"", "ip ACL of the client's network")
alice.create(ROOT + "/ip-no", b"", acl=[make_acl("ip", "10.0.0.0/8", all=True),
                                        make_digest_acl("alice", "secret", all=True)])
raises(NoAuthError, lambda: plain.get(ROOT + "/ip-no"), "ip ACL of another network")

stat = alice.set_acls(ROOT + "/private", [alice_all, make_acl("world", "anyone", read=True)])
eq(stat.aversion, 1, "set_acls returns the stat")
eq(bob.get(ROOT + "/private")[0], b"s", "a widened ACL lets others read")
raises(BadVersionError, lambda: alice.set_acls(ROOT + "/private", [alice_all], version=0),
       "set_acls with a stale aversion")
raises(NoAuthError, lambda: bob.set_acls(ROOT + "/private", OPEN_ACL_UNSAFE),
       "set_acls without ADMIN")
finish()
