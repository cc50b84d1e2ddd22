"""A no-op cgroup move started first thing in ``run`` and ``create`` on a cgroup v2 host, so
that the kernel's slow first step of a cgroup migration overlaps the runtime's imports and
config checks (cgroup v1 needs none: see :func:`useful`).
Imports nothing but ``os`` and ``_thread``: it runs before the rest of the runtime is
imported (see :mod:`.launch`), and waiting for it is the last step before the runtime
forks (:meth:`.container.Container._fork_stage1`).
"""

from __future__ import annotations

import os


def useful(base: str = "/sys/fs/cgroup") -> bool:
    """Whether a warm-up helps: only where the container joins its cgroup through
    ``cgroup.procs``, i.e. cgroup v2 (``cgroup.controllers`` at the top of ``base``). On
    cgroup v1 stage 1 writes to ``tasks`` instead (:meth:`.cgroups.Cgroup.join`), a move
    the kernel makes without the semaphore: nothing to hide, and a warm-up would only
    make the fork wait for its grace period."""
    return os.path.exists(os.path.join(base, "cgroup.controllers"))


def warm_migration(proc_cgroup: str = "/proc/self/cgroup", base: str = "/sys/fs/cgroup"):
    """Start moving this process into the cgroup it is already in (a no-op move), in a
    thread, and return a function that waits for it (call it before forking). Why: every
    write to ``cgroup.procs`` takes the kernel's ``cgroup_threadgroup_rwsem``, a per-CPU
    rw semaphore whose writer first waits for an RCU grace period (kernel/rcu/sync.c,
    ``rcu_sync_enter``; the cgroup v2 mount option ``favordynmods`` exists to avoid it),
    unless a writer left it less than about one grace period ago. On a 2-vCPU VM that
    wait is about 10 ms — as long as ``runc run`` of /bin/true takes. Started while the
    runtime reads and checks config.json, the wait overlaps that work, and stage 1's
    move into the container's cgroup right after finds the semaphore warm. runc does the
    same work concurrently: its parent moves ``runc init`` while that process starts.
    Nothing changes if a write fails (no cgroupfs, not allowed): the move is skipped."""
    import _thread  # not threading: its import costs more than the wait it hides

    targets = []  # this process's cgroup.procs file, found here: the thread only writes
    pid = str(os.getpid())
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:  # "ID:controllers:path" (cgroups(7), /proc/PID/cgroup)
        _, ctrls, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if not path.startswith("/"):
            continue
        if ctrls:
            d = os.path.join(base, ctrls.removeprefix("name="))
        else:
            d = base if os.path.exists(os.path.join(base, "cgroup.controllers")) else os.path.join(base, "unified")
        procs = os.path.join(d + path.rstrip("/"), "cgroup.procs")
        try:  # this process must be listed there: a cgroupfs mounted from another cgroup
            with open(procs) as f:  # namespace shows other paths, and a write would move it
                if pid in f.read().split():
                    targets.append(procs)
                    break
        except OSError:
            continue
    pid = pid.encode()
    done = _thread.allocate_lock()
    done.acquire()

    def move() -> None:
        try:
            for t in targets:
                try:  # no O_CREAT: a directory that is not cgroupfs must stay untouched
                    fd = os.open(t, os.O_WRONLY | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    os.write(fd, pid)
                    return  # one move is enough: the semaphore is shared by all hierarchies
                except OSError:
                    continue
                finally:
                    os.close(fd)
        finally:
            done.release()

    def wait() -> None:
        done.acquire()
        done.release()

    global _warming, _hooked
    _warming = wait
    if not _hooked:  # any fork of this process (stage 1, exec's child) waits for the thread first
        os.register_at_fork(before=warm_wait)
        _hooked = True
    _thread.start_new_thread(move, ())
    return wait


#: the waiter of a :func:`warm_migration` not yet waited for by :func:`warm_wait`
_warming = None
_hooked = False


def warm_wait() -> bool:
    """Wait for a :func:`warm_migration` of this process to end (call it before
    forking: no other thread may run then). False if none is pending."""
    global _warming
    if _warming is None:
        return False
    _warming()
    _warming = None
    return True
