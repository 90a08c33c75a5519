"""
milterclient - the MTA side of the milter protocol (version 6), for protocol tests.

Speaks to a filter the way Postfix 3.7 and Sendmail 8.17 do: option negotiation, macros
before each command, every SMTP stage, body chunks of at most 65535 bytes, and the filter's
replies, including the modification requests sent at end of message.  Standard library only.

    c = MilterClient(("127.0.0.1", port))     # or "/path/sock", "inet:PORT@HOST", "unix:/p"
    c.negotiate()
    r = c.connect("host.example", "192.0.2.7", 4711, family="4", macros={"j": "mx"})
    r = c.helo("host.example")
    r = c.mail("<a@b.example>", args=["SIZE=100"], macros={"{auth_authen}": "u"})
    r.action, r.code, r.xcode, r.text, r.lines
    c.rcpt("<u@example.org>"); c.data(); c.header("Subject", "hi"); c.eoh()
    c.body(b"text\r\n"); r = c.eom(); r.mods, r.added_headers(), r.quarantine
    c.abort(); c.quit(); c.close()

Every socket operation has a timeout (MilterClient(timeout=10.0)): a filter that stops
answering raises MilterTimeout, one that hangs up raises MilterClosed, one that breaks the
protocol raises MilterProtocolError.  All three derive from MilterError.
"""

import re
import socket
import struct

__all__ = [
    "MilterClient", "Response", "Mod", "Transaction", "MilterError", "MilterTimeout",
    "MilterClosed", "MilterProtocolError", "parse_address", "POSTFIX_MACROS",
]

PROTOCOL_VERSION = 6
CHUNK_SIZE = 65535  # MILTER_CHUNK_SIZE: what MTAs put in one SMFIC_BODY

# Commands, MTA to filter.
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_QUIT_NC = b"K"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"
SMFIC_UNKNOWN = b"U"

# Actions the filter may request (SMFIF_*).
SMFIF_ADDHDRS = 0x001
SMFIF_CHGBODY = 0x002
SMFIF_ADDRCPT = 0x004
SMFIF_DELRCPT = 0x008
SMFIF_CHGHDRS = 0x010
SMFIF_QUARANTINE = 0x020
SMFIF_CHGFROM = 0x040
SMFIF_ADDRCPT_PAR = 0x080
SMFIF_SETSYMLIST = 0x100
SMFIF_ALL = 0x1FF

# Protocol flags (SMFIP_*).
SMFIP_NOCONNECT = 0x000001
SMFIP_NOHELO = 0x000002
SMFIP_NOMAIL = 0x000004
SMFIP_NORCPT = 0x000008
SMFIP_NOBODY = 0x000010
SMFIP_NOHDRS = 0x000020
SMFIP_NOEOH = 0x000040
SMFIP_NR_HDR = 0x000080
SMFIP_NOUNKNOWN = 0x000100
SMFIP_NODATA = 0x000200
SMFIP_SKIP = 0x000400
SMFIP_RCPT_REJ = 0x000800
SMFIP_NR_CONN = 0x001000
SMFIP_NR_HELO = 0x002000
SMFIP_NR_MAIL = 0x004000
SMFIP_NR_RCPT = 0x008000
SMFIP_NR_DATA = 0x010000
SMFIP_NR_UNKN = 0x020000
SMFIP_NR_EOH = 0x040000
SMFIP_NR_BODY = 0x080000
SMFIP_HDR_LEADSPC = 0x100000
# What Postfix 3.7 offers with milter_protocol = 6.
SMFIP_POSTFIX = 0x1FFFFF

FLAG_NAMES = {
    SMFIP_NOCONNECT: "NOCONNECT", SMFIP_NOHELO: "NOHELO", SMFIP_NOMAIL: "NOMAIL",
    SMFIP_NORCPT: "NORCPT", SMFIP_NOBODY: "NOBODY", SMFIP_NOHDRS: "NOHDRS",
    SMFIP_NOEOH: "NOEOH", SMFIP_NR_HDR: "NR_HDR", SMFIP_NOUNKNOWN: "NOUNKNOWN",
    SMFIP_NODATA: "NODATA", SMFIP_SKIP: "SKIP", SMFIP_RCPT_REJ: "RCPT_REJ",
    SMFIP_NR_CONN: "NR_CONN", SMFIP_NR_HELO: "NR_HELO", SMFIP_NR_MAIL: "NR_MAIL",
    SMFIP_NR_RCPT: "NR_RCPT", SMFIP_NR_DATA: "NR_DATA", SMFIP_NR_UNKN: "NR_UNKN",
    SMFIP_NR_EOH: "NR_EOH", SMFIP_NR_BODY: "NR_BODY", SMFIP_HDR_LEADSPC: "HDR_LEADSPC",
}

