# Shared by every kazoo_compat script: the connect string comes from ZK_HOSTS and the
# script's root path from ROOT (set by the test just before this prelude runs).
import os
import socket
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadArgumentsError, BadVersionError, InvalidACLError, NoAuthError,
    NoChildrenForEphemeralsError, NodeExistsError, NoNodeError, NotEmptyError,
    RolledBackError, RuntimeInconsistency, SessionExpiredError,
)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.security import (
    ACL, Id, OPEN_ACL_UNSAFE, Permissions, READ_ACL_UNSAFE, make_acl, make_digest_acl,
)

HOSTS = os.environ["ZK_HOSTS"]
CLIENTS = []


def client(**options):
    zk = KazooClient(hosts=HOSTS, **options)
    zk.start(timeout=15)
    CLIENTS.append(zk)
    return zk


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")
    print(f"ok {what} = {actual!r}")


def check(condition, what):
    if not condition:
        raise AssertionError(f"{what}: false")
    print(f"ok {what}")


def raises(error, function, what):
    try:
        result = function()
    except error:
        print(f"ok {what} raises {error.__name__}")
        return
    except Exception as other:
        raise AssertionError(
            f"{what}: expected {error.__name__}, got {type(other).__name__}: {other!r}")
    raise AssertionError(f"{what}: expected {error.__name__}, got {result!r}")


def wait_for(condition, what, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)
    print(f"ok {what}")


def finish():
    for zk in CLIENTS:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    print("done")


def reset_root(zk):
    """Starts the script from an empty ROOT, so a rerun against the same server works."""
    if zk.exists(ROOT):
        zk.delete(ROOT, recursive=True)
    zk.create(ROOT)
