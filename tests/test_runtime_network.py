"""Network plumbing (ocilearn.runtime.network): lo up in every new network namespace, and
``--net veth`` — a veth pair to the namespace ocilearn runs in, a private /30 and an
/etc/hosts naming the hostname, which fixes the article's "UnknownHostException" failure.

Every test runs ocilearn inside a network namespace the test creates (``ip netns add
ocitest-RANDOM``, entered with nsenter so cgroups stay visible) and deletes afterwards:
no address outside it is ever configured or contacted."""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest
from conftest import require_tool
from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

from ocilearn.runtime import network

pytestmark = needs_root


@pytest.fixture
def netns():
    ip = require_tool("ip")
    name = f"ocitest-{secrets.token_hex(4)}"
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], check=False)


def _caps_root(cfg_caps: list[str]) -> dict:
    caps = cfg_caps + ["CAP_NET_RAW"]
    return {"process.user": {"uid": 0, "gid": 0}, "process.capabilities": {k: caps for k in ("bounding", "effective", "permitted")}}


LOOKUP = "hostname -i 2>&1 || echo 'java.net.UnknownHostException: '$(hostname)': Name or service not known'"


def test_hostname_lookup_fails_without_network_and_works_with_veth(busybox_base, tmp_path, runner, netns):
    """The keycloak-style failure reproduced (no /etc/hosts entry, only lo) and fixed."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", LOOKUP + "; cat /sys/class/net/lo/operstate"],
                    **{"hostname": "keycloak-1"})
    enter = ["nsenter", f"--net=/var/run/netns/{netns}", OCILEARN, "--root", runner.root]
    bare = runner.cmd(*enter, "run", "-b", str(b), cid("kc"))
    assert "UnknownHostException: keycloak-1" in bare.stdout
    assert bare.stdout.split()[-1] == "unknown"  # lo is up: operstate of lo is "unknown" when up
    fixed = runner.cmd(*enter, "run", "--net", "veth", "-b", str(b), cid("kc"))
    assert fixed.returncode == 0, fixed.stderr
    addr = fixed.stdout.split()[0]
    assert addr.startswith("10.213.") and "UnknownHost" not in fixed.stdout


def test_veth_pair_connects_both_ways_and_vanishes(busybox_base, tmp_path, runner, netns):
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c",
                    "cat /etc/hosts; ping -c1 -W2 $(ip route | awk '/default/{print $3}') >/dev/null && echo GW-OK; sleep 5"],
                    **_caps_root(["CAP_KILL"]), **{"hostname": "web"})
    name = cid("veth")
    enter = ["nsenter", f"--net=/var/run/netns/{netns}"]
    runner.cmd(*enter, OCILEARN, "--root", runner.root, "run", "-d", "--net", "veth", "-b", str(b), name)
    st = json.loads(open(f"{runner.root}/{name}/state.json").read())
    net = st["ocilearn"]["net"]
    host_side = runner.cmd("ip", "-n", netns, "-4", "-o", "addr", "show", net["ifname"]).stdout
    assert f"inet {net['host']}/30" in host_side
    ping = runner.cmd(*enter, "ping", "-c1", "-W2", net["container"])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    hosts = runner.oc("exec", name, "cat", "/etc/hosts").stdout
    assert f"{net['container']}\tweb" in hosts and "127.0.0.1\tlocalhost" in hosts
    runner.oc("delete", "--force", name)
    links = runner.cmd("ip", "-n", netns, "-o", "link").stdout
    assert net["ifname"] not in links  # the pair died with the container's namespace
    # the host's own namespace never saw it
    assert net["ifname"] not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_subnet_choice_and_hosts_text():
    h, c, ifname = network.subnet_for("abc")
    assert h.startswith("10.213.") and c.startswith("10.213.")
    assert int(c.split(".")[-1]) == int(h.split(".")[-1]) + 1 and int(h.split(".")[-1]) % 4 == 1
    h2, c2, _ = network.subnet_for("abc", used={h})
    assert h2 != h and ifname.startswith("ol") and len(ifname) <= 15
    assert network.hosts_file("web", "10.213.0.2").splitlines()[-1] == "10.213.0.2\tweb"
    assert network.hosts_file("web", None).splitlines()[-1] == "127.0.1.1\tweb"