# Macro stages as numbered in the negotiate reply (SMFIM_*), with the command whose
# SMFIC_MACRO packet carries them.
MACRO_STAGES = ["connect", "helo", "mail", "rcpt", "data", "eom", "eoh"]
STAGE_COMMAND = {
    "connect": SMFIC_CONNECT, "helo": SMFIC_HELO, "mail": SMFIC_MAIL, "rcpt": SMFIC_RCPT,
    "data": SMFIC_DATA, "eoh": SMFIC_EOH, "eom": SMFIC_BODYEOB, "unknown": SMFIC_UNKNOWN,
}

# Postfix 3.7's default milter_*_macros: pass as MilterClient(mta_macros=POSTFIX_MACROS) to
# send only what a stock Postfix would when the filter sets no symbol list.
POSTFIX_MACROS = {
    "connect": ["j", "{daemon_name}", "{daemon_addr}", "v", "_"],
    "helo": ["{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}",
             "{cert_issuer}"],
    "mail": ["i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}",
             "{mail_host}", "{mail_mailer}"],
    "rcpt": ["i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"],
    "data": ["i"],
    "eoh": ["i"],
    "eom": ["i"],
    "unknown": [],
}

# Reply commands, filter to MTA.
DECISIONS = {
    b"c": "continue", b"a": "accept", b"r": "reject", b"t": "tempfail", b"d": "discard",
    b"s": "skip", b"4": "shutdown", b"f": "connfail",
}
MOD_COMMANDS = {
    b"h": ("add_header", SMFIF_ADDHDRS),
    b"i": ("insert_header", SMFIF_ADDHDRS),
    b"m": ("change_header", SMFIF_CHGHDRS),
    b"+": ("add_rcpt", SMFIF_ADDRCPT),
    b"2": ("add_rcpt_par", SMFIF_ADDRCPT_PAR),
    b"-": ("del_rcpt", SMFIF_DELRCPT),
    b"e": ("change_from", SMFIF_CHGFROM),
    b"b": ("replace_body", SMFIF_CHGBODY),
    b"q": ("quarantine", SMFIF_QUARANTINE),
}

# Largest packet a default libmilter accepts (MILTER_MAX_DATA_SIZE); we refuse to send more.
MAX_DATA = 65535
# Largest packet we accept from the filter (Postfix allows INT_MAX/2; a test needs far less).
MAX_REPLY = 64 * 1024 * 1024


class MilterError(Exception):
    """Anything that went wrong talking to the filter."""


class MilterTimeout(MilterError):
    """The filter did not answer (or read) within the timeout."""


class MilterClosed(MilterError):
    """The filter closed the connection."""


class MilterProtocolError(MilterError):
    """The filter sent something an MTA would refuse."""


def parse_address(address):
    """Returns (family, sockaddr) for ("host", port), "/unix/path", "unix:/path",
    "local:/path", "inet:PORT@HOST", "inet6:PORT@HOST" or "inet:HOST:PORT" (Postfix form)."""
    if isinstance(address, tuple):
        host = address[0]
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        return fam, address
    if not isinstance(address, str):
        raise ValueError("bad milter address %r" % (address,))
    if address.startswith("/"):
        return socket.AF_UNIX, address
    kind, _, rest = address.partition(":")
    if kind in ("unix", "local"):
        return socket.AF_UNIX, rest
    if kind in ("inet", "inet6"):
        if "@" in rest:
            port, _, host = rest.partition("@")
        else:
            host, _, port = rest.rpartition(":")
        host = host.strip("[]") or ("::1" if kind == "inet6" else "127.0.0.1")
        fam = socket.AF_INET6 if kind == "inet6" or ":" in host else socket.AF_INET
        return fam, (host, int(port))
    raise ValueError("bad milter address %r" % (address,))


