zk = client()
reset_root(zk)
zk.create(ROOT + "/q")
names = [zk.create(ROOT + "/q/n-", b"", sequence=True) for _ in range(3)]
eq(names, [ROOT + f"/q/n-{i:010d}" for i in range(3)], "sequence numbers from 0, 10 digits")
zk.create(ROOT + "/q/plain")
eq(zk.create(ROOT + "/q/n-", sequence=True), ROOT + "/q/n-0000000004",
   "a plain child create also counts")
zk.delete(names[2])
eq(zk.create(ROOT + "/q/n-", sequence=True), ROOT + "/q/n-0000000005",
   "a delete does not count and frees nothing")
ephemeral = zk.create(ROOT + "/q/e-", b"", ephemeral=True, sequence=True)
eq(ephemeral, ROOT + "/q/e-0000000006", "ephemeral sequential")
eq(zk.exists(ephemeral).ephemeralOwner, zk.client_id[0], "ephemeral sequential owner")
stat = zk.exists(ROOT + "/q")
eq((stat.cversion, stat.numChildren), (8, 6), "parent cversion counts creates and deletes")
eq(zk.create(ROOT + "/q/", sequence=True), ROOT + "/q/0000000007", "a name that is only a number")
zk.create(ROOT + "/other")
eq(zk.create(ROOT + "/other/x", sequence=True), ROOT + "/other/x0000000000",
   "each parent counts on its own")
zk.create(ROOT + "/q/n-0000000009")
raises(NodeExistsError, lambda: zk.create(ROOT + "/q/n-", sequence=True),
       "a sequential name that already exists")
raises(NodeExistsError, lambda: zk.create(ROOT + "/q/n-", sequence=True),
       "a failed create does not count, so the clash repeats")
zk.create(ROOT + "/q/z")
eq(zk.create(ROOT + "/q/n-", sequence=True), ROOT + "/q/n-0000000010", "past the clash")
eq(sorted(zk.get_children(ROOT + "/q")),
   sorted(["n-0000000000", "n-0000000001", "plain", "n-0000000004", "n-0000000005",
           "e-0000000006", "0000000007", "n-0000000009", "z", "n-0000000010"]), "children")
finish()
