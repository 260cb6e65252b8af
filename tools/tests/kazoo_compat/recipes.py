from kazoo.exceptions import LockTimeout

a = client()
b = client()
c = client()
reset_root(a)


def background(function):
    results = []
    thread = threading.Thread(target=lambda: results.append(function()), daemon=True)
    thread.start()
    return thread, results


def blocked(acquire, what):
    """A lock's acquire with a timeout either returns False or raises LockTimeout."""
    try:
        acquired = acquire()
    except LockTimeout:
        acquired = False
    check(not acquired, what)


def joined(thread, what):
    thread.join(30)
    check(not thread.is_alive(), what)


# Lock: two clients contend; the second gets it when the first releases.
lock_a = a.Lock(ROOT + "/lock", "a")
lock_b = b.Lock(ROOT + "/lock", "b")
check(lock_a.acquire(timeout=10), "a acquires the lock")
blocked(lambda: lock_b.acquire(timeout=0.5), "b times out while a holds it")
waiter, got = background(lambda: lock_b.acquire(timeout=30))
wait_for(lambda: lock_a.contenders() == ["a", "b"], "contenders in order")
lock_a.release()
joined(waiter, "b's acquire returned")
eq(got, [True], "b acquires after a releases")
eq(lock_a.contenders(), ["b"], "contenders after the handover")
lock_b.release()
eq(a.get_children(ROOT + "/lock"), [], "the lock's nodes are gone")

# Lock held by a session that closes is released.
lock_c = c.Lock(ROOT + "/lock2", "c")
check(lock_c.acquire(timeout=10), "c acquires")
waiter, got = background(lambda: a.Lock(ROOT + "/lock2", "a").acquire(timeout=30))
time.sleep(0.3)
eq(got, [], "a waits")
c.stop()
joined(waiter, "a's acquire returned")
eq(got, [True], "a session's close releases its lock")
c = client()

# Read/write locks and a semaphore.
read_a = a.ReadLock(ROOT + "/rw", "ra")
read_b = b.ReadLock(ROOT + "/rw", "rb")
check(read_a.acquire(timeout=10) and read_b.acquire(timeout=10), "two readers share")
write_c = c.WriteLock(ROOT + "/rw", "wc")
blocked(lambda: write_c.acquire(timeout=0.5), "a writer waits for readers")
read_a.release()
read_b.release()
check(write_c.acquire(timeout=10), "the writer gets it after the readers")
write_c.release()
semaphore_a = a.Semaphore(ROOT + "/semaphore", "sa", max_leases=2)
semaphore_b = b.Semaphore(ROOT + "/semaphore", "sb", max_leases=2)
semaphore_c = c.Semaphore(ROOT + "/semaphore", "sc", max_leases=2)
check(semaphore_a.acquire(timeout=10) and semaphore_b.acquire(timeout=10), "two leases")
blocked(lambda: semaphore_c.acquire(timeout=0.5), "no third lease")
eq(sorted(semaphore_a.lease_holders()), ["sa", "sb"], "lease holders")
semaphore_a.release()
check(semaphore_c.acquire(timeout=10), "a freed lease is taken")
semaphore_b.release()
semaphore_c.release()

# Election: the first runs as leader; the second takes over when the first is done.
leaders = []
done_a, done_b = threading.Event(), threading.Event()


def lead(name, done):
    leaders.append(name)
    done.wait(30)


election_a = a.Election(ROOT + "/election", "a")
election_b = b.Election(ROOT + "/election", "b")
thread_a, _ = background(lambda: election_a.run(lead, "a", done_a))
wait_for(lambda: leaders == ["a"], "a leads")
thread_b, _ = background(lambda: election_b.run(lead, "b", done_b))
wait_for(lambda: election_a.contenders() == ["a", "b"], "election contenders")
eq(leaders, ["a"], "b waits while a leads")
done_a.set()
joined(thread_a, "a's term ended")
wait_for(lambda: leaders == ["a", "b"], "b leads after a")
done_b.set()
joined(thread_b, "b's term ended")

