"""Registry authentication: where credentials come from and what a registry asks for.

* :func:`load_credentials` — the containers auth files (containers-auth.json(5):
  ``$REGISTRY_AUTH_FILE``, ``${XDG_RUNTIME_DIR}/containers/auth.json``,
  ``~/.config/containers/auth.json``, ``~/.docker/config.json``) and credential helpers
  (``docker-credential-*``), as skopeo looks them up.
* :func:`parse_challenges` — the ``WWW-Authenticate`` header of a 401 (RFC 9110 section
  11.6.1; distribution-spec and the Docker token authentication specification use its
  ``Bearer realm=…,service=…,scope=…`` form).

The HTTP client that uses them is :class:`ocilearn.distribution.client.RegistryClient`.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import AuthError
from ..image.reference import DOCKER_HUB

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Credentials:
    """A user name and a secret for one registry.

    Attributes:
        username: the user name (shown in logs).
        password: the password or access token (never shown: ``repr`` hides it).
        identity_token: an OAuth2 refresh token (Docker's ``identitytoken``), or ``None``.
        source: where they came from (``--creds``, a file path, ``docker-credential-x``).
    """

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""

    @classmethod
    def parse(cls, text: str, source: str = "--creds") -> "Credentials":
        """Parse ``USER:PASSWORD`` (as ``skopeo --creds`` takes it).

        Raises:
            AuthError: no ``:`` or an empty user name (the secret is not echoed).
        """
        user, sep, pw = text.partition(":")
        if not sep or not user:
            raise AuthError(f"{source}: credentials must be USERNAME:PASSWORD")
        return cls(user, pw, None, source)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password={REDACTED!r}, source={self.source!r})"

    __str__ = __repr__


def _auth_files(authfile: str | os.PathLike | None, env: dict[str, str]) -> list[Path]:
    """Credential files in the order containers/image and Docker search them."""
    out: list[Path] = []
    if authfile:
        return [Path(authfile)]
    if env.get("REGISTRY_AUTH_FILE"):
        out.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        out.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(env.get("HOME") or Path.home())
    out.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    out.append(Path(env["DOCKER_CONFIG"]) / "config.json" if env.get("DOCKER_CONFIG") else home / ".docker" / "config.json")
    return out


def _registry_keys(registry: str) -> list[str]:
    """The spellings a config file may use for ``registry`` (Docker Hub has several)."""
    if registry == DOCKER_HUB:
        return ["docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io", "https://index.docker.io/v1"]
    return [registry]


def _normalise_key(key: str) -> str:
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    key = key.rstrip("/")
    if key.endswith("/v1") or key.endswith("/v2"):
        key = key[:-3]
    return "docker.io" if key in ("index.docker.io", "registry-1.docker.io") else key


def _credential_helper(helper: str, server: str, source: str, env: dict[str, str]) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` (Docker's credential helper protocol:
    the server URL on stdin, ``{"Username":…,"Secret":…}`` on stdout)."""

    import subprocess  # only here: most pulls need no credential helper (start-up time)

    prog = f"docker-credential-{helper}"
    try:
        p = subprocess.run([prog, "get"], input=server, capture_output=True, text=True, timeout=30, env=env)
    except FileNotFoundError:
        raise AuthError(f"{source}: credential helper {prog!r} is not installed") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"{source}: credential helper {prog!r} did not answer in 30 s") from None
    if p.returncode != 0:
        if "credentials not found" in (p.stdout + p.stderr).lower():
            return None
        raise AuthError(f"{source}: credential helper {prog!r} failed (exit {p.returncode})")
    try:
        obj = json.loads(p.stdout)
        user, secret = obj["Username"], obj["Secret"]
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"{source}: credential helper {prog!r} printed no Username/Secret JSON") from None
    if user == "<token>":
        return Credentials("", "", secret, f"{prog}")
    return Credentials(user, secret, None, prog)


