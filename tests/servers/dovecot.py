"""Run a real Dovecot IMAP server on loopback for tests.

Everything the server needs (configuration, passwd file, TLS certificate,
mail storage, runtime sockets, state and logs) lives under one directory given
to :class:`Dovecot`; the system's ``/etc/dovecot`` configuration is never read.

Typical use (see ``tests/servers/fixtures.py`` for the pytest fixtures)::

    server = Dovecot(some_tmp_dir)
    server.start()
    server.append(b"Subject: hi\\r\\n\\r\\nbody\\r\\n", when=datetime(...))
    assert server.count() == 1
    server.stop()

Only the standard library is needed (the ``cryptography`` package is used
only if the ``openssl`` command is missing).  The server runs as root-started Dovecot
(the normal case in CI) with login processes as ``dovenull``, internal
processes as ``dovecot`` and mail access as the ``vmail`` system user, which is
created on demand when missing.  When not running as root, Dovecot is run
"rootless": every process runs as the current user.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "Dovecot",
    "DovecotError",
    "ensure_vmail_user",
    "find_dovecot",
]

DEFAULT_USER = "gdtx@haiphong.edu.vn"
DEFAULT_PASSWORD = "secret-pw-123"
VMAIL_USER = "vmail"

_DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
_INSTALL_HINT = (
    "install it with `apt-get install -y dovecot-imapd` "
    "(or just run `bash scripts/test.sh`, which installs test dependencies)"
)
# Unix socket paths are limited to 108 bytes; Dovecot puts sockets such as
# <base_dir>/token-login/tokenlogin under <root>/run.
_MAX_ROOT_LEN = 70

_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}


class DovecotError(RuntimeError):
    """Dovecot could not be found, configured, started or queried."""


# --------------------------------------------------------------------------
# process bookkeeping: make sure no server outlives the test process

_RUNNING: weakref.WeakSet[Dovecot] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:  # pragma: no cover - exit path
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(timeout=5)


def _parent_death_signal() -> None:  # runs in the child between fork and exec
    """Ask the kernel to SIGTERM the Dovecot master if the test process dies
    without running atexit handlers (e.g. SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------
# helpers


def find_dovecot() -> str:
    """Path of the ``dovecot`` binary, or raise DovecotError explaining how
    to install it."""
    found = shutil.which("dovecot")
    candidates = ([found] if found else []) + list(_DOVECOT_CANDIDATES)
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise DovecotError(f"Dovecot IMAP server is not installed: {_INSTALL_HINT}")


_vmail_lock = threading.Lock()


def ensure_vmail_user() -> pwd.struct_passwd:
    """Return the ``vmail`` system user, creating it (as root) if missing."""
    with _vmail_lock:
        for attempt in range(5):
            try:
                return pwd.getpwnam(VMAIL_USER)
            except KeyError:
                pass
            if os.geteuid() != 0:
                raise DovecotError(
                    f"system user {VMAIL_USER!r} is missing and we are not root; "
                    f"create it with `useradd --system --user-group {VMAIL_USER}`"
                )
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            proc = subprocess.run(
                [
                    useradd,
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    VMAIL_USER,
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                continue
            # Another process (e.g. a parallel pytest worker) may have won the
            # race or hold the passwd lock: look again shortly.
            time.sleep(0.2 * (attempt + 1))
        try:
            return pwd.getpwnam(VMAIL_USER)
        except KeyError:
            raise DovecotError(
                f"could not create system user {VMAIL_USER!r}: {proc.stderr.strip() or proc.stdout.strip()}"
            ) from None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _live_group_members(pgid: int) -> list[int]:
    """PIDs in process group ``pgid`` that are not zombies."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: fall back to "any process in the group"
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    live = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." -- comm may contain spaces/parens
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            live.append(int(entry))
    return live


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _imap_utf7_encode(name: str) -> str:
    """Encode a mailbox name in IMAP modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _imap_utf7_decode(name: str) -> str:
    def repl(m: re.Match[str]) -> str:
        body = m.group(1)
        if not body:
            return "&"
        b64 = body.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


def _quote(name: str) -> str:
    enc = _imap_utf7_encode(name)
    return '"' + enc.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_internaldate(text: str) -> datetime:
    # e.g. "17-Jul-1996 02:44:25 -0700" (day may be space padded)
    m = re.fullmatch(
        r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\s*",
        text,
    )
    if not m:
        raise DovecotError(f"cannot parse INTERNALDATE {text!r}")
    day, mon, year, hh, mm, ss, zone = m.groups()
    tz = datetime.strptime(zone, "%z").tzinfo
    return datetime(
        int(year),
        _MONTHS[mon.capitalize()],
        int(day),
        int(hh),
        int(mm),
        int(ss),
        tzinfo=tz,
    )


def _check(typ: str, data: list, what: str) -> list:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise DovecotError(f"IMAP {what} failed: {typ} {detail}")
    return data


def _path_traversable_by(path: Path, uid: int, gids: set[int]) -> Path | None:
    """Return the first ancestor of ``path`` (inclusive) that user ``uid``
    cannot traverse, or None if all are fine."""
    p = path.resolve()
    for d in [*reversed(p.parents), p]:
        st = d.stat()
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in gids:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return d
    return None


# --------------------------------------------------------------------------


class Dovecot:
    """A private Dovecot IMAP server living entirely in ``root_dir``.

    Attributes: ``host`` ("127.0.0.1"), ``port`` (plain IMAP), ``ssl_port``
    (IMAPS), ``cert_path`` (self-signed PEM certificate to trust), ``user``,
    ``password``, ``users`` (dict of all accounts), ``root_dir``,
    ``log_path``, ``conf_path``.  Ports are chosen on first start and kept
    across restarts.

    With ``oauth2_introspection_url`` (e.g. ``OAuthServer.introspect_url``
    from ``tests/servers/oauth.py``) the server also accepts ``AUTHENTICATE
    XOAUTH2`` and ``OAUTHBEARER``: an ``oauth2`` passdb asks that RFC 7662
    endpoint (``oauth2_introspection_mode``: ``post``, ``get`` or ``auth``)
    whether the bearer token is active and whose it is (``username``); the
    user must still exist in the passwd-file, which stays the userdb.
    Plain password logins (PLAIN/LOGIN) keep working unchanged.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        extra_users: dict[str, str] | None = None,
        *,
        idle_check_interval: int = 1,
        verbose: bool = False,
        tz: str = "UTC",
        startup_timeout: float = 15.0,
        oauth2_introspection_url: str | None = None,
        oauth2_introspection_mode: str = "post",
    ) -> None:
        self.root_dir = Path(root_dir).absolute()
        if len(str(self.root_dir)) > _MAX_ROOT_LEN:
            raise DovecotError(
                f"root_dir {str(self.root_dir)!r} is too long for Dovecot's unix "
                f"sockets (max {_MAX_ROOT_LEN} chars); use a short directory "
                "such as tempfile.mkdtemp()"
            )
        self.user = user
        self.password = password
        self.users: dict[str, str] = {user: password, **(extra_users or {})}
        self.idle_check_interval = idle_check_interval
        self.verbose = verbose
        self.tz = tz
        self.startup_timeout = startup_timeout
        if oauth2_introspection_mode not in ("post", "get", "auth"):
            raise DovecotError(
                f"oauth2_introspection_mode must be post, get or auth, not {oauth2_introspection_mode!r}"
            )
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_introspection_mode = oauth2_introspection_mode

        self.conf_path = self.root_dir / "dovecot.conf"
        self.passwd_path = self.root_dir / "passwd"
        self.oauth2_conf_path = self.root_dir / "dovecot-oauth2.conf.ext"
        self.cert_path = self.root_dir / "cert.pem"
        self.key_path = self.root_dir / "key.pem"
        self.base_dir = self.root_dir / "run"
        self.state_dir = self.root_dir / "state"
        self.home_root = self.root_dir / "home"
        self.log_path = self.root_dir / "dovecot.log"
        self.stderr_path = self.root_dir / "dovecot.stderr"

        self.port: int | None = None
        self.ssl_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_file = None
        self._binary: str | None = None
        self._prepared = False

    # ------------------------------------------------------------ set-up

    @property
    def rootless(self) -> bool:
        return os.geteuid() != 0

    def _mail_owner(self) -> tuple[int, int]:
        if self.rootless:
            return os.getuid(), os.getgid()
        pw = ensure_vmail_user()
        return pw.pw_uid, pw.pw_gid

    def home_dir(self, user: str | None = None) -> Path:
        return self.home_root / (user or self.user)

    def maildir(self, user: str | None = None) -> Path:
        return self.home_dir(user) / "Maildir"

    def folder_path(self, folder: str = "INBOX", user: str | None = None) -> Path:
        """On-disk maildir of ``folder`` (Maildir++ layout: INBOX is the
        Maildir root, "A/B" is ``Maildir/.A.B``)."""
        if folder.upper() == "INBOX":
            return self.maildir(user)
        return self.maildir(user) / ("." + _imap_utf7_encode(folder).replace("/", "."))

    def _prepare(self) -> None:
        self._binary = find_dovecot()
        self.root_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root_dir, 0o755)
        for d in (self.base_dir, self.state_dir, self.home_root):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o755)

        uid, gid = self._mail_owner()
        if not self.rootless:
            # auth runs as "dovecot" and mail processes as "vmail": both must
            # be able to reach files below root_dir.
            for name in ("dovecot", VMAIL_USER):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    raise DovecotError(
                        f"system user {name!r} is missing: is dovecot-core installed correctly? {_INSTALL_HINT}"
                    ) from None
                gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
                blocked = _path_traversable_by(self.root_dir, pw.pw_uid, gids)
                if blocked is not None:
                    raise DovecotError(
                        f"user {name!r} cannot traverse {str(blocked)!r} "
                        f"(mode {oct(blocked.stat().st_mode & 0o777)}); put the "
                        "Dovecot root_dir under a world-searchable directory "
                        "such as one made by tempfile.mkdtemp()"
                    )

        self._make_cert()
        self._write_passwd()
        for user in self.users:
            self._make_home(user, uid, gid)
        if self.port is None:
            self.port = _free_port(self.host)
        if self.ssl_port is None:
            while True:
                self.ssl_port = _free_port(self.host)
                if self.ssl_port != self.port:
                    break
        self._write_conf()
        self._prepared = True

    def _make_home(self, user: str, uid: int, gid: int) -> None:
        home = self.home_dir(user)
        if not home.exists():
            home.mkdir(mode=0o700)
            os.chown(home, uid, gid)

    def _make_cert(self) -> None:
        if self.cert_path.exists() and self.key_path.exists():
            return
        openssl = shutil.which("openssl")
        if openssl:
            cmd = [
                openssl,
                "req",
                "-x509",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-keyout",
                str(self.key_path),
                "-out",
                str(self.cert_path),
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise DovecotError(f"openssl failed: {proc.stderr.strip()}")
        else:
            self._make_cert_with_cryptography()
        os.chmod(self.key_path, 0o600)
        os.chmod(self.cert_path, 0o644)

    def _make_cert_with_cryptography(self) -> None:
        try:
            import datetime as _dt
            import ipaddress

            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import NameOID
        except ImportError:
            raise DovecotError(
                "neither the `openssl` command nor the Python `cryptography` "
                "package is available to make a TLS certificate; "
                "install openssl (`apt-get install -y openssl`)"
            ) from None
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = _dt.datetime.now(_dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256())
        )
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _write_passwd(self) -> None:
        uid, gid = self._mail_owner()
        lines = []
        for user, password in self.users.items():
            for value, what in ((user, "user name"), (password, "password")):
                if any(c in value for c in ":\r\n\0") or not value:
                    raise DovecotError(f"unsupported {what} {value!r}")
            # user:password:uid:gid:(gecos):home:(shell):extra
            lines.append(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{self.home_dir(user)}::\n")
        tmp = self.passwd_path.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        os.chmod(tmp, 0o644)  # read by the auth process (runs as "dovecot")
        os.replace(tmp, self.passwd_path)

    def add_user(self, user: str, password: str) -> None:
        """Add (or change the password of) an account.  Works while running:
        Dovecot re-reads the passwd-file when it changes."""
        self.users[user] = password
        if user == self.user:
            self.password = password
        if self._prepared:
            uid, gid = self._mail_owner()
            self._write_passwd()
            self._make_home(user, uid, gid)
            if self.running:
                # The auth process stats the passwd-file at most once per
                # wall-clock second: make sure the next lookup is in a new one.
                time.sleep(1.01 - time.time() % 1)

    def _write_oauth2_conf(self) -> None:
        """The oauth2 passdb's own settings file (its ``args``)."""
        conf = f"""\
# Generated by tests/servers/dovecot.py -- OAuth2 bearer tokens checked by
# RFC 7662 introspection against a test endpoint.
introspection_mode = {self.oauth2_introspection_mode}
introspection_url = {self.oauth2_introspection_url}
# no tokeninfo step: go straight to introspection
tokeninfo_url =
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""
        tmp = self.oauth2_conf_path.with_suffix(".tmp")
        tmp.write_text(conf)
        os.chmod(tmp, 0o644)  # read by the auth process
        os.replace(tmp, self.oauth2_conf_path)

    def _write_conf(self) -> None:
        if self.rootless:
            me = pwd.getpwuid(os.getuid()).pw_name
            mygroup = grp.getgrgid(os.getgid()).gr_name
            identity = (
                f"default_login_user = {me}\n"
                f"default_internal_user = {me}\n"
                f"default_internal_group = {mygroup}\n"
                "first_valid_uid = 1\n"
                "first_valid_gid = 0\n"
            )
            # chroot() needs root
            nochroot = "".join(
                f"service {s} {{\n  chroot =\n}}\n"
                for s in ("imap-login", "log", "ipc", "indexer", "aggregator", "old-stats")
            )
            anvil_chroot = "  chroot =\n"
        else:
            identity = (
                "default_login_user = dovenull\n"
                "default_internal_user = dovecot\n"
                "default_internal_group = dovecot\n"
                "first_valid_uid = 1\n"
                "first_valid_gid = 1\n"
            )
            nochroot = ""
            anvil_chroot = ""
        if self.oauth2_introspection_url:
            self._write_oauth2_conf()
            oauth2_mechanisms = " xoauth2 oauthbearer"
            # Bearer tokens never go to the passwd-file, passwords never to
            # the introspection endpoint.
            passwd_mechanisms = "\n  mechanisms = plain login"
            oauth2_passdb = (
                "passdb {\n"
                "  driver = oauth2\n"
                "  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {self.oauth2_conf_path}\n"
                "}\n"
            )
        else:
            oauth2_mechanisms = passwd_mechanisms = oauth2_passdb = ""
        debug = "auth_verbose = yes\nauth_debug = yes\nmail_debug = yes\nverbose_ssl = yes\n" if self.verbose else ""
        conf = f"""\
# Generated by tests/servers/dovecot.py -- private test instance.
instance_name = mailbot-test-{os.getpid()}-{id(self):x}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = {self.host}
{identity}
ssl = yes
ssl_cert = <{self.cert_path}
ssl_key = <{self.key_path}
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
# no 2 s penalty after a failed login: tests of bad credentials stay fast
auth_failure_delay = 0
{debug}
passdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_path}{passwd_mechanisms}
}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_path}
}}

