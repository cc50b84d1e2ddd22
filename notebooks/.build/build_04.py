"""Generate notebooks/04-runtime.ipynb: run ``.venv/bin/python notebooks/.build/build_04.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, md, parameters, write  # noqa: E402

cells = [
    parameters(
        """
        # Parameters.
        # IMAGE = None unpacks the small busybox image shipped inside ocilearn (offline) with
        # ocilearn.bundle.unpack into a bundle in a temp work dir.
        # IMAGE = "oci:/path/to/layout:ref" unpacks that image layout instead (it is only read).
        # IMAGE = "docker://127.0.0.1:5000/debian:bookworm" pulls an image into the work dir first.
        # BUNDLE = "/path/to/bundle" uses a bundle you made in notebook 03 instead of IMAGE
        # (it is copied, never modified).
        IMAGE = None
        BUNDLE = None
        """
    ),
    md(
        """
        # 04 · The runtime: from a bundle to a running container

        The article ends with

        ```
        runc create --bundle bundle mycontainer
        runc list
        runc exec mycontainer sh
        runc start mycontainer
        ```

        and with a server that dies at start: `java.net.UnknownHostException` — nothing gave the
        container a network or told it its own hostname. This notebook does the same with
        **`ocilearn`**, a runtime written in readable Python (`ocilearn/runtime/`), then takes it
        apart: the namespaces, `/proc/PID/ns`, mounting `/proc`, `pivot_root`, cgroup limits —
        and fixes the server.

        **What you will learn**
        - the lifecycle of runtime-spec `runtime.md`: *creating → created → running → stopped*,
          and why `exec` works before `start`;
        - what a namespace is, seen in `/proc/PID/ns`, and how a PID namespace gets its PID 1
          (and dies with it);
        - why `pivot_root` needs the rootfs to be a mount point, and what the
          container sees compared with the host;
        - cgroup limits doing their job (a fork bomb, a memory hog);
        - the keycloak-style failure reproduced and fixed with a veth pair and `/etc/hosts`.

        It runs as **root** and as an **ordinary user**: then every container gets a *user
        namespace* that maps you to root inside (rootless), and the parts that need root say so.
        """
    ),
    md(
        """
        ## 0 · A bundle and a scratch directory

        A bundle is `config.json` + `rootfs/` (runtime-spec `bundle.md`). We make one from
        `IMAGE` (by default the embedded busybox image; `docker://…` is pulled first, as in
        notebook 01) with `ocilearn.bundle.unpack`, exactly as notebook 03 does. Everything lives in a fresh temp directory; the state directory of the runtime (runc's
        `--root`) too, so nothing here touches `/run/ocilearn`.

        `oc(...)` runs the real `ocilearn` command and prints its output; `sh(...)` does the same for
        any command (the reference `runc`, `ls`, `ip` …).

        As an ordinary user the unpack is rootless, and it warns that the image's user (uid 1000
        in the embedded image) is not mapped in the container's user namespace, so the
        container runs as uid 0 in it (an image with device nodes also gets one warning per
        node it skipped: mknod needs privilege). Both are expected, not failures (notebook 03,
        sections 2 and 4); the cell prints them as notes.
        """
    ),
    code(
        """
        import atexit
        import ctypes
        import json
        import os
        import shlex
        import shutil
        import socket
        import subprocess
        import sys
        import tempfile
        import time
        from pathlib import Path

        import warnings

        import ocilearn
        from ocilearn.image import embedded
        from ocilearn.core import explain
        from ocilearn.image.layout import parse_oci_ref
        from ocilearn.runtime import namespaces
        from ocilearn.core import syscalls as sc
        from ocilearn.bundle.unpack import remove_tree, unpack

        ROOT_USER = os.geteuid() == 0
        WORK = Path(tempfile.mkdtemp(prefix="ocilearn-04-"))
        atexit.register(remove_tree, WORK)  # removed when this kernel stops (see "Clean up" at the end)
        os.chmod(WORK, 0o755)
        STATE = WORK / "state"
        # the `ocilearn` command of this Python (venv), else the one on PATH, else `python -m ocilearn`
        _cli = Path(sys.executable).with_name("ocilearn")
        OCILEARN = [str(_cli)] if _cli.exists() else [shutil.which("ocilearn")] if shutil.which("ocilearn") else [sys.executable, "-m", "ocilearn"]
        # A container's monitor process outlives `ocilearn create`; make this kernel the
        # "subreaper" that adopts it (as containerd-shim or conmon would), so it never lingers
        # as a zombie, whatever PID 1 of this machine does.
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


        def sh(cmd, check=False, quiet=False, **kw):
            \"\"\"Run a command (list or string), print `$ cmd` and its real output; return it.\"\"\"
            args = cmd if isinstance(cmd, list) else shlex.split(cmd)
            # files, not pipes: a created container inherits them and would hold a pipe open
            with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
                p = subprocess.run(args, stdout=o, stderr=e, stdin=subprocess.DEVNULL, **kw)
                o.seek(0)
                e.seek(0)
                p.stdout, p.stderr = o.read().decode(errors="replace"), e.read().decode(errors="replace")
            if not quiet:
                print("$", " ".join(shlex.quote(a) for a in args))
                out = (p.stdout + p.stderr).rstrip()
                if out:
                    print(out)
            if check and p.returncode:
                raise RuntimeError(f"exit status {p.returncode}")
            return p


        def oc(*args, **kw):
            \"\"\"`ocilearn --root STATE ARGS…` (runc's command line).\"\"\"
            p = sh([*OCILEARN, "--root", str(STATE), *args], quiet=True, **kw)
            print("$ ocilearn", " ".join(shlex.quote(a) for a in args))
            out = (p.stdout + p.stderr).rstrip()
            if out:
                print(out)
            return p


        def reap():
            \"\"\"Collect adopted monitors that have exited (we are their subreaper).\"\"\"
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return


        bundle = WORK / "bundle"
        if BUNDLE:
            shutil.copytree(BUNDLE, bundle, symlinks=True)
        else:
            if IMAGE is None:
                embedded.copy_to(WORK / "image")
                SRC = f"{WORK / 'image'}:latest"
            elif IMAGE.startswith("oci:"):
                SRC = "%s:%s" % parse_oci_ref(IMAGE)
            else:  # docker://HOST/NAME:TAG — pulled as in notebook 01, section 9b
                from ocilearn.distribution import copy as transfer

                transfer.copy(IMAGE, f"oci:{WORK / 'image'}:course", quiet=False)
                SRC = f"{WORK / 'image'}:course"
            with warnings.catch_warnings(record=True) as caught:  # rootless: the image user is not mapped; device nodes skipped
                warnings.simplefilter("always")
                unpacked = unpack(SRC, bundle)
            print(f"unpacked {SRC}: {len(unpacked.layers)} layer(s), rootless={unpacked.rootless}")
            for w in caught[:3]:
                print("note:", w.message)
            if len(caught) > 3:
                print(f"note: … and {len(caught) - 3} more")
        config = json.loads((bundle / "config.json").read_text())


        def set_config(**changes):
            \"\"\"Change config.json: keys are dotted paths ("process.args"), None deletes.\"\"\"
            cfg = json.loads((bundle / "config.json").read_text())
            for key, value in changes.items():
                obj = cfg
                *parents, last = key.split(".")
                for k in parents:
                    obj = obj.setdefault(k, {})
                if value is None:
                    obj.pop(last, None)
                else:
                    obj[last] = value
            (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
            return cfg


        print("running as", "root" if ROOT_USER else f"uid {os.geteuid()} (rootless)")
        print("bundle:", bundle, "->", sorted(os.listdir(bundle)))
        print("process:", json.dumps(config["process"]["args"]), "as", config["process"].get("user"))
        print("namespaces:", [n["type"] for n in config["linux"]["namespaces"]])
        """
    ),
    md(
        """
        As an ordinary user the image's `User app` (uid 1000) does not exist inside a user
        namespace that maps only *you* (to root): ocilearn would refuse it with a clear error. The
        rootless course therefore runs the process as root-of-the-namespace. Either way we make the
        program something that lives long enough to look at.
        """
    ),
    code(
        """
        user = config["process"]["user"] if ROOT_USER else {"uid": 0, "gid": 0}
        # an ambient capability must also be inheritable (capabilities(7)); the bundle's
        # config.json (the runtime defaults unpack wrote, like `runc spec`; not the image
        # config, which has no capabilities) leaves inheritable empty, which runc and
        # ocilearn only warn about
        caps = config["process"]["capabilities"]
        _ = set_config(**{"process.capabilities.inheritable": caps.get("ambient", [])})
        _ = set_config(**{"process.user": user, "process.args": ["/bin/sh", "-c", "echo started at $(date +%T); sleep 30"],
                          "process.terminal": False})
        """
    ),
    md(
        """
        ## 1 · The article's sequence: create → list → exec → start

        First, the article's own error. `runc spec` writes `"terminal": true`; a detached create
        then has nobody to hold the terminal (case C30 of the course's hostile inputs). ocilearn
        refuses *before creating
        anything*, and says how to fix it:
        """
    ),
    code(
        """
        _ = set_config(**{"process.terminal": True})
        oc("create", "--bundle", str(bundle), "web")
        print("state directory after the failure:", sorted(os.listdir(STATE)) if STATE.exists() else "absent")
        _ = set_config(**{"process.terminal": False})
        """
    ),
    md(
        """
        Now `create`. It builds the whole environment — namespaces, mounts, `/dev`, `pivot_root`,
        cgroup, hostname — and leaves the container's PID 1 **waiting** just before it runs the
        program: it blocks opening `exec.fifo` for writing until `start` opens it for reading
        (runc's mechanism). `--explain` prints the runtime's own steps.
        """
    ),
    code(
        """
        p = oc("--explain", "create", "--bundle", str(bundle), "web")
        oc("list")
        print(sorted(os.listdir(STATE / "web")))
        """
    ),
    md(
        """
        `exec` before `start`, as in the article: a new process joins the container's
        namespaces (setns(2) on each `/proc/PID/ns/*` of PID 1) and sees the container's
        hostname. PID 1 is **not our program yet**: it is still ocilearn's *init* — the process
        `ocilearn create` forked, so its command line is still that `ocilearn … create …` —
        blocked opening `exec.fifo`. `start` opens the fifo's other end; init then calls
        execve(2) with `process.args` and *becomes* the program, keeping PID 1 (the cell after
        `start` reads `/proc/1/cmdline` again).
        """
    ),
    code(
        """
        oc("exec", "web", "/bin/sh", "-c", "echo I am pid $$ in $(hostname); echo PID 1 runs: $(tr '\\\\0' ' ' < /proc/1/cmdline); "
           "echo pids in /proc: $(ls /proc | grep -E '^[0-9]+$')")
        state = json.loads(oc("state", "web").stdout)
        print("status:", state["status"], "| init pid on the host:", state["pid"])
        """
    ),
    code(
        """
        oc("start", "web")
        time.sleep(0.3)
        print("status:", json.loads(oc("state", "web").stdout)["status"])
        oc("ps", "web")
        oc("exec", "web", "/bin/sh", "-c", "echo PID 1 runs: $(tr '\\\\0' ' ' < /proc/1/cmdline)");  # the same question as before start
        """
    ),
    md(
        """
        `kill` sends a signal to the container's PID 1. Which process is that? Not `sh`: the
        shell runs the last command of its `-c` script with `exec`, in its own process, so PID 1
        is `sleep 30` — `ocilearn ps` and `/proc/1/cmdline` above show it. A PID 1 gets only the
        signals it has installed a **handler** for (pid_namespaces(7)); `sleep` installs none
        (the cell reads its `SigCgt` mask from `/proc/PID/status` on the host), so `SIGTERM` is
        dropped and the container keeps running — the classic "PID 1 ignores SIGTERM" problem
        (case C33 of the course's hostile inputs). `SIGKILL` sent from outside the namespace is
        always delivered. Then `delete` removes the cgroup and the state directory.
        """
    ),
    code(
        """
        import signal

        init_pid = json.loads(sh([*OCILEARN, "--root", str(STATE), "state", "web"], quiet=True).stdout)["pid"]
        init_cmd = Path(f"/proc/{init_pid}/cmdline").read_bytes().rstrip(b"\\0").replace(b"\\0", b" ").decode()
        sig_caught = int(next(line.split()[1] for line in Path(f"/proc/{init_pid}/status").read_text().splitlines() if line.startswith("SigCgt:")), 16)
        print(f"PID 1 of the container: {init_cmd!r} (host pid {init_pid}); "
              f"has a SIGTERM handler: {bool(sig_caught >> (signal.SIGTERM - 1) & 1)}")
        oc("kill", "web", "TERM"); time.sleep(0.5)
        print("after TERM:", json.loads(sh([*OCILEARN, "--root", str(STATE), "state", "web"], quiet=True).stdout)["status"])
        oc("kill", "web", "KILL")
        for _ in range(100):  # SIGKILL is immediate; the monitor records the exit a moment later
            status = json.loads(sh([*OCILEARN, "--root", str(STATE), "state", "web"], quiet=True).stdout)["status"]
            if status == "stopped":
                break
            time.sleep(0.1)
        print("after KILL:", status)
        oc("delete", "web")
        oc("list")
        reap()
        """
    ),
    md(
        """
        With runc on the same bundle (as root, when runc is installed) the commands and the
        answers are the same:
        """
    ),
    code(
        """
        if ROOT_USER and shutil.which("runc"):
            _ = set_config(**{"process.args": ["/bin/sh", "-c", "echo hello from $(hostname) as $(id -un)"]})
            sh(["runc", "--root", str(WORK / "runc"), "run", "--bundle", str(bundle), "web-runc"])
            oc("run", "--bundle", str(bundle), "web-ocilearn")
        else:
            print("runc comparison skipped:", "runc is not installed" if ROOT_USER else "rootless runc needs `runc spec --rootless`")
        """
    ),
    md(
        """
        ## 2 · Step by step with the primitives

        Everything `ocilearn create` did is a handful of syscalls. We replay them one at a time,
        each in a throwaway child process (`in_child`): namespaces must never be changed in this
        notebook's own process. Python 3.11 has no `os.unshare`, so `ocilearn.core.syscalls`
        wraps them with ctypes (open it: `ocilearn.show_source(sc.unshare)`).

        As an ordinary user, each child first creates a **user namespace** and maps itself to
        root (`unshare -U -r`): inside it, it holds the capabilities to make the other namespaces.
        """
    ),
    code(
        """
        def become_root_in_userns():
            \"\"\"unshare(CLONE_NEWUSER) and map our uid/gid to 0 (what `unshare -r` does).\"\"\"
            uid, gid = os.geteuid(), os.getegid()
            sc.unshare(sc.CLONE_NEWUSER)
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


        def in_child(fn):
            \"\"\"Run fn() in a forked child (rootless: inside a new user namespace first);
            return what it returned (a string).\"\"\"
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    if not ROOT_USER:
                        become_root_in_userns()
                    out = fn()
                except BaseException as e:
                    out = f"error: {e!r}"
                os.write(w, str(out).encode())
                os._exit(0)
            os.close(w)
            data = b""
            while chunk := os.read(r, 65536):
                data += chunk
            os.close(r)
            os.waitpid(pid, 0)
            return data.decode()
        """
    ),
    md(
        """
        ### 2.1 · unshare a UTS namespace: a private hostname

        A namespace shows up as a magic link in `/proc/PID/ns/`: same inode number = same
        namespace.
        """
    ),
    code(
        """
        def uts_demo():
            before = os.readlink("/proc/self/ns/uts")
            sc.unshare(sc.CLONE_NEWUTS)
            sc.sethostname("inside")
            return f"uts before {before}, after {os.readlink('/proc/self/ns/uts')}; hostname: {socket.gethostname()}"


        print("host :", os.readlink("/proc/self/ns/uts"), "hostname:", socket.gethostname())
        print("child:", in_child(uts_demo))
        print("host hostname still:", socket.gethostname())
        """
    ),
    md(
        """
        ### 2.2 · a PID namespace, and mounting `/proc`

        After `unshare(CLONE_NEWPID)` the caller stays in its old PID namespace; its **next
        child** becomes PID 1 — the *init* — of the new one (that is why a runtime forks after
        `unshare`: the container's first process must be that child). Later children land in
        the new namespace too, as PID 2, 3, … — but only while its PID 1 lives: when PID 1
        exits, the kernel kills everything else in the namespace, and a further `fork()` by
        the caller fails with `ENOMEM` (pid_namespaces(7)). The demo below shows all three.
        `/proc` shows the PID namespace of whoever mounted it, so PID 1 mounts a fresh one in
        a new mount namespace.
        """
    ),
    code(
        """
        def pid_demo():
            sc.unshare(sc.CLONE_NEWPID | sc.CLONE_NEWNS)
            r, w = os.pipe()
            go_r, go_w = os.pipe()  # PID 1 waits on this pipe until we let it exit
            pid = os.fork()
            if pid == 0:  # the first child: PID 1 of the new namespace
                sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
                pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
                os.write(w, f"my pid: {os.getpid()}; /proc shows pids {pids}".encode())
                os.read(go_r, 1)
                os._exit(0)
            os.close(w)
            out = os.read(r, 4096).decode()
            r2, w2 = os.pipe()
            second = os.fork()  # while PID 1 lives: works, the child gets the next PID
            if second == 0:
                os.write(w2, str(os.getpid()).encode())
                os._exit(0)
            os.close(w2)
            out += f"\\nsecond child, forked while PID 1 lives: pid {os.read(r2, 64).decode()} in the new namespace"
            os.waitpid(second, 0)
            os.write(go_w, b"x")  # let PID 1 exit …
            os.waitpid(pid, 0)
            try:  # … and the namespace is dead: no more children
                late = os.fork()
                if late == 0:
                    os._exit(0)
                os.waitpid(late, 0)
                out += "\\nfork after PID 1 exited: worked?!"
            except OSError as e:
                out += f"\\nfork after PID 1 exited: {e}"
            return out


        print(in_child(pid_demo))
        print("the host sees", len([p for p in os.listdir("/proc") if p.isdigit()]), "processes")
        """
    ),
    md(
        """
        ### 2.3 · pivot_root into the bundle's rootfs

        `pivot_root(2)` swaps the root of the mount namespace. It insists that the new root be a
        **mount point** and that no involved mount be *shared* — a classic stumbling block of
        hand-made runtimes (case C31 of the course's hostile inputs). On a plain directory it
        fails, with an errno that depends on who you are: as root `EBUSY` (the directory still
        sits on the current root mount), as an ordinary user inside a user namespace `EINVAL`
        (not a mount point); a shared mount gives `EINVAL` too. So: make `/` private in the new
        namespace, bind-mount the rootfs onto itself, `pivot_root(".", ".")`, and lazily unmount
        the old root stacked on top. The first line below shows the error on this machine.
        """
    ),
    code(
        """
        rootfs = str(bundle / "rootfs")


        def pivot_demo():
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            try:
                sc.pivot_root(rootfs, rootfs)
            except OSError as e:
                first = f"pivot_root on a plain directory: {e.strerror}"
            sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
            os.chdir(rootfs)
            sc.pivot_root(".", ".")
            sc.umount2(".", sc.MNT_DETACH)
            os.chdir("/")
            return f"{first}\\nafter bind + pivot_root, / contains: {sorted(os.listdir('/'))}"


        print(in_child(pivot_demo))
        print("the host's / contains:", sorted(os.listdir("/"))[:12], "…")
        """
    ),
    md(
        """
        The runtime's own version, one click away: the same two calls, plus the fallback for a
        host whose `/` is the initramfs, where `pivot_root` is impossible (`MS_MOVE` + `chroot`,
        runc's `--no-pivot`).
        """
    ),
    code(
        """
        from ocilearn.runtime import rootfs as runtime_rootfs

        ocilearn.show_source(runtime_rootfs.pivot)
        """
    ),
    md(
        """
        ### 2.4 · the container's view beside the host's

        The same questions asked on the host and inside a container made by `ocilearn run`
        (mounts, PIDs, identity, capabilities).
        """
    ),
    code(
        """
        PROBE = (
            "echo hostname=$(hostname); echo pid=$$; id; grep -E '^CapEff|^NoNewPrivs' /proc/self/status; "
            "echo processes=$(ls /proc | grep -cE '^[0-9]+$'); echo mounts=$(wc -l < /proc/self/mountinfo); "
            "echo root=$(ls / | tr '\\\\n' ' ')"
        )
        host = sh(["sh", "-c", PROBE], quiet=True).stdout.splitlines()
        _ = set_config(**{"process.args": ["/bin/sh", "-c", PROBE]})
        inside = sh([*OCILEARN, "--root", str(STATE), "run", "--bundle", str(bundle), "probe"], quiet=True).stdout.splitlines()
        host = [x[:60] for x in host]
        width = max(len(x) for x in host)
        print(f"{'HOST':<{width}}   CONTAINER")
        for a, b in zip(host, inside):
            print(f"{a:<{width}}   {b[:60]}")
        """
    ),
    md(
        """
        ### Step by step: a process becomes a container — click Next

        The same setup as `ocilearn create`, one real step per click, in a fresh child process
        (never this notebook's kernel): unshare the namespaces (as an ordinary user: a user
        namespace first), make the mounts private, set the hostname, bind the rootfs onto
        itself, mount its `/proc`, `pivot_root`, run the bundle's `process.args`, exit. After
        each step the widget shows what that process sees: its hostname, its PID, `/proc`, its
        mounts and `/`. Watch `/proc` — it keeps listing the host's processes until the
        container's own procfs is mounted and `pivot_root` makes it *the* `/proc`.
        """
    ),
    code(
        """
        from ocilearn.views.widgets import setup_stepper

        # the program the "run" step executes (as a child of the new PID 1)
        _ = set_config(**{"process.args": ["/bin/sh", "-c", "echo hello from $(hostname): pid $$, /proc lists $(ls /proc | grep -cE '^[0-9]+$') processes"]})
        stepper = setup_stepper(bundle)
        atexit.register(stepper.close)  # its child process ends with this kernel at the latest
        stepper
        """
    ),
    code(
        """
        # what one click on Next does, from code: the first step (unshare)
        stepper.next()
        print(stepper.status.value)
        name, result = stepper.done[-1]
        print(name, "→", result)
        """
    ),
    md(
        """
        ### 2.5 · cgroup limits in action

        `linux.resources` becomes files in the container's cgroup (`pids.max`,
        `memory.limit_in_bytes` or `memory.max` …). A fork bomb stops at the pids limit; a memory
        hog is killed by the kernel's OOM killer and ocilearn reports it. Without root, cgroups are
        usually not delegated to you: ocilearn says so and runs without limits.
        """
    ),
    code(
        """
        _ = set_config(**{"linux.resources": {"pids": {"limit": 12}},
                      "process.args": ["/bin/sh", "-c", "(i=0; while [ $i -lt 50 ]; do sleep 2 & i=$((i+1)); done) 2>/dev/null; "
                                       "d=/sys/fs/cgroup/pids; [ -e $d/pids.current ] || d=/sys/fs/cgroup; "  # cgroup v1, else v2
                                       "read n < $d/pids.current 2>/dev/null && echo pids.current=$n; "
                                       "read k v < $d/pids.events 2>/dev/null && echo refused forks: $v"]})
        if ROOT_USER:
            oc("run", "--bundle", str(bundle), "bomb");
        else:  # no cgroup: ocilearn says so, and the loop would only be bounded by your user's limits
            _ = set_config(**{"process.args": ["true"]})
            oc("run", "--bundle", str(bundle), "bomb");
        """
    ),
    code(
        """
        _ = set_config(**{"linux.resources": {"memory": {"limit": 24 << 20}},
                      "process.args": ["/bin/sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\\\0' a); echo survived"]})
        if ROOT_USER:
            p = oc("run", "--bundle", str(bundle), "hog")
            print("exit status:", p.returncode)
        else:
            print("skipped as a non-root user: without a memory cgroup the hog would eat this machine's memory")
        _ = set_config(**{"linux.resources": {}})
        """
    ),
    md(
        """
        ## 3 · The keycloak failure, reproduced and fixed

        The article's server died with `java.net.UnknownHostException`: at start it looks up its
        own hostname, and nothing knows that name — the image's `/etc/hosts` does not list the
        hostname the runtime set, and no DNS server does either. As root the container also
        has a fresh **network namespace** with only `lo` in it (`network` is in the namespaces
        printed in section 0); as an ordinary user the bundle has no network namespace of its
        own (rootless: it shares yours), yet the lookup fails all the same, because the *name*
        is unknown. Our "server" does the same lookup (`hostname -i`) and fails the same way.
        """
    ),
    code(
        """
        SERVER = ("hostname -i >/dev/null 2>&1 || { echo \\"java.net.UnknownHostException: $(hostname): Name or service not known\\"; exit 1; }; "
                  "echo \\"server $(hostname) listening on $(hostname -i):8080\\"")
        _ = set_config(**{"hostname": "keycloak-1", "process.args": ["/bin/sh", "-c", SERVER]})
        p = oc("run", "--bundle", str(bundle), "kc")
        print("exit status:", p.returncode)
        """
    ),
    md(
        """
        **The fix** is network plumbing (`ocilearn.runtime.network`): `--net veth` creates a veth
        pair — one end in the namespace ocilearn runs in, `eth0` in the container — gives both ends
        addresses from a private /30 of `10.213.0.0/16`, a default route, and an `/etc/hosts` that
        names the container's hostname. To keep your machine's network untouched we do it inside a
        scratch network namespace made just for this notebook (`ip netns add`), and delete it
        afterwards. Creating the veth needs root; as an ordinary user the same fix is the
        `/etc/hosts` part alone, bind-mounted through config.json.
        """
    ),
    code(
        """
        import secrets

        if ROOT_USER and shutil.which("ip") and shutil.which("nsenter"):
            NETNS = f"ocinb-{secrets.token_hex(3)}"
            sh(["ip", "netns", "add", NETNS], check=True)
            try:
                p = sh(["nsenter", f"--net=/var/run/netns/{NETNS}", *OCILEARN, "--root", str(STATE), "run", "--net", "veth",
                        "--bundle", str(bundle), "kc"])
                print("exit status:", p.returncode)
                print("links left in the scratch namespace (the veth pair died with the container's namespace):")
                sh(["ip", "-n", NETNS, "-o", "link"])
            finally:
                sh(["ip", "netns", "del", NETNS], quiet=True)
        else:
            hosts = WORK / "hosts"
            hosts.write_text("127.0.0.1\\tlocalhost\\n127.0.1.1\\tkeycloak-1\\n")
            cfg = json.loads((bundle / "config.json").read_text())
            _ = set_config(mounts=cfg["mounts"] + [{"destination": "/etc/hosts", "type": "bind", "source": str(hosts), "options": ["bind", "ro"]}])
            p = oc("run", "--bundle", str(bundle), "kc")
            print("exit status:", p.returncode)
        """
    ),
    md(
        """
        ## 4 · Exercises

        Each exercise has a variable to fill in; the check cell below it tells you whether you
        got it. (Unanswered exercises just print a hint.)

        **Exercise 1.** A process calls `unshare(CLONE_NEWPID)` and then forks. What does
        `os.getpid()` return in that first child? (An int.)
        """
    ),
    code("ANSWER_1 = None  # an int"),
    code(
        """
        def check_1(answer):
            if answer is None:
                return "· not answered yet — hint: section 2.2 prints it ('my pid: …')"
            if isinstance(answer, str) and answer.strip().isdigit():
                return f"almost: write the number without quotes — ANSWER_1 = {answer.strip()}, not {answer!r}"
            if isinstance(answer, bool) or not isinstance(answer, int):
                return f"✘ not yet: the answer is an int (a PID) — you gave {answer!r}"
            if answer == 1:
                return "✔ correct: 1 — the first child in a new PID namespace is its init; the caller itself keeps its old PID"
            return f"✘ not yet: {answer} is a PID as the host counts; inside the new namespace the counting starts again"


        print(check_1(ANSWER_1))
        """
    ),
    md(
        """
        **Exercise 2.** Two processes have the same hostname namespace when one of their
        `/proc/PID/ns/*` links is equal. Which one? (Its file name, e.g. `"net"`.)
        """
    ),
    code("ANSWER_2 = None  # a file name in /proc/self/ns"),
    code(
        """
        def check_2(answer):
            if answer is None:
                return "· not answered yet — hint: hostnames belong to the UNIX Time-sharing System namespace (section 2.1)"
            if not isinstance(answer, str):
                return f'✘ not yet: write the file name as a string, e.g. "net" — you gave {answer!r}'
            name = answer.strip().rstrip("/").rsplit("/", 1)[-1]
            if name in ("", ".", ".."):
                return f'✘ not yet: write the name of one file in /proc/self/ns, e.g. "net" — you gave {answer!r}'
            if not os.path.exists(f"/proc/self/ns/{name}"):
                return f"✘ not yet: there is no /proc/self/ns/{name}; the files are {sorted(os.listdir('/proc/self/ns'))}"
            if name == "uts":
                return f"✔ correct: uts — this kernel's is {os.readlink('/proc/self/ns/uts')}; sethostname(2) changes only its own"
            return f"✘ not yet: /proc/self/ns/{name} is the {name} namespace — it does not hold the hostname"


        print(check_2(ANSWER_2))
        """
    ),
    md(
        """
        **Exercise 3.** Make a container that prints its own hostname, and that hostname must be
        `exercise-3`: change `config.json` with `set_config(...)` (which key sets the
        hostname? which one the program?), run it with `oc("run", "--bundle", str(bundle), "ex3")`
        and put what `oc` returns into `ANSWER_3`.
        """
    ),
    code("ANSWER_3 = None  # what oc('run', …) returned"),
    code(
        """
        def check_3(answer):
            if answer is None:
                return "· not answered yet — hint: set_config(**{'hostname': …, 'process.args': ['hostname']})"
            if not isinstance(answer, subprocess.CompletedProcess):
                return "✘ not yet: put the object that oc('run', …) returns into ANSWER_3, not the text"
            out = answer.stdout.strip()
            if answer.returncode == 0 and out == "exercise-3":
                return "✔ correct: the container printed exercise-3 — the UTS namespace of its own, named by config.json's hostname"
            if answer.returncode != 0:
                said = (answer.stderr.strip() or answer.stdout.strip() or "(no output)")[-200:]
                return f"✘ not yet: the run failed (exit status {answer.returncode}): {said}"
            return f"✘ not yet: it printed {out!r} — set 'hostname' to exercise-3 and make process.args ['hostname']"


        print(check_3(ANSWER_3))
        """
    ),
    md(
        """
        ## 5 · Clean up

        Every container was deleted by `run`/`delete`: the cell below checks that the state
        directory holds none (and force-deletes any left by an interrupted cell, so no process
        outlives the notebook). The work directory — bundle, state directory — **is removed
        when the kernel stops** (*Kernel ▸ Shut Down Kernel*, *Restart Kernel*, or stopping
        JupyterLab): section 0 registered the removal with Python's `atexit`, and the stepper's
        child process is ended then too. *Run All* therefore deletes nothing, and the stepper
        and the exercises above keep working after it. To remove the directory now, run
        `stepper.close(); remove_tree(WORK)` in a cell.
        """
    ),
    code(
        """
        leftover = sorted(os.listdir(STATE)) if STATE.exists() else []
        for name in leftover:
            oc("delete", "--force", name)
        reap()
        print("containers left:", leftover)
        print(f"work directory {WORK}: removed when this kernel stops; to remove it now: stepper.close(); remove_tree(WORK)")
        """
    ),
    md(
        """
        ## Where to look next

        - `ocilearn/runtime/container.py` — the lifecycle and the three processes (runtime,
          monitor, init); `rootfs.py` — mounts, `/dev`, `pivot_root`; `process.py` — user,
          capabilities, `execve`; `cgroups.py` — v1 and v2 limits.
        - Deliberate differences from runc are listed in the docstring of
          `ocilearn/runtime/__init__.py` (`help(ocilearn.runtime)`); start-up time against runc
          and crun is in `BENCHMARKS.md` ("Run").
        - PID 1 and signals: by default the program *is* PID 1, as with runc — it must reap its
          orphans and handle SIGTERM itself. `ocilearn run --init` puts a tiny reaper in front
          (like `docker run --init`).
        """
    ),
]

if __name__ == "__main__":
    print(write("04-runtime.ipynb", cells))