def load_credentials(registry: str, repository: str | None = None, *, authfile: str | os.PathLike | None = None,
                     env: dict[str, str] | None = None) -> Credentials | None:
    """Find stored credentials for ``registry`` (``host[:port]`` or ``docker.io``).

    Looks, in order, in ``authfile`` (if given, only there), ``$REGISTRY_AUTH_FILE``,
    ``$XDG_RUNTIME_DIR/containers/auth.json``, ``~/.config/containers/auth.json`` and
    Docker's ``~/.docker/config.json`` (or ``$DOCKER_CONFIG/config.json``). In each file:
    ``credHelpers[registry]``, then ``auths`` (a key may be ``host``, ``https://host/v1/``
    or, containers-auth.json style, ``host/namespace`` — the longest match wins; ``auth``
    is base64 ``user:password``; ``identitytoken`` is an OAuth2 refresh token), then
    ``credsStore``.

    Returns:
        :class:`Credentials` or ``None`` (anonymous).

    Raises:
        AuthError: a malformed file or ``auth`` value (the secret is never quoted), or a
            failing credential helper.
    """
    env = dict(os.environ if env is None else env)
    want = registry if registry != DOCKER_HUB else "docker.io"
    full = f"{want}/{repository}" if repository else want
    for path in _auth_files(authfile, env):
        if not path.is_file():
            if authfile:
                raise AuthError(f"--authfile {path}: no such file")
            continue
        try:
            conf = json.loads(path.read_text())
        except (OSError, ValueError):
            raise AuthError(f"{path}: not valid JSON") from None
        if not isinstance(conf, dict):
            raise AuthError(f"{path}: expected a JSON object")
        helpers = conf.get("credHelpers") or {}
        for key in _registry_keys(registry):
            if isinstance(helpers, dict) and key in helpers:
                server = "https://index.docker.io/v1/" if registry == DOCKER_HUB else registry
                return _credential_helper(str(helpers[key]), server, str(path), env)
        auths = conf.get("auths") or {}
        best: tuple[int, dict] | None = None
        if isinstance(auths, dict):
            for key, entry in auths.items():
                norm = _normalise_key(key)
                if (full == norm or full.startswith(norm + "/")) and (best is None or len(norm) > best[0]):
                    best = (len(norm), entry if isinstance(entry, dict) else {})
        if best is not None:
            entry = best[1]
            src = f"{path}"
            if entry.get("identitytoken"):
                return Credentials(entry.get("username", "") or "", "", str(entry["identitytoken"]), src)
            if entry.get("auth"):
                try:
                    user, sep, pw = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise AuthError(f"{path}: the 'auth' value for {want} is not base64 of USER:PASSWORD") from None
                if not sep:
                    raise AuthError(f"{path}: the 'auth' value for {want} is not base64 of USER:PASSWORD")
                return Credentials(user, pw, None, src)
            if entry.get("username") and entry.get("password") is not None:
                return Credentials(entry["username"], entry["password"], None, src)
        if conf.get("credsStore"):
            server = "https://index.docker.io/v1/" if registry == DOCKER_HUB else registry
            creds = _credential_helper(str(conf["credsStore"]), server, str(path), env)
            if creds is not None:
                return creds
    return None


# ------------------------------------------------------------------ challenges


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge (RFC 7235 §4.1).

    Attributes:
        scheme: lower-cased auth scheme, e.g. ``bearer`` or ``basic``.
        params: auth-params, names lower-cased, values verbatim (quotes removed).
    """

    scheme: str
    params: dict[str, str]

    @property
    def scopes(self) -> list[str]:
        """The space-separated scopes of a Bearer challenge, each
        ``type:name:action[,action]*`` (Docker token spec), in order."""
        return [s for s in self.params.get("scope", "").split(" ") if s]


_TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_challenges(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value into its challenges.

    Follows RFC 7235 §4.1: ``challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]``,
    ``auth-param = token BWS "=" BWS ( token / quoted-string )``; several challenges may
    share one header, separated by commas. Commas and spaces inside quoted strings are
    part of the value (RFC 9110 section 11.2 quoted-string, e.g. ``scope="repository:a:pull,push"``); ``\\`` escapes in
    quoted strings are undone.

    Returns:
        list of :class:`Challenge` (empty for an empty or unparsable header).
    """
    s = value or ""
    i, n = 0, len(s)
    out: list[Challenge] = []
    current: Challenge | None = None

    def skip_ws_commas(j: int) -> int:
        while j < n and s[j] in " \t,":
            j += 1
        return j

    def read_token(j: int) -> tuple[str, int]:
        k = j
        while k < n and s[k] in _TCHAR:
            k += 1
        return s[j:k], k

    while True:
        i = skip_ws_commas(i)
        if i >= n:
            break
        tok, j = read_token(i)
        if not tok:
            i += 1  # junk character: skip it
            continue
        k = j
        while k < n and s[k] in " \t":
            k += 1
        if k < n and s[k] == "=" and current is not None:
            # auth-param
            k += 1
            while k < n and s[k] in " \t":
                k += 1
            if k < n and s[k] == '"':
                k += 1
                buf = []
                while k < n and s[k] != '"':
                    if s[k] == "\\" and k + 1 < n:
                        k += 1
                    buf.append(s[k])
                    k += 1
                val = "".join(buf)
                k += 1  # closing quote
            else:
                m = k
                while m < n and s[m] not in ", \t":
                    m += 1
                val, k = s[k:m], m
            current.params[tok.lower()] = val
            i = k
            continue
        # a new challenge: scheme token
        current = Challenge(tok.lower(), {})
        out.append(current)
        i = j
        # token68 (e.g. "Negotiate abc==") directly after the scheme
        k = j
        while k < n and s[k] == " ":
            k += 1
        m = k
        while m < n and (s[m] in _TCHAR or s[m] == "/"):
            m += 1
        e = m
        while e < n and s[e] == "=":
            e += 1
        if m > k and (e >= n or s[e] == ","):
            current.params["token68"] = s[k:e]
            i = e
    return out


__all__ = ["Credentials", "load_credentials", "Challenge", "parse_challenges", "REDACTED"]
