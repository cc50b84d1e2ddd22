"""The container's terminal (runtime-spec config.md "Process" terminal; runc
docs/terminals.md): the init opens a pty in the container's own devpts, and its master
goes either to the ``--console-socket`` of the caller (conmon, containerd-shim) with
SCM_RIGHTS, or — ``ocilearn run`` in the foreground — stays with the runtime, which copies
bytes between it and its own stdin/stdout.
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enum classes (start-up time, see container.py)
import os
import select


def send_console(path: str, master: int, name: str) -> None:
    """Send the pty master to the Unix socket ``path`` with SCM_RIGHTS, as ``runc create
    --console-socket`` does (runc docs/terminals.md)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        socket.send_fds(s, [name.encode() or b"/dev/pts/0"], [master])


def copy_winsize(master: int) -> None:
    """Give the container's pty our terminal's size (ioctl_tty(2) TIOCGWINSZ/TIOCSWINSZ)."""
    import fcntl
    import termios

    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def proxy_pty(master: int) -> None:
    """Copy stdin -> pty master and master -> stdout until the container closes the pty;
    pass the window size (TIOCGWINSZ/TIOCSWINSZ, also on SIGWINCH); raw mode on a tty."""
    import termios
    import tty

    def winsize(*_a) -> None:
        copy_winsize(master)

    saved = None
    if os.isatty(0):
        winsize()
        signal.signal(signal.SIGWINCH, winsize)
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        fds = [master, 0]
        while True:
            r, _, _ = select.select(fds, [], [])
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if not data:
                    fds.remove(0)
                else:
                    os.write(master, data)
    finally:
        if saved:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
