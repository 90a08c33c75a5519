"""
daemon - starts milter-policy for a protocol test and stops exactly that process.

    with Daemon(rules={"10-x.rules": text}, config={"on_error": "continue"}) as d:
        c = MilterClient(d.address)
        ...
        d.log()                     # everything the daemon wrote to stderr so far
    d.status                        # exit status (negative: killed by that signal)

The binary is $MP_DAEMON (default: filter/milter-policy of the tree this file is in).  Config, rule and list
files go into one temporary directory, so relative paths mean the same thing whether the
daemon resolves them against the config file or the rule file.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DEFAULT_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "filter", "milter-policy")
START_TIMEOUT = 10.0  # seconds until the socket must accept connections
STOP_TIMEOUT = 10.0   # seconds SIGTERM gets before SIGKILL


class DaemonError(Exception):
    pass


def binary_path():
    return os.environ.get("MP_DAEMON") or DEFAULT_BINARY


def free_port():
    """A port nobody listens on now (the kernel's pick for an ephemeral bind)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _quote(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(_quote(x) for x in v) + " }"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str) and v.replace("_", "").isalnum() and not v[0].isdigit():
        return v  # a bare word: tempfail, debug, mail
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Daemon:
    """rules: {filename: text} written to the temp dir; lists: {relative path: text};
    config: extra main-config settings {name: value} (override the defaults below);
    config_text: the whole config instead (with @PORT@, @DIR@, @SOCKET@ substituted);
    unix: listen on a unix socket in the temp dir instead of 127.0.0.1."""

    def __init__(self, rules=None, lists=None, config=None, config_text=None, unix=False,
                 binary=None, args=(), start=True):
        self.binary = binary or binary_path()
        self.rules = rules or {}
        self.lists = lists or {}
        self.config = config or {}
        self.config_text = config_text
        self.unix = unix
        self.args = list(args)
        self.dir = None
        self.proc = None
        self.status = None
        self.port = None
        self.socket_spec = None
        self.address = None
        self.log_path = None
        if start:
            self.start()

    # --- files

    def _write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    def _config(self):
        if self.config_text is not None:
            return (self.config_text.replace("@PORT@", str(self.port or ""))
                    .replace("@DIR@", self.dir).replace("@SOCKET@", self.socket_spec))
        settings = {
            "socket": self.socket_spec,
            "policies": ["*.rules"],
            "log_level": "debug",
            "on_error": "tempfail",
        }
        if os.geteuid() == 0:
            settings["allow_root"] = True
        settings.update(self.config)
        return "".join("%s = %s\n" % (k, _quote(v)) for k, v in settings.items()
                       if v is not None)

    # --- process

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise DaemonError("daemon binary %s is missing or not executable (set MP_DAEMON)"
                              % self.binary)
        self.dir = tempfile.mkdtemp(prefix="mp-proto-")
        if self.unix:
            path = os.path.join(self.dir, "milter.sock")
            self.socket_spec = "unix:" + path
            self.address = path
        else:
            self.port = free_port()
            self.socket_spec = "inet:%d@127.0.0.1" % self.port
            self.address = ("127.0.0.1", self.port)
        for name, text in self.rules.items():
            self._write(name, text)
        for name, text in self.lists.items():
            self._write(name, text)
        self.config_path = self._config_path = self._write("milter-policy.conf",
                                                            self._config())
        self.log_path = os.path.join(self.dir, "stderr.log")
        argv = [self.binary, "-f", "-c", self.config_path, "-p", self.socket_spec] + self.args
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def _probe(self):
        fam = socket.AF_UNIX if self.unix else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect(self.address)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.status = self.proc.returncode
                raise DaemonError("daemon exited with status %d before listening; log:\n%s"
                                  % (self.status, self.log()))
            if self._probe():
                return
            time.sleep(0.05)
        raise DaemonError("daemon not listening on %s after %ss; log:\n%s"
                          % (self.socket_spec, START_TIMEOUT, self.log()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout s.  Returns the exit status (negative: the
        signal that killed it); also in self.status, and self.killed says if SIGKILL was
        needed."""
        self.killed = False
        if self.proc is None:
            return self.status
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self.status = self.proc.returncode
        return self.status

    def cleanup(self):
        if self.dir and os.path.isdir(self.dir) and not os.environ.get("MP_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()
        return False

    # --- log

    def log(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_since(self, offset):
        return self.log()[offset:]

    def log_mark(self):
        """An offset for log_since(): the log written so far."""
        return len(self.log())

    def wait_log(self, needle, since=0, timeout=5.0):
        """The log text after since once it contains needle, or None after timeout s
        (a log line can trail the milter reply it explains)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(since)
            if needle in text:
                return text
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
