"""``features``: what this runtime supports, in the shape of runtime-spec features.md
(runc features), so a caller can check before it asks."""

from __future__ import annotations

from ..core import syscalls as sc
from .state import OCI_VERSION


def features() -> dict:
    """What this runtime supports, as runtime-spec features.md describes it (``runc
    features``): OCI versions, hooks, mount options, namespaces, capabilities, cgroup
    versions, and the security modules (enabled only where ocilearn applies them)."""
    from . import rootfs as rfs

    seccomp = False
    try:
        import importlib.util

        seccomp = importlib.util.find_spec("pyseccomp") is not None  # libseccomp's binding
    except (ImportError, ValueError):
        pass
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted({*rfs.MOUNT_FLAGS, *rfs.PROPAGATION, *rfs.RECURSIVE_OPTIONS, rfs.TMPCOPYUP}),
        "linux": {
            "namespaces": sorted(sc.NAMESPACES),
            "capabilities": [f"CAP_{n}" for n, i in sorted(sc.CAPS.items(), key=lambda kv: kv[1]) if i <= sc.last_cap()],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": seccomp},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"io.github.ocilearn.runtime": "ocilearn"},
    }
