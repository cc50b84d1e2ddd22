"""The setup messages between the parent (the runtime command), stage 1 and the init:
one JSON object per SOCK_SEQPACKET message, file descriptors (a pty master) passed along
with SCM_RIGHTS (unix(7)) — runc's libcontainer/sync.go does the same over a socketpair.

A message ``{"error": "…"}`` reports a failure of the child; EOF means the child exited
(or, on a close-on-exec socket, that it called execve). ``"steps"`` carries the child's
narration (``--explain``) back to the parent.
"""

from __future__ import annotations

import _socket
import struct
import sys

from .jsonio import dumps, loads

# The sync sockets use the C module ``_socket`` directly: ``socket.py`` (and the selectors it
# imports) would add a few milliseconds to every start; send_fds/recv_fds are 6 lines each.
_SCM_RIGHTS, _SOL_SOCKET = 1, 1


def socketpair():
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def send(sock, obj: dict, fds: list[int] | None = None) -> None:
    """One JSON message, with fds passed as SCM_RIGHTS (unix(7)) when given."""
    data = dumps(obj).encode()
    if fds:
        sock.sendmsg([data], [(_SOL_SOCKET, _SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
    else:
        sock.send(data)


def recv(sock) -> tuple[dict | None, list[int]]:
    """The next message (None at EOF) and the fds that came with it."""
    data, anc, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * 4))
    fds: list[int] = []
    for level, kind, payload in anc:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            n = len(payload) // 4
            fds += list(struct.unpack(f"{n}i", payload[: 4 * n]))
    return (loads(data.decode()) if data else None), fds


_sent_steps = 0


def forget_steps() -> None:
    """In a freshly forked child: the steps recorded so far are the parent's own."""
    global _sent_steps
    ex = sys.modules.get("ocilearn.core.explain")
    _sent_steps = len(ex._current.get() or ()) if ex is not None else 0


def new_steps() -> list[dict]:
    """Steps recorded in this forked process since the last call, for the runtime to add to
    its own narration (``--explain``): a fork copies the recording, not its future."""
    global _sent_steps
    ex = sys.modules.get("ocilearn.core.explain")
    steps = ex._current.get() if ex is not None else None
    if not steps:
        return []
    new = [{"area": x.area, "action": x.action, "detail": x.detail, "equivalent": x.equivalent} for x in steps[_sent_steps:]]
    _sent_steps = len(steps)
    return new