def _b(s):
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8", "surrogateescape")


def _s(b):
    return b.decode("utf-8", "surrogateescape")


def _cstr(s):
    s = _b(s)
    if b"\0" in s:
        raise ValueError("NUL in milter string %r" % (s,))
    return s + b"\0"


def _macro_key(name):
    """'{i}' and 'i' are the same macro (libmilter looks both up)."""
    name = name.strip()
    if name.startswith("{") and name.endswith("}") and len(name) == 3:
        return name[1]
    return name


_REPLY_LINE = re.compile(r"^([245][0-9][0-9])([ -]?)(?:([245]\.[0-9]{1,3}\.[0-9]{1,3}) )?(.*)$",
                         re.S)


def _unpercent(text):
    """What Postfix does to a filter's reply: '%%' becomes '%', a lone '%' is dropped."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            i += 1
            if i < len(text):
                out.append(text[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class Mod:
    """One modification request received at end of message.

    kind: add_header, insert_header, change_header, add_rcpt, add_rcpt_par, del_rcpt,
    change_from, replace_body, quarantine.  Fields that do not apply are None.
    leadspc: whether SMFIP_HDR_LEADSPC was negotiated (header values then carry their own
    leading space)."""

    def __init__(self, kind, name=None, value=None, index=None, args=None, data=None,
                 leadspc=False):
        self.kind = kind
        self.name = name
        self.value = value
        self.index = index
        self.args = args
        self.data = data
        self.leadspc = leadspc

    @property
    def header_line(self):
        """The header as the MTA writes it: 'Name: value'."""
        if self.name is None:
            return None
        return "%s:%s%s" % (self.name, "" if self.leadspc else " ", self.value)

    @property
    def reason(self):
        return self.value if self.kind == "quarantine" else None

    def __eq__(self, other):
        if isinstance(other, tuple):
            return self.astuple() == other
        return isinstance(other, Mod) and self.astuple() == other.astuple()

    def astuple(self):
        t = (self.kind, self.name, self.value, self.index, self.args, self.data)
        return tuple(x for x in t if x is not None)

    def __repr__(self):
        return "Mod%r" % (self.astuple(),)


class Response:
    """The filter's answer to one command.

    action: continue accept reject tempfail discard skip shutdown connfail, or 'noreply'
    (SMFIP_NR_* negotiated: no answer expected) or 'skipped' (the filter asked not to get
    this command, so it was not sent).  A reply code (SMFIR_REPLYCODE) gives reject or
    tempfail by its first digit, with replycode True.
    code '550', xcode '5.7.1' or None, lines: the text of each reply line, text: the lines
    joined with '\\n', as the SMTP client sees them ('%%' undone as Postfix and Sendmail do).
    raw: the reply text exactly as on the wire (str).  mods: modification requests."""

    def __init__(self, stage, action, cmd=None):
        self.stage = stage
        self.action = action
        self.cmd = cmd
        self.replycode = False
        self.code = None
        self.xcode = None
        self.lines = []
        self.raw = None
        self.mods = []
        self.progress = 0

    @property
    def text(self):
        return "\n".join(self.lines) if self.lines else None

    @property
    def smtp(self):
        """The reply as SMTP lines ('550-5.7.1 a', '550 5.7.1 b'), or None."""
        if self.code is None:
            return None
        out = []
        for i, line in enumerate(self.lines or [""]):
            sep = " " if i == len(self.lines) - 1 or not self.lines else "-"
            out.append("%s%s%s%s" % (self.code, sep, self.xcode + " " if self.xcode else "",
                                     line))
        return out

    @property
    def quarantine(self):
        """The quarantine reason, or None."""
        for m in self.mods:
            if m.kind == "quarantine":
                return m.value
        return None

    def mods_of(self, kind):
        return [m for m in self.mods if m.kind == kind]

    def added_headers(self):
        """[(name, value)] of add_header and insert_header requests, value without the
        leading space the MTA supplies."""
        out = []
        for m in self.mods:
            if m.kind in ("add_header", "insert_header"):
                v = m.value
                if m.leadspc and v.startswith(" "):
                    v = v[1:]
                out.append((m.name, v))
        return out

    @property
    def terminal(self):
        """True if an MTA stops sending this message (or connection) to the filter."""
        return self.action in ("accept", "reject", "tempfail", "discard", "shutdown",
                               "connfail")

    def _set_reply(self, raw):
        self.raw = raw
        text = _unpercent(raw)
        self.lines = []
        for n, line in enumerate(text.split("\r\n")):
            m = _REPLY_LINE.match(line)
            if m is None:
                raise MilterProtocolError("malformed reply line %r in %r" % (line, raw))
            code, sep, xcode, rest = m.groups()
            if n == 0:
                self.code, self.xcode = code, xcode
            elif code != self.code:
                raise MilterProtocolError("reply code changes within %r" % (raw,))
            self.lines.append(rest)
        if self.code[0] not in "45":
            raise MilterProtocolError("reply code %s is not 4xx or 5xx: %r" % (self.code, raw))
        if self.xcode is not None and self.xcode[0] != self.code[0]:
            # Postfix calls this a malformed reply and drops the filter for the session.
            raise MilterProtocolError("xcode %s does not match code %s: %r"
                                      % (self.xcode, self.code, raw))
        self.action = "tempfail" if self.code[0] == "4" else "reject"

    def __repr__(self):
        s = "<Response %s %s" % (self.stage, self.action)
        if self.code:
            s += " %s %s %r" % (self.code, self.xcode, self.text)
        if self.mods:
            s += " mods=%r" % (self.mods,)
        return s + ">"


class Transaction:
    """What transaction() saw: one Response per stage (rcpts and bodies are lists).
    stopped: the stage whose terminal answer ended the message, or None.
    accepted: the recipients the filter did not refuse."""

    def __init__(self):
        self.mail = None
        self.rcpts = []
        self.data = None
        self.headers = []
        self.eoh = None
        self.bodies = []
        self.eom = None
        self.stopped = None
        self.accepted = []

    @property
    def final(self):
        """The Response that decided the message (the terminal one, or eom)."""
        if self.stopped == "rcpt":
            return self.rcpts[-1]
        if self.stopped is None:
            return self.eom
        r = getattr(self, {"header": "headers", "body": "bodies"}.get(self.stopped,
                                                                    self.stopped))
        return r[-1] if isinstance(r, list) else r

    def __repr__(self):
        return "<Transaction stopped=%s final=%r>" % (self.stopped, self.final)


class MilterClient:
    """One MTA-to-filter connection.

    address: see parse_address().  timeout: seconds for every socket operation.
    actions/protocol: what the MTA offers in SMFIC_OPTNEG (default: what Postfix offers).
    strict: raise MilterProtocolError where Postfix would drop the filter (modification
    outside end of message, an action not negotiated, a reply not allowed at a stage).
    mta_macros: {stage: [names]} the MTA knows by default (e.g. POSTFIX_MACROS); None sends
    every macro the test gives.  A symbol list the filter sets in its negotiate reply always
    replaces the default for its stage, as with Postfix and Sendmail."""

    def __init__(self, address, timeout=10.0, actions=SMFIF_ALL, protocol=SMFIP_POSTFIX,
                 strict=True, mta_macros=None, connect=True):
        self.address = address
        self.timeout = timeout
        self.offer_actions = actions
        self.offer_protocol = protocol
        self.strict = strict
        self.mta_macros = mta_macros
        self.sock = None
        self.version = None
        self.actions = 0
        self.protocol = 0
        self.symlists = {}
        self.sent_macros = []  # (stage, {name: value}) as sent, for assertions
        self.skip_body = False
        if connect:
            self.open()

    # --- connection

    def open(self):
        fam, addr = parse_address(self.address)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        if fam != socket.AF_UNIX:
            # An MTA writes a macro packet and its command together; without this the second
            # small write waits for the first one's ACK (Nagle), about 40 ms per command.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(addr)
        except socket.timeout:
            s.close()
            raise MilterTimeout("connect to %r timed out" % (self.address,))
        except OSError:
            s.close()
            raise
        self.sock = s
        return self

    def close(self):
        """Drops the connection without QUIT (an MTA that lost its client)."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- packets

    def send_packet(self, cmd, data=b""):
        if self.sock is None:
            raise MilterClosed("not connected")
        if len(data) > MAX_DATA and cmd != SMFIC_BODY:
            raise ValueError("command %r data of %d bytes exceeds %d" % (cmd, len(data),
                                                                          MAX_DATA))
        pkt = struct.pack("!I", len(data) + 1) + cmd + data
        try:
            self.sock.sendall(pkt)
        except socket.timeout:
            raise MilterTimeout("sending %r: filter not reading for %ss" % (cmd, self.timeout))
        except (BrokenPipeError, ConnectionResetError) as e:
            raise MilterClosed("sending %r: %s" % (cmd, e))

    def _recv_exact(self, n, what):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise MilterTimeout("no %s from filter within %ss" % (what, self.timeout))
            except ConnectionResetError as e:
                raise MilterClosed("reading %s: %s" % (what, e))
            if not chunk:
                raise MilterClosed("filter closed the connection while we waited for %s"
                                   % what)
            buf += chunk
        return bytes(buf)

    def recv_packet(self, what="a reply"):
        """Returns (cmd, data)."""
        if self.sock is None:
            raise MilterClosed("not connected")
        (length,) = struct.unpack("!I", self._recv_exact(4, what))
        if length < 1 or length > MAX_REPLY:
            raise MilterProtocolError("bad packet length %d" % length)
        pkt = self._recv_exact(length, what)
        return pkt[:1], pkt[1:]

    def is_closed_by_peer(self, wait=None):
        """True if the filter has closed its end (EOF readable), waiting at most wait s."""
        old = self.sock.gettimeout()
        self.sock.settimeout(self.timeout if wait is None else wait)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
            return data == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)

    # --- negotiation

    def negotiate(self, version=PROTOCOL_VERSION, actions=None, protocol=None):
        """SMFIC_OPTNEG.  Records version, actions, protocol and symlists ({stage: [names]})
        of the filter's reply, and returns self."""
        actions = self.offer_actions if actions is None else actions
        protocol = self.offer_protocol if protocol is None else protocol
        self.send_packet(SMFIC_OPTNEG, struct.pack("!III", version, actions, protocol))
        cmd, data = self.recv_packet("the negotiate reply")
        if cmd != SMFIC_OPTNEG:
            raise MilterProtocolError("negotiate answered with %r %r" % (cmd, data))
        if len(data) < 12:
            raise MilterProtocolError("short negotiate reply %r" % (data,))
        self.version, self.actions, self.protocol = struct.unpack("!III", data[:12])
        if self.version > version or self.version < 2:
            raise MilterProtocolError("filter protocol version %d (we speak %d)"
                                      % (self.version, version))
        if self.actions & ~actions:
            raise MilterProtocolError("filter requests actions 0x%x beyond offered 0x%x"
                                      % (self.actions, actions))
        if self.strict and self.protocol & ~protocol:
            raise MilterProtocolError("filter protocol flags 0x%x beyond offered 0x%x"
                                      % (self.protocol, protocol))
        self.symlists = {}
        rest = data[12:]
        while rest:
            if len(rest) < 5:
                raise MilterProtocolError("truncated symbol list %r" % (rest,))
            (idx,) = struct.unpack("!I", rest[:4])
            end = rest.find(b"\0", 4)
            if end < 0:
                raise MilterProtocolError("unterminated symbol list %r" % (rest,))
            names = _s(rest[4:end]).split()
            rest = rest[end + 1:]
            if idx >= len(MACRO_STAGES):
                continue  # Postfix ignores unknown macro classes too
            self.symlists[MACRO_STAGES[idx]] = names
        if self.symlists and not self.actions & SMFIF_SETSYMLIST and self.strict:
            raise MilterProtocolError("symbol lists sent without SMFIF_SETSYMLIST")
        return self

    def flag(self, bit):
        return bool(self.protocol & bit)

    @property
    def flag_names(self):
        return [n for b, n in sorted(FLAG_NAMES.items()) if self.protocol & b]

    # --- macros

    def macros_to_send(self, stage, macros):
        """The subset of macros the MTA would send at stage: those in the filter's symbol
        list for the stage if it set one, else those the MTA knows (mta_macros), else all."""
        if not macros:
            return {}
        wanted = self.symlists.get(stage)
        if wanted is None and self.mta_macros is not None:
            wanted = self.mta_macros.get(stage, [])
        if wanted is None:
            return dict(macros)
        keys = {_macro_key(n) for n in wanted}
        return {k: v for k, v in macros.items() if _macro_key(k) in keys}

    def send_macros(self, stage, macros):
        if stage not in STAGE_COMMAND:
            raise ValueError("MTAs send no macros at stage %r (libmilter would fail)" % stage)
        send = self.macros_to_send(stage, macros)
        # Postfix sends the packet even when empty: libmilter keeps a stage's macros until
        # the next packet for that stage replaces them.
        if not send and stage == "unknown":
            return
        data = bytearray(STAGE_COMMAND[stage])
        for k, v in send.items():
            data += _cstr(k) + _cstr(v)
        self.sent_macros.append((stage, send))
        self.send_packet(SMFIC_MACRO, bytes(data))

    # --- replies

    def read_response(self, stage, allow_mods=False):
        """Reads replies until a decision: progress packets are counted, modification
        requests collected (only legal at end of message)."""
        r = Response(stage, None)
        while True:
            cmd, data = self.recv_packet("the %s reply" % stage)
            if cmd == b"p":
                r.progress += 1
                continue
            if cmd in DECISIONS:
                if data and self.strict:
                    raise MilterProtocolError("reply %r at %s carries data %r"
                                              % (cmd, stage, data))
                r.action, r.cmd = DECISIONS[cmd], _s(cmd)
                self._check_decision(r)
                return r
            if cmd == b"y":
                if not data.endswith(b"\0"):
                    raise MilterProtocolError("reply code not NUL-terminated: %r" % (data,))
                r.cmd = "y"
                r.replycode = True
                r._set_reply(_s(data[:-1]))
                return r
            if cmd in MOD_COMMANDS:
                r.mods.append(self._parse_mod(cmd, data, stage, allow_mods))
                continue
            raise MilterProtocolError("unexpected reply %r %r at %s" % (cmd, data, stage))

    def _check_decision(self, r):
        if not self.strict:
            return
        if r.action == "skip" and (r.stage != "body" or not self.flag(SMFIP_SKIP)):
            raise MilterProtocolError("SMFIR_SKIP at %s (SKIP negotiated: %s)"
                                      % (r.stage, self.flag(SMFIP_SKIP)))
        if r.action == "discard" and r.stage in ("connect", "helo"):
            # Postfix: "DISCARD action is not allowed for connect or helo".
            raise MilterProtocolError("discard at %s" % r.stage)

    def _parse_mod(self, cmd, data, stage, allow_mods):
        kind, need = MOD_COMMANDS[cmd]
        if self.strict and not allow_mods:
            raise MilterProtocolError("%s request at %s: only allowed at end of message"
                                      % (kind, stage))
        if self.strict and not self.actions & need:
            raise MilterProtocolError("%s request without negotiating action 0x%x"
                                      % (kind, need))
        lead = self.flag(SMFIP_HDR_LEADSPC)
        if kind == "replace_body":
            return Mod(kind, data=data)
        if kind in ("insert_header", "change_header"):
            if len(data) < 4:
                raise MilterProtocolError("short %s %r" % (kind, data))
            (index,) = struct.unpack("!I", data[:4])
            parts = self._strings(data[4:], 2, kind)
            return Mod(kind, name=parts[0], value=parts[1], index=index, leadspc=lead)
        if kind == "add_header":
            name, value = self._strings(data, 2, kind)
            return Mod(kind, name=name, value=value, leadspc=lead)
        if kind == "quarantine":
            (reason,) = self._strings(data, 1, kind)
            return Mod(kind, value=reason)
        if kind in ("change_from", "add_rcpt_par"):
            parts = self._strings(data, None, kind)
            if not 1 <= len(parts) <= 2:
                raise MilterProtocolError("bad %s %r" % (kind, data))
            return Mod(kind, value=parts[0], args=parts[1] if len(parts) > 1 else "")
        (addr,) = self._strings(data, 1, kind)
        return Mod(kind, value=addr)

    @staticmethod
    def _strings(data, n, what):
        if not data.endswith(b"\0"):
            raise MilterProtocolError("%s: strings not NUL-terminated: %r" % (what, data))
        parts = [_s(p) for p in data[:-1].split(b"\0")]
        if n is not None and len(parts) != n:
            raise MilterProtocolError("%s: expected %d strings, got %r" % (what, n, parts))
        return parts

    def command(self, stage, cmd, data=b"", macros=None, nosend=0, noreply=0,
                allow_mods=False):
        """Sends macros then one command, honouring SMFIP_NO* (nothing but the macros is
        sent, as Postfix does) and SMFIP_NR_* (no reply is read)."""
        if stage in STAGE_COMMAND:
            self.send_macros(stage, macros)
        elif macros:
            raise ValueError("MTAs send no macros at stage %r (libmilter would fail)" % stage)
        if nosend and self.flag(nosend):
            return Response(stage, "skipped")
        self.send_packet(cmd, data)
        if noreply and self.flag(noreply):
            return Response(stage, "noreply")
        return self.read_response(stage, allow_mods)

    # --- SMTP stages

    def connect(self, hostname, address=None, port=0, family=None, macros=None):
        """SMFIC_CONNECT.  family: '4', '6', 'L' (unix: address is the socket path) or 'U'
        (unknown: neither port nor address is sent).  Default: from the address."""
        if family is None:
            family = "U" if address is None else ("6" if ":" in address else "4")
        data = _cstr(hostname) + _b(family)
        if family != "U":
            data += struct.pack("!H", int(port)) + _cstr(address or "")
        return self.command("connect", SMFIC_CONNECT, data, macros, SMFIP_NOCONNECT,
                            SMFIP_NR_CONN)

    def helo(self, name, macros=None):
        return self.command("helo", SMFIC_HELO, _cstr(name), macros, SMFIP_NOHELO,
                            SMFIP_NR_HELO)

    def mail(self, sender, args=(), macros=None):
        """sender as in the SMTP command, with its angle brackets ('<a@b>', '<>')."""
        self.skip_body = False
        data = b"".join(_cstr(a) for a in [sender] + list(args))
        return self.command("mail", SMFIC_MAIL, data, macros, SMFIP_NOMAIL, SMFIP_NR_MAIL)

    def rcpt(self, rcpt, args=(), macros=None):
        data = b"".join(_cstr(a) for a in [rcpt] + list(args))
        return self.command("rcpt", SMFIC_RCPT, data, macros, SMFIP_NORCPT, SMFIP_NR_RCPT)

    def data(self, macros=None):
        return self.command("data", SMFIC_DATA, b"", macros, SMFIP_NODATA, SMFIP_NR_DATA)

    def header(self, name, value, raw=False):
        """value as after 'Name: ' (no leading space).  Folded lines may be given with CRLF
        or LF; they are sent with LF, as MTAs do.  With SMFIP_HDR_LEADSPC the MTA keeps the
        space after the colon, so it is put back.  raw=True sends value untouched."""
        v = _b(value)
        if not raw:
            v = v.replace(b"\r\n", b"\n")
            if self.flag(SMFIP_HDR_LEADSPC):
                v = b" " + v
        return self.command("header", SMFIC_HEADER, _cstr(name) + _cstr(v), None,
                            SMFIP_NOHDRS, SMFIP_NR_HDR)

    def eoh(self, macros=None):
        return self.command("eoh", SMFIC_EOH, b"", macros, SMFIP_NOEOH, SMFIP_NR_EOH)

    def body_chunk(self, chunk):
        """One SMFIC_BODY packet, as given (may exceed 65535 for tests of the filter)."""
        if self.skip_body:
            return Response("body", "skipped")
        r = self.command("body", SMFIC_BODY, _b(chunk), None, SMFIP_NOBODY, SMFIP_NR_BODY)
        if r.action == "skip":
            self.skip_body = True
        return r

    def body(self, data, chunk_size=CHUNK_SIZE):
        """Sends data in chunks of chunk_size bytes as MTAs do; stops at the first terminal
        answer or SMFIR_SKIP.  Returns the list of Responses, one per chunk sent."""
        data = _b(data)
        out = []
        for off in range(0, len(data), chunk_size):
            r = self.body_chunk(data[off:off + chunk_size])
            out.append(r)
            if r.terminal or r.action in ("skip", "skipped"):
                break
        return out

    def eom(self, macros=None):
        """SMFIC_BODYEOB: the only stage at which modification requests are legal."""
        return self.command("eom", SMFIC_BODYEOB, b"", macros, allow_mods=True)

    def unknown(self, line, macros=None):
        return self.command("unknown", SMFIC_UNKNOWN, _cstr(line), macros, SMFIP_NOUNKNOWN,
                            SMFIP_NR_UNKN)

    def abort(self):
        """SMFIC_ABORT (RSET, or the message ended early): no reply."""
        self.send_packet(SMFIC_ABORT)

    def quit(self):
        """SMFIC_QUIT: no reply; the filter closes.  Then we close."""
        try:
            self.send_packet(SMFIC_QUIT)
        finally:
            self.close()

    def quit_nc(self):
        """SMFIC_QUIT_NC: end this SMTP session, keep the filter connection for the next
        (send connect() next; negotiation is not repeated)."""
        self.send_packet(SMFIC_QUIT_NC)

    # --- helpers

    def session(self, hostname="client.example", address="192.0.2.1", port=4711,
                family=None, helo="client.example", macros=None):
        """negotiate (if not done), connect and HELO (helo=None: none).
        macros: {"connect": {...}, "helo": {...}}.  Returns (connect, helo) Responses."""
        macros = macros or {}
        if self.version is None:
            self.negotiate()
        rc = self.connect(hostname, address, port, family, macros.get("connect"))
        rh = None
        if helo is not None and not rc.terminal:
            rh = self.helo(helo, macros.get("helo"))
        return rc, rh

    def transaction(self, sender, rcpts, headers=(), body=b"", mail_args=(), macros=None,
                    abort_on_stop=True):
        """One message, the way an MTA drives the filter.  rcpts: addresses, or
        (address, args) pairs.  headers: (name, value) pairs.  macros: {stage: {...}} for
        mail, rcpt (one dict for all, or a list with one per recipient), data, eoh, eom.
        Stops at the first terminal answer (at rcpt: only once no recipient is left);
        refused recipients are dropped as the MTA would.  After a stop before end of message
        it sends SMFIC_ABORT (Postfix does at the next MAIL or RSET) unless abort_on_stop
        is False.  Returns a Transaction."""
        macros = macros or {}
        t = Transaction()
        t.mail = self.mail(sender, mail_args, macros.get("mail"))
        if t.mail.terminal:
            t.stopped = "mail"
            return self._stop(t, abort_on_stop)
        rmac = macros.get("rcpt")
        for i, rc in enumerate(rcpts):
            addr, args = (rc, ()) if isinstance(rc, str) else rc
            m = rmac[i] if isinstance(rmac, list) else rmac
            r = self.rcpt(addr, args, m)
            t.rcpts.append(r)
            if r.action in ("accept", "discard"):
                t.accepted.append(addr)
                t.stopped = "rcpt"
                return self._stop(t, abort_on_stop)
            if r.action not in ("reject", "tempfail", "shutdown", "connfail"):
                t.accepted.append(addr)
            elif r.action in ("shutdown", "connfail"):
                t.stopped = "rcpt"
                return t
        if not t.accepted:
            t.stopped = "rcpt"
            return self._stop(t, abort_on_stop)
        steps = [("data", lambda: self.data(macros.get("data")))]
        steps += [("header", (lambda n=n, v=v: self.header(n, v))) for n, v in headers]
        steps += [("eoh", lambda: self.eoh(macros.get("eoh")))]
        for stage, fn in steps:
            r = fn()
            if stage == "header":
                t.headers.append(r)
            else:
                setattr(t, stage, r)
            if r.terminal:
                t.stopped = stage
                return self._stop(t, abort_on_stop)
        t.bodies = self.body(body) if body else []
        if t.bodies and t.bodies[-1].terminal:
            t.stopped = "body"
            return self._stop(t, abort_on_stop)
        t.eom = self.eom(macros.get("eom"))
        return t

    def _stop(self, t, abort):
        if abort and t.final.action not in ("shutdown", "connfail"):
            self.abort()
        return t