# Counter: versioned read-modify-write, correct under contention.
counter = a.Counter(ROOT + "/counter")
counter += 5
counter -= 2
eq(counter.value, 3, "counter arithmetic")
others = [client.Counter(ROOT + "/counter") for client in (b, c)]


def add_many(shared):
    for _ in range(25):
        shared += 1


threads = [threading.Thread(target=add_many, args=(shared,)) for shared in others]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
eq(counter.value, 53, "contended increments all count")
floats = a.Counter(ROOT + "/float-counter", default=0.5)
floats += 1.25
eq(floats.value, 1.75, "float counter")

# Barrier: waits until removed.
barrier = a.Barrier(ROOT + "/barrier")
barrier.create()
check(not b.Barrier(ROOT + "/barrier").wait(0.3), "a raised barrier blocks")
waiter, passed = background(lambda: b.Barrier(ROOT + "/barrier").wait(30))
time.sleep(0.2)
barrier.remove()
joined(waiter, "the barrier wait returned")
eq(passed, [True], "a removed barrier lets waiters through")

# DoubleBarrier: nobody enters until two are there; nobody leaves until both leave.
entered = []
double_a = a.DoubleBarrier(ROOT + "/double", 2, identifier="a")
double_b = b.DoubleBarrier(ROOT + "/double", 2, identifier="b")
thread_a, _ = background(lambda: (double_a.enter(), entered.append("a")))
time.sleep(0.3)
eq(entered, [], "one participant cannot enter alone")
thread_b, _ = background(lambda: (double_b.enter(), entered.append("b")))
joined(thread_a, "a entered")
joined(thread_b, "b entered")
eq(sorted(entered), ["a", "b"], "both enter together")
thread_a, _ = background(double_a.leave)
thread_b, _ = background(double_b.leave)
joined(thread_a, "a left")
joined(thread_b, "b left")
eq(a.get_children(ROOT + "/double"), [], "the double barrier is empty")

# Queue and LockingQueue.
queue = a.Queue(ROOT + "/queue")
queue.put(b"first")
queue.put(b"second")
queue.put(b"urgent", priority=1)
eq([queue.get(), queue.get(), queue.get(), queue.get()], [b"urgent", b"first", b"second", None],
   "queue order by priority, then FIFO")
producer = a.LockingQueue(ROOT + "/locking")
consumer_b = b.LockingQueue(ROOT + "/locking")
consumer_c = c.LockingQueue(ROOT + "/locking")
producer.put_all([b"one", b"two"])
eq(len(producer), 2, "two entries")
eq(consumer_b.get(timeout=10), b"one", "b takes the first entry")
check(consumer_b.holds_lock(), "b holds its entry")
eq(consumer_c.get(timeout=10), b"two", "c takes the next, unlocked entry")
check(consumer_b.release(), "b gives its entry back")
eq(consumer_c.get(timeout=10) if consumer_c.consume() else None, b"one",
   "c consumes its entry and takes the released one")
check(consumer_c.consume(), "c consumes")
eq(len(producer), 0, "the locking queue is empty")
waiter, value = background(lambda: consumer_b.get(timeout=30))
time.sleep(0.2)
producer.put(b"late")
joined(waiter, "a blocked get returned")
eq(value, [b"late"], "a blocked get sees a later put")
check(consumer_b.consume(), "b consumes the late entry")

# Party and ShallowParty.
party_a = a.Party(ROOT + "/party", "a")
party_b = b.Party(ROOT + "/party", "b")
party_a.join()
party_b.join()
eq((sorted(party_a), len(party_a)), (["a", "b"], 2), "two party members")
party_b.leave()
eq(list(party_a), ["a"], "after one leaves")
shallow = c.ShallowParty(ROOT + "/shallow", "c")
shallow.join()
eq(list(a.ShallowParty(ROOT + "/shallow")), ["c"], "shallow party member")
c.stop()
wait_for(lambda: list(a.ShallowParty(ROOT + "/shallow")) == [], "a closed session leaves")
finish()