mail_location = maildir:~/Maildir
mailbox_idle_check_interval = {self.idle_check_interval} secs
namespace inbox {{
  inbox = yes
  separator = /
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
{nochroot}
# No auth penalty (up to 15 s per login from an IP after failed ones):
# without access to this socket the auth process turns the penalty off.
service anvil {{
{anvil_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self.conf_path.write_text(conf)

    # ------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Dovecot:
        """Start the server and wait until both ports greet ``* OK``."""
        if self.running:
            return self
        if not self._prepared:
            self._prepare()
        else:
            self._write_conf()
        assert self._binary is not None
        # A master that was killed leaves its pid file behind; if that PID
        # got reused, Dovecot would refuse to start ("already running").
        with contextlib.suppress(FileNotFoundError):
            (self.base_dir / "master.pid").unlink()
        self._stderr_file = open(self.stderr_path, "ab")  # noqa: SIM115 - kept open for the server's lifetime, closed in stop()
        self._proc = subprocess.Popen(
            [self._binary, "-F", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
            # Maildir keeps INTERNALDATE as a file mtime, so Dovecot renders
            # it in its own time zone: pin that for reproducible output.
            env={**os.environ, "TZ": self.tz},
            start_new_session=True,  # own process group: easy, exact cleanup
            preexec_fn=_parent_death_signal,
            close_fds=True,
        )
        _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = {"plain": self.port, "ssl": self.ssl_port}
        last_err: Exception | None = None
        while pending:
            if self._proc is None or self._proc.poll() is not None:
                raise DovecotError(
                    "dovecot exited during startup "
                    f"(exit code {self._proc.returncode if self._proc else '?'}):\n" + self._diagnostics()
                )
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not become ready within {self.startup_timeout}s "
                    f"(last error: {last_err!r}):\n" + self._diagnostics()
                )
            for kind, port in list(pending.items()):
                try:
                    greeting = self._greeting(port, tls=(kind == "ssl"))
                except (OSError, ssl.SSLError) as exc:
                    last_err = exc
                    continue
                if not greeting.startswith(b"* OK"):
                    raise DovecotError(f"unexpected greeting on port {port}: {greeting!r}")
                del pending[kind]
            if pending:
                time.sleep(0.02)

    def _greeting(self, port: int, tls: bool = False) -> bytes:
        with socket.create_connection((self.host, port), timeout=2) as sock:
            if tls:
                with self.ssl_context().wrap_socket(sock, server_hostname=self.host) as tsock:
                    return tsock.recv(200)
            return sock.recv(200)

    def _diagnostics(self) -> str:
        parts = []
        for label, path in (("stderr", self.stderr_path), ("log", self.log_path)):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append(f"--- dovecot {label} ({path}) ---\n{text[-4000:]}")
        return "\n".join(parts) or "(no dovecot output)"

    def stop(self, timeout: float = 10.0) -> None:
        """Gracefully stop the server (SIGTERM) and wait until the master and
        all its children are gone.  Safe to call more than once."""
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # == pgid thanks to start_new_session
        # SIGTERM the whole process group, not just the master: told alone,
        # the master SIGQUITs busy children and then sleeps 1 s, and imap
        # processes serving a client linger ~10 s.  Every Dovecot process
        # handles SIGTERM cleanly (mail is on disk before APPEND returns OK,
        # index writes are transactional).  Repeat the signal while waiting:
        # a child forked just as the first one arrived would otherwise keep
        # the master waiting 5 s for it.  A master left alone with all its
        # children gone may still sit in a fixed 1 s sleep (it SIGQUITs
        # children that were dying anyway): it has nothing left to clean up,
        # so it is killed then.
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                if _live_group_members(pgid) == [pgid] or time.monotonic() > deadline:
                    _signal_group(pgid, signal.SIGKILL)
                    proc.wait(timeout=5)
        # The master is gone; make sure none of its children survive it.
        # (Zombies re-parented to PID 1 do not count: some init processes in
        # containers are slow to reap them, or never do.)
        deadline = time.monotonic() + 3
        while _live_group_members(pgid):
            if time.monotonic() > deadline:
                _signal_group(pgid, signal.SIGKILL)
                break
            _signal_group(pgid, signal.SIGTERM)
            time.sleep(0.02)
        self._proc = None
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        _RUNNING.discard(self)

    def restart(self) -> Dovecot:
        """Stop and start again on the same ports with the same mail."""
        self.stop()
        return self.start()

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """Everything Dovecot logged so far (startup stderr included)."""
        out = []
        for path in (self.stderr_path, self.log_path):
            with contextlib.suppress(OSError):
                out.append(path.read_text(errors="replace"))
        return "".join(out)

    # ------------------------------------------------------------ IMAP client

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSLContext that trusts (only) this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def connect(
        self,
        *,
        use_ssl: bool = False,
        login: bool = True,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> imaplib.IMAP4:
        """An imaplib connection, logged in as ``user`` unless login=False."""
        if not self.running:
            raise DovecotError("dovecot is not running (call start())")
        if use_ssl:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                self.host,
                self.ssl_port,
                ssl_context=self.ssl_context(),
                timeout=timeout,
            )
        else:
            conn = imaplib.IMAP4(self.host, self.port, timeout=timeout)
        if login:
            user = user or self.user
            if password is None:
                password = self.users[user]
            conn.login(user, password)
        return conn

    def connect_oauth2(
        self,
        token: str,
        *,
        user: str | None = None,
        mechanism: str = "XOAUTH2",
        use_ssl: bool = False,
        timeout: float = 10.0,
    ) -> imaplib.IMAP4:
        """An imaplib connection logged in with ``AUTHENTICATE XOAUTH2`` (or
        ``OAUTHBEARER``) and bearer ``token``; needs ``oauth2_introspection_url``.
        A refused token raises ``imaplib.IMAP4.error``."""
        if not self.oauth2_introspection_url:
            raise DovecotError("this Dovecot was made without oauth2_introspection_url")
        user = user or self.user
        mechanism = mechanism.upper()
        if mechanism == "XOAUTH2":
            initial = f"user={user}\x01auth=Bearer {token}\x01\x01"
        elif mechanism == "OAUTHBEARER":
            initial = f"n,a={user},\x01auth=Bearer {token}\x01\x01"
        else:
            raise ValueError(f"mechanism must be XOAUTH2 or OAUTHBEARER, not {mechanism!r}")
        conn = self.connect(use_ssl=use_ssl, login=False, timeout=timeout)
        # After a refusal the server sends a JSON error as a challenge and
        # wants an empty answer (RFC 7628 3.2.3), then says NO.
        answers = iter([initial])
        try:
            conn.authenticate(mechanism, lambda _challenge: next(answers, ""))
        except BaseException:
            with contextlib.suppress(Exception):
                conn.shutdown()
            raise
        return conn

    @contextlib.contextmanager
    def _session(
        self,
        folder: str | None = None,
        *,
        readonly: bool = True,
        user: str | None = None,
    ) -> Iterator[imaplib.IMAP4]:
        conn = self.connect(user=user)
        try:
            if folder is not None:
                _check(*conn.select(_quote(folder), readonly=readonly), f"SELECT {folder}")
            yield conn
        finally:
            with contextlib.suppress(Exception):
                if folder is not None and conn.state == "SELECTED":
                    conn.close()
            with contextlib.suppress(Exception):
                conn.logout()

    def create_folder(self, name: str, *, user: str | None = None) -> None:
        """CREATE ``name`` (no error if it already exists)."""
        with self._session(user=user) as conn:
            typ, data = conn.create(_quote(name))
            if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if isinstance(d, bytes)):
                _check(typ, data, f"CREATE {name}")

    def folder_exists(self, name: str, *, user: str | None = None) -> bool:
        with self._session(user=user) as conn:
            data = _check(*conn.list('""', _quote(name)), f"LIST {name}")
            return any(item for item in data if item)

    def folders(self, *, user: str | None = None) -> list[str]:
        """All mailbox names (decoded from modified UTF-7)."""
        with self._session(user=user) as conn:
            data = _check(*conn.list('""', "*"), "LIST")
        names = []
        for item in data:
            if not item:
                continue
            line = item if isinstance(item, bytes) else item[0] + item[1]
            m = re.match(rb'\([^)]*\) (?:"[^"]*"|NIL) (.*)$', line)
            if not m:
                continue
            raw = m.group(1).decode("ascii")
            if raw.startswith('"'):
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            names.append(_imap_utf7_decode(raw))
        return names

    def append(
        self,
        raw: bytes,
        when: datetime | None = None,
        folder: str = "INBOX",
        flags: str = "",
        *,
        user: str | None = None,
    ) -> None:
        """APPEND ``raw`` to ``folder`` (created if missing), with INTERNALDATE
        ``when`` (naive datetimes are taken as UTC; IMAP keeps whole seconds)
        and ``flags`` such as ``"\\\\Seen \\\\Flagged"``."""
        if isinstance(raw, str):
            raise TypeError("append() wants the raw message as bytes")
        date_time = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            date_time = imaplib.Time2Internaldate(when)
        with self._session(user=user) as conn:
            typ, data = conn.append(_quote(folder), flags or None, date_time, raw)
            if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
                _check(*conn.create(_quote(folder)), f"CREATE {folder}")
                typ, data = conn.append(_quote(folder), flags or None, date_time, raw)
            _check(typ, data, f"APPEND to {folder}")

    def uids(self, folder: str = "INBOX", *, user: str | None = None) -> list[int]:
        with self._session(folder, user=user) as conn:
            data = _check(*conn.uid("SEARCH", "ALL"), "UID SEARCH")
        return sorted(int(x) for x in b" ".join(d or b"" for d in data).split())

    def _fetch(self, folder: str, item: str, user: str | None) -> list[bytes]:
        with self._session(user=user) as conn:
            data = _check(*conn.select(_quote(folder), readonly=True), f"SELECT {folder}")
            if int(data[0] or 0) == 0:
                conn.close()
                return []
            data = _check(*conn.uid("FETCH", "1:*", f"({item})"), f"FETCH {item}")
            conn.close()
        lines = []
        for d in data:
            if isinstance(d, tuple):
                lines.append(d[0])
            elif d:
                lines.append(d)
        return lines

    def fetch_flags(self, folder: str = "INBOX", *, user: str | None = None) -> dict[int, str]:
        """``{uid: "\\\\Seen \\\\Flagged"}`` for every message in ``folder``."""
        out: dict[int, str] = {}
        for line in self._fetch(folder, "UID FLAGS", user):
            uid = re.search(rb"\bUID (\d+)", line)
            flags = re.search(rb"\bFLAGS \(([^)]*)\)", line)
            if uid and flags:
                out[int(uid.group(1))] = flags.group(1).decode()
        return out

    def fetch_internaldates(self, folder: str = "INBOX", *, user: str | None = None) -> dict[int, datetime]:
        """``{uid: aware datetime}`` of every message's INTERNALDATE."""
        out: dict[int, datetime] = {}
        for line in self._fetch(folder, "UID INTERNALDATE", user):
            uid = re.search(rb"\bUID (\d+)", line)
            date = re.search(rb'\bINTERNALDATE "([^"]+)"', line)
            if uid and date:
                out[int(uid.group(1))] = _parse_internaldate(date.group(1).decode())
        return out

    def _status(self, folder: str, item: str, user: str | None) -> int:
        with self._session(user=user) as conn:
            data = _check(*conn.status(_quote(folder), f"({item})"), f"STATUS {folder}")
        m = re.search(rf"\b{item} (\d+)".encode(), b" ".join(d for d in data if d))
        if not m:
            raise DovecotError(f"no {item} in STATUS response {data!r}")
        return int(m.group(1))

    def count(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        return self._status(folder, "MESSAGES", user)

    def uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        return self._status(folder, "UIDVALIDITY", user)

    def uidnext(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        return self._status(folder, "UIDNEXT", user)

    # ------------------------------------------------------------ chaos

    def reset_uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        """Make Dovecot assign a new UIDVALIDITY (and new UIDs) to ``folder``
        while keeping its messages.  Restarts the server if it was running.
        Returns the new UIDVALIDITY."""
        was_running = self.running
        if not was_running:
            self.start()
        old = self.uidvalidity(folder, user=user)
        path = self.folder_path(folder, user)
        if not (path / "cur").is_dir():
            raise DovecotError(f"maildir for {folder!r} not found at {path}")
        for attempt in range(5):
            self.stop()
            if attempt:
                # Dovecot seeds a new UIDVALIDITY from the clock (or from the
                # last one it handed out + 1): let the clock move on.
                time.sleep(1.05)
            doomed = [path / "dovecot-uidlist", *path.glob("dovecot.index*")]
            if folder.upper() == "INBOX":
                # INBOX's maildir is the Maildir root, which also holds the
                # mailbox-list index that caches STATUS information.
                doomed += list(path.glob("dovecot.list.index*"))
            else:
                doomed += list(self.maildir(user).glob("dovecot.list.index*"))
            for f in doomed:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
            self.start()
            new = self.uidvalidity(folder, user=user)
            if new != old:
                if not was_running:
                    self.stop()
                return new
        raise DovecotError(f"UIDVALIDITY of {folder!r} stayed {old} after deleting its index")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {state} imap={self.host}:{self.port} imaps={self.host}:{self.ssl_port} root={self.root_dir}>"
