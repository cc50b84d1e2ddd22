"""Network plumbing for a container's network namespace (network_namespaces(7), veth(4)).

A new network namespace has only ``lo``, and it is *down*. runc brings ``lo`` up and stops:
anything else is left to hooks or CNI. That is why a server that looks up its own hostname
fails inside a bare runc container (the article's keycloak "UnknownHostException"): no
route, no /etc/hosts entry for the hostname.

- :func:`lo_up` (stdlib ioctl, no import cost) — done for every new network namespace.
- :func:`setup_veth` (``--net veth``) — a veth pair between the container and the
  namespace ocilearn runs in, a /30 from ``10.213.0.0/16``, and an /etc/hosts naming the
  container's hostname. Uses pyroute2 (netlink), imported only here.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct

from . import step

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
SUBNET_BASE = "10.213.0.0"


def lo_up() -> None:
    """Set ``lo`` up in the calling process's network namespace (netdevice(7)
    SIOCSIFFLAGS), like ``ip link set lo up``."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)  # C module: no socket.py import cost
    try:
        ifr = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))
    finally:
        s.close()
    step("runtime", "lo up", "loopback of the new network namespace", "ip link set lo up")


def subnet_for(container_id: str, used: set[str] | None = None) -> tuple[str, str, str]:
    """Pick a /30 for a container: ``(host address, container address, host ifname)``,
    derived from the ID and skipping addresses in ``used``."""
    import hashlib
    import socket

    base = struct.unpack("!I", socket.inet_aton(SUBNET_BASE))[0]
    n = int(hashlib.sha256(container_id.encode()).hexdigest(), 16) % 16384
    for k in range(16384):
        net = base + ((n + k) % 16384) * 4
        host = socket.inet_ntoa(struct.pack("!I", net + 1))
        cont = socket.inet_ntoa(struct.pack("!I", net + 2))
        if not used or (host not in used and cont not in used):
            return host, cont, "ol" + hashlib.sha256(container_id.encode()).hexdigest()[:10]
    raise OSError("no free /30 in 10.213.0.0/16")


def hosts_file(hostname: str, address: str | None) -> str:
    """The text of the container's /etc/hosts: localhost, and the hostname on its veth
    address (or 127.0.1.1 without one), so ``getent hosts $(hostname)`` works."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if hostname:
        lines.append(f"{address or '127.0.1.1'}\t{hostname}")
    return "\n".join(lines) + "\n"


def setup_veth(pid: int, container_id: str) -> dict:
    """Create a veth pair: ``olXXXX`` stays in the caller's network namespace with the
    host address, ``eth0`` moves into the network namespace of ``pid`` with the container
    address and a default route via the host side. Returns ``{"host": …, "container": …,
    "ifname": …, "prefixlen": 30}``. The pair vanishes with the container's namespace."""
    import socket

    from pyroute2 import IPRoute, NetNS  # lazy: only --net veth pays for it

    with IPRoute() as ipr:
        used = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=socket.AF_INET)}
        host, cont, ifname = subnet_for(container_id, used)
        ipr.link("add", ifname=ifname, kind="veth", peer="ocl-tmp-" + ifname[2:8])
        hidx = ipr.link_lookup(ifname=ifname)[0]
        pidx = ipr.link_lookup(ifname="ocl-tmp-" + ifname[2:8])[0]
        nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr.link("set", index=pidx, net_ns_fd=nsfd, ifname="eth0")
        finally:
            os.close(nsfd)
        ipr.addr("add", index=hidx, address=host, prefixlen=30)
        ipr.link("set", index=hidx, state="up")
    with NetNS(f"/proc/{pid}/ns/net") as ns:
        idx = ns.link_lookup(ifname="eth0")[0]
        ns.addr("add", index=idx, address=cont, prefixlen=30)
        ns.link("set", index=idx, state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=host)
    step("runtime", "veth", f"{ifname} {host}/30 <-> eth0 {cont}/30 in pid {pid}'s netns",
                 f"ip link add {ifname} type veth peer name eth0 netns {pid}")
    return {"host": host, "container": cont, "ifname": ifname, "prefixlen": 30}
