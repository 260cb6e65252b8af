zk = client()
reset_root(zk)
zk.create(ROOT + "/t0", b"a")
zk.create(ROOT + "/old", b"")

t = zk.transaction()
t.create(ROOT + "/t1", b"x")
t.create(ROOT + "/t1/s-", b"", sequence=True)
t.set_data(ROOT + "/t0", b"b")
t.check(ROOT + "/t0", 1)
t.delete(ROOT + "/old")
results = t.commit()
eq(results[:2], [ROOT + "/t1", ROOT + "/t1/s-0000000000"], "created paths")
eq(results[2].version, 1, "set_data result is the new stat")
eq(results[3:], [True, True], "check and delete results")
t1 = zk.exists(ROOT + "/t1")
eq(t1.czxid, zk.exists(ROOT + "/t0").mzxid, "every op of a multi has the same zxid")
eq(t1.pzxid, t1.czxid, "created parent's pzxid within the multi")
eq(zk.exists(ROOT + "/old"), None, "delete committed")


def names(results):
    return [type(result).__name__ for result in results]


t = zk.transaction()
t.create(ROOT + "/t2", b"")
t.set_data(ROOT + "/t0", b"c", version=99)
t.delete(ROOT + "/t0")
eq(names(t.commit()), ["RolledBackError", "BadVersionError", "RuntimeInconsistency"],
   "failed multi: rolled back, the error, runtime inconsistency")
eq(zk.exists(ROOT + "/t2"), None, "rolled-back create did not happen")
eq(zk.get(ROOT + "/t0")[0], b"b", "rolled-back set did not happen")

t = zk.transaction()
t.create(ROOT + "/t1", b"")
t.create(ROOT + "/t3", b"")
eq(names(t.commit()), ["NodeExistsError", "RuntimeInconsistency"], "first op fails")

t = zk.transaction()
t.check(ROOT + "/t0", 5)
eq(names(t.commit()), ["BadVersionError"], "failed check")

t = zk.transaction()
t.check(ROOT + "/missing", 0)
t.create(ROOT + "/t4", b"")
eq(names(t.commit()), ["NoNodeError", "RuntimeInconsistency"], "check of a missing node")

t = zk.transaction()
t.create(ROOT + "/t5", b"")
t.create(ROOT + "/t5/child", b"")
t.delete(ROOT + "/t5")
eq(names(t.commit()), ["RolledBackError", "RolledBackError", "NotEmptyError"],
   "ops see the multi's earlier ops")
eq(zk.exists(ROOT + "/t5"), None, "nothing of it stayed")

t = zk.transaction()
t.create(ROOT + "/t6", b"")
t.delete(ROOT + "/t6")
t.create(ROOT + "/t6", b"again")
results = t.commit()
eq(results, [ROOT + "/t6", True, ROOT + "/t6"], "create, delete, create in one multi")
eq(zk.get(ROOT + "/t6")[0], b"again", "the last create won")
eq(zk.transaction().commit(), [], "an empty multi")
with zk.transaction() as t:
    t.create(ROOT + "/t7", b"")
eq(t.committed, True, "a transaction as a context manager commits")
check(zk.exists(ROOT + "/t7") is not None, "its create happened")
finish()
