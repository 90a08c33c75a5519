#!/usr/bin/env python3
"""
Protocol tests of milter-policy: the daemon is driven over the milter protocol the way
Postfix drives it (tests/proto/milterclient.py), with the rule files in tests/proto/policies/,
and every answer is checked against SPEC.md: action, code, enhanced code and text.

    python3 tests/proto/test_protocol.py [-v] [TestClass[.test_name] ...]

The daemon is $MP_DAEMON (default: filter/milter-policy in this tree).  MP_KEEP=1 keeps the
temporary directories (config, rules, stderr log).  Prints "N passed, N failed" last; exits
non-zero if any test failed.
"""

import os
import socket
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import runner  # noqa: E402
from daemon import Daemon  # noqa: E402
from milterclient import (POSTFIX_MACROS, SMFIF_ADDHDRS, SMFIF_QUARANTINE,  # noqa: E402
                          SMFIP_NOBODY, SMFIP_NOCONNECT, SMFIP_NOEOH, SMFIP_NOHDRS,
                          SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT,
                          SMFIP_NR_CONN, SMFIP_NR_EOH, SMFIP_NR_HELO, SMFIP_NR_MAIL,
                          SMFIP_NR_RCPT, MilterClient)

PASS = ("continue", "noreply", "skipped")
EOM_PASS = ("continue", "accept")
QID = "4XyZ1"


def policy_files(name):
    """{relative path: bytes} of every file under tests/proto/policies/<name>."""
    root = os.path.join(HERE, "policies", name)
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


_daemons = {}


def get_daemon(key, **kwargs):
    """The daemon for key, started on first use and restarted if an earlier test killed it
    (that test has already failed for it)."""
    d = _daemons.get(key)
    if d is not None and d.alive():
        return d
    if d is not None:
        d.stop()
        d.cleanup()
    d = Daemon(**kwargs)
    _daemons[key] = d
    return d


def stop_daemons():
    """Stops every daemon; returns what went wrong: a non-zero exit status on SIGTERM, or a
    sanitizer report in its log (an ASan build reports leaks only at exit)."""
    problems = []
    for key, d in _daemons.items():
        status = d.stop()
        log = d.log()
        if status != 0:
            problems.append("daemon %s: exit status %s on SIGTERM" % (key, status))
        report = runner.sanitizer_report(log)
        if report:
            problems.append("daemon %s: sanitizer report:\n%s" % (key, report))
        d.cleanup()
    _daemons.clear()
    return problems


def qid_macros(qid=QID, mail=None):
    return {"mail": mail, "rcpt": {"i": qid}, "data": {"i": qid}, "eoh": {"i": qid},
            "eom": {"i": qid}}


class Base(runner.DaemonCase):
    key = "main"
    policy = "main"
    config = {}
    unix = False
    client_options = {"mta_macros": POSTFIX_MACROS}

    def start_daemon(self):
        return get_daemon(self.key, rules=policy_files(self.policy), config=self.config,
                          unix=self.unix)

    # --- helpers

    def session(self, ip="192.0.2.1", name="client.example", helo="client.example",
                family=None, port=4711, connect_macros=None, helo_macros=None):
        """A connection through HELO; both answers must let the client go on."""
        c = self.client()
        cm = {"j": "mx.example", "{daemon_name}": "smtpd", "v": "Postfix 3.7.11"}
        cm.update(connect_macros or {})
        r = c.connect(name, ip, port, family, macros=cm)
        self.assertPass(r, "connect from %s [%s]" % (name, ip))
        if helo is not None:
            self.assertPass(c.helo(helo, macros=helo_macros or {}), "HELO %s" % helo)
        return c

    def message(self, c, sender, rcpts, headers=(("Subject", "hello"),),
                body=b"hello\r\n", qid=QID, mail_args=(), mail_macros=None):
        return c.transaction(sender, rcpts, headers, body, mail_args,
                             macros=qid_macros(qid, mail_macros))

    def assertPass(self, r, what=""):
        self.assertIn(r.action, PASS, "%s: expected to go on, daemon answered %r (raw %r)"
                      % (what, r, r.raw))

    def assertEomPass(self, r, what="end of message"):
        self.assertIn(r.action, EOM_PASS, "%s: expected the message to pass, daemon "
                      "answered %r (raw %r)" % (what, r, r.raw))

    def assertReply(self, r, action, code=None, xcode=None, text=None, lines=None, what=""):
        got = (r.action, r.code, r.xcode, r.lines if lines is not None else r.text)
        want = (action, code, xcode, lines if lines is not None else text)
        self.assertEqual(got, want, "%s: daemon answered %r (raw %r)" % (what, r, r.raw))

    def assertLog(self, needle, *also):
        text = self.d.wait_log(needle, self.mark)
        self.assertIsNotNone(text, "log has no %r; log since the test began:\n%s"
                             % (needle, self.d.log_since(self.mark)))
        line = [ln for ln in text.splitlines() if needle in ln][0]
        for a in also:
            self.assertIn(a, line, "log line %r lacks %r" % (line, a))
        return line

    def through_eoh(self, c, sender, rcpt, headers, qid=QID):
        m = qid_macros(qid)
        self.assertPass(c.mail(sender), "MAIL")
        self.assertPass(c.rcpt(rcpt, macros=m["rcpt"]), "RCPT")
        self.assertPass(c.data(macros=m["data"]), "DATA")
        for n, v in headers:
            self.assertPass(c.header(n, v), "header %s" % n)
        return c.eoh(macros=m["eoh"])


class T00Negotiation(Base):
    def test_negotiate_asks_what_the_rules_need(self):
        c = self.client()
        self.assertGreaterEqual(c.version, 2)
        self.assertTrue(c.actions & SMFIF_ADDHDRS, "add_header needs SMFIF_ADDHDRS")
        self.assertTrue(c.actions & SMFIF_QUARANTINE, "quarantine needs SMFIF_QUARANTINE")
        for bit, name in [(SMFIP_NOCONNECT, "NOCONNECT"), (SMFIP_NOHELO, "NOHELO"),
                          (SMFIP_NOMAIL, "NOMAIL"), (SMFIP_NORCPT, "NORCPT"),
                          (SMFIP_NOHDRS, "NOHDRS"), (SMFIP_NOEOH, "NOEOH"),
                          (SMFIP_NOBODY, "NOBODY")]:
            self.assertFalse(c.protocol & bit, "daemon asks for %s but has rules there" % name)
        # No reply at a stage means no reject there (NOTES).  Headers and body chunks are
        # answered at end of headers / end of message, so NR_HDR and NR_BODY are fine.
        for bit, name in [(SMFIP_NR_CONN, "NR_CONN"), (SMFIP_NR_HELO, "NR_HELO"),
                          (SMFIP_NR_MAIL, "NR_MAIL"), (SMFIP_NR_RCPT, "NR_RCPT"),
                          (SMFIP_NR_EOH, "NR_EOH")]:
            self.assertFalse(c.protocol & bit, "daemon asks for %s" % name)

    def test_nothing_matches_everything_passes(self):
        c = self.session()
        t = self.message(c, "<a@plain.example>", ["<b@ok.example>", "<c@ok.example>"],
                         headers=[("Subject", "hi"), ("From", "a@plain.example")],
                         body=b"just text\r\n")
        self.assertIsNone(t.stopped, repr(t))
        for r in [t.mail, t.data, t.eoh] + t.rcpts + t.headers + t.bodies:
            self.assertPass(r, r.stage)
        self.assertEomPass(t.eom)
        self.assertEqual(t.eom.mods, [], "no rule adds anything: %r" % t.eom)


class T10Connect(Base):
    def test_connect_reject_is_answered_at_helo(self):
        c = self.session(ip="192.0.2.66", helo=None)
        self.assertReply(c.helo("client.example"), "reject", "554", "5.7.1",
                         "Connection from 192.0.2.66 refused", what="HELO after connect reject")

    def test_connect_reject_is_answered_at_mail_without_helo(self):
        c = self.session(ip="192.0.2.66", helo=None)
        self.assertReply(c.mail("<a@plain.example>"), "reject", "554", "5.7.1",
                         "Connection from 192.0.2.66 refused", what="MAIL after connect reject")

    def test_connect_tempfail_421(self):
        c = self.session(ip="192.0.2.67", name="busy.client.example", helo=None)
        self.assertReply(c.helo("busy.client.example"), "tempfail", "421", "4.7.0",
                         "Too busy for busy.client.example, closing")

    def test_connect_accept(self):
        c = self.client()
        r = c.connect("friend.example", "192.0.2.68", 4711)
        self.assertEqual(r.action, "accept", repr(r))

    def test_cidr_list_inline_ipv4(self):
        c = self.session(ip="198.51.100.99", helo=None)
        self.assertReply(c.helo("x.example"), "reject", "550", "5.7.1",
                         "Network of 198.51.100.99 blocked")

    def test_cidr_list_file_host_and_network(self):
        for ip in ("203.0.113.7", "203.0.113.200"):
            c = self.session(ip=ip, helo=None)
            self.assertReply(c.helo("x.example"), "reject", "550", "5.7.1",
                             "Network of %s blocked" % ip, what=ip)
        for ip in ("203.0.113.8", "203.0.113.127", "198.51.101.1"):
            self.session(ip=ip)

    def test_cidr_list_ipv6(self):
        c = self.session(ip="2001:db8:bad::25", family="6", helo=None)
        self.assertReply(c.helo("x.example"), "reject", "550", "5.7.1",
                         "Network of 2001:db8:bad::25 blocked")
        self.session(ip="2001:db8:900d::1", family="6")

    def test_client_name_domain_suffix(self):
        c = self.session(name="host1.dyn.example", helo=None)
        self.assertReply(c.helo("x.example"), "reject", "550", "5.7.1",
                         "Dynamic host host1.dyn.example refused")
        c = self.session(name="HOST2.Dyn.Example", helo=None)
        r = c.helo("x.example")
        self.assertEqual((r.action, r.code), ("reject", "550"), "case-insensitive: %r" % r)
        self.session(name="dyn.example")  # ".dyn.example" matches subdomains only
        self.session(name="nodyn.example")


    def test_macro_postfix_sends_by_default(self):
        # {daemon_addr} is in Postfix's default milter_connect_macros; a symbol list the
        # daemon sets replaces that default, so it must name the macros its rules use.
        c = self.session(connect_macros={"{daemon_addr}": "192.0.2.225"}, helo=None)
        self.assertReply(c.helo("x.example"), "reject", "550", "5.7.1", "Not on 192.0.2.225")


class T20Helo(Base):
    def test_spec_example_bare_ip_helo(self):
        # SPEC section 3's rule verbatim: its message is a double-quoted string.
        c = self.session(helo=None)
        self.assertReply(c.helo("[192.0.2.1]"), "reject", "550", "5.7.1",
                         "HELO [192.0.2.1] refused: use your host name")

    def test_helo_equality_is_case_insensitive(self):
        c = self.session(helo=None)
        self.assertReply(c.helo("LocalHost"), "reject", "550", "5.7.1",
                         "HELO LocalHost refused: use your host name")

    def test_helo_reject_default_reply(self):
        c = self.session(helo=None)
        self.assertReply(c.helo("bad.helo.example"), "reject", "550", "5.7.1",
                         "Rejected by policy")

    def test_helo_tempfail_default_reply(self):
        c = self.session(helo=None)
        self.assertReply(c.helo("busy.helo.example"), "tempfail", "451", "4.7.1",
                         "Try again later")

    def test_helo_accept(self):
        c = self.session(helo=None)
        r = c.helo("friend.helo.example")
        self.assertEqual(r.action, "accept", repr(r))

    def test_log_modifier(self):
        c = self.session(helo=None)
        self.assertPass(c.helo("logged.helo.example"), "HELO matching a log-only rule")
        self.assertLog("log modifier hit for logged.helo.example")

    def test_dry_run_logs_but_does_not_act(self):
        c = self.session(helo=None)
        self.assertPass(c.helo("dry.helo.example"), "HELO matching a dry_run rule")
        self.assertLog("would-reject-helo")
        self.assertLog("dry run hit for dry.helo.example")
        t = self.message(c, "<a@plain.example>", ["<b@ok.example>"])
        self.assertIsNone(t.stopped, repr(t))


class T30Mail(Base):
    def test_mail_reject(self):
        c = self.session()
        self.assertReply(c.mail("<spammer@bad.example>"), "reject", "550", "5.7.1",
                         "Sender <spammer@bad.example> refused")

    def test_mail_address_compare_is_case_insensitive(self):
        c = self.session()
        r = c.mail("<Spammer@BAD.Example>")
        self.assertEqual((r.action, r.code, r.xcode), ("reject", "550", "5.7.1"), repr(r))

    def test_mail_tempfail(self):
        c = self.session()
        self.assertReply(c.mail("<x@slow.example>"), "tempfail", "450", "4.2.0",
                         "Sender domain slow.example busy")

    def test_mail_discard(self):
        c = self.session()
        self.assertEqual(c.mail("<discard-me@example.org>").action, "discard")

    def test_mail_accept(self):
        c = self.session()
        self.assertEqual(c.mail("<vip@example.org>").action, "accept")

    def test_declared_size_at_mail(self):
        c = self.session()
        self.assertReply(c.mail("<a@plain.example>", args=["SIZE=20000000"]), "reject", "552",
                         "5.3.4", "Message too big")
        c.abort()
        self.assertPass(c.mail("<a@plain.example>", args=["SIZE=1000"]), "SIZE=1000")
        c.abort()
        self.assertPass(c.mail("<a@plain.example>"), "no SIZE: comparison is false")

    def test_domain_list_exact_and_suffix(self):
        for sender, dom in (("<x@spam.example>", "spam.example"),
                            ("<x@sub.spam.test>", "sub.spam.test")):
            c = self.session()
            self.assertReply(c.mail(sender), "reject", "550", "5.7.1",
                             "Domain %s blocked" % dom, what=sender)
        for sender in ("<x@spam.test>", "<x@notspam.example>", "<x@spam.example.org>"):
            c = self.session()
            self.assertPass(c.mail(sender), sender)

    def test_address_list_from_file(self):
        c = self.session()
        self.assertReply(c.mail("<evil@example.ORG>"), "reject", "553", "5.7.1",
                         "Sender blocked")
        c = self.session()
        self.assertPass(c.mail("<evil2@example.org>"), "not in list")

    def test_null_sender(self):
        c = self.session(helo="bounce.helo.example")
        self.assertReply(c.mail("<>"), "reject", "550", "5.7.1",
                         "No bounces from bounce.helo.example")
        c = self.session(helo="bounce.helo.example")
        self.assertPass(c.mail("<a@plain.example>"), "non-null sender")

    def test_expansion_escapes_percent_and_strips_crlf(self):
        c = self.session()
        r = c.mail("<a@plain.example>", macros={"{auth_authen}": "evil 50%\r\nInjected: yes"})
        what = "daemon answered %r (raw %r)" % (r, r.raw)
        self.assertEqual((r.action, r.code, r.xcode), ("reject", "550", "5.7.1"), what)
        self.assertEqual(len(r.lines), 1, what)
        text = r.text
        for ch in text:
            self.assertTrue(ch == " " or 0x21 <= ord(ch) < 0x7f, "control char in " + what)
        # The SMTP client sees exactly one '%': the daemon doubled it for libmilter and the
        # MTA undid that.
        self.assertTrue(text.startswith("Rejected evil 50% "), what)
        self.assertNotIn("%%", text, what)
        self.assertTrue(text.endswith("Injected: yes here"), what)
        self.assertIn("50%%", r.raw, "on the wire '%' must be doubled: " + what)

    def test_auth_user_other(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>", macros={"{auth_authen}": "alice"}), "auth")

    def test_macro_field_and_expansion(self):
        c = self.session(connect_macros={"{daemon_name}": "submission"})
        self.assertReply(c.mail("<a@plain.example>"), "reject", "550", "5.7.0",
                         "Authentication required on submission")
        c = self.session(connect_macros={"{daemon_name}": "submission"})
        self.assertPass(c.mail("<a@plain.example>", macros={"{auth_authen}": "alice"}),
                        "authenticated")
        c = self.session(connect_macros={"{daemon_name}": "smtpd"})
        self.assertPass(c.mail("<a@plain.example>"), "other daemon_name")

    def test_tls_version_from_helo_macro(self):
        c = self.session(helo_macros={"{tls_version}": "TLSv1"})
        self.assertReply(c.mail("<a@plain.example>"), "tempfail", "450", "4.7.0",
                         "TLS TLSv1 too old")
        c = self.session(helo_macros={"{tls_version}": "TLSv1.3"})
        self.assertPass(c.mail("<a@plain.example>"), "TLSv1.3")
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "no TLS")


class T40Rcpt(Base):
    def test_multi_line_reply(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "MAIL")
        self.assertReply(c.rcpt("<u@example.invalid>"), "reject", "550", "5.1.2", lines=[
            "Recipient domain example.invalid is not served here.",
            "See https://example.org/policy"])
        self.assertReply(c.rcpt("<u@sub.x.test>"), "reject", "550", "5.1.2", lines=[
            "Recipient domain sub.x.test is not served here.",
            "See https://example.org/policy"])
        r = c.rcpt("<u@example.invalid>")
        self.assertEqual(r.smtp, [
            "550-5.1.2 Recipient domain example.invalid is not served here.",
            "550 5.1.2 See https://example.org/policy"], repr(r))

    def test_one_recipient_refused_others_accepted(self):
        c = self.session()
        t = self.message(c, "<a@plain.example>",
                         ["<r1@ok.example>", "<bad@example.invalid>", "<eomcheck@ok.example>"])
        self.assertPass(t.rcpts[0], "first rcpt")
        self.assertEqual((t.rcpts[1].action, t.rcpts[1].code), ("reject", "550"),
                         repr(t.rcpts[1]))
        self.assertPass(t.rcpts[2], "third rcpt")
        self.assertIsNone(t.stopped, repr(t))
        # The refused recipient is not part of the message; the accepted ones are.
        self.assertEomPass(t.eom)
        self.assertIn(("X-Eom-Rcpt", "yes"), t.eom.added_headers(), repr(t.eom))

    def test_rcpt_tempfail_then_next_recipient(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "MAIL")
        self.assertReply(c.rcpt("<full@example.com>"), "tempfail", "452", "4.2.2",
                         "Mailbox full@example.com full")
        self.assertPass(c.rcpt("<other@example.com>"), "next rcpt")

    def test_rcpt_accept(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "MAIL")
        self.assertEqual(c.rcpt("<postmaster@example.com>").action, "accept")

    def test_rcpt_discard(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "MAIL")
        self.assertEqual(c.rcpt("<blackhole@example.com>").action, "discard")

    def test_queue_id_expansion_and_log(self):
        c = self.session()
        self.assertPass(c.mail("<a@plain.example>"), "MAIL")
        self.assertReply(c.rcpt("<qid@example.com>", macros={"i": "4ABC123"}), "reject", "550",
                         "5.7.1", "Queue 4ABC123 refuses qid@example.com")
        self.assertLog("rule=queue-id", "4ABC123", "reject")

    def test_rcpt_count(self):
        c = self.session()
        self.assertPass(c.mail("<a@many.example>"), "MAIL")
        self.assertPass(c.rcpt("<r1@ok.example>"), "rcpt 1")
        self.assertPass(c.rcpt("<r2@ok.example>"), "rcpt 2")
        self.assertReply(c.rcpt("<r3@ok.example>"), "tempfail", "452", "4.5.3",
                         "Too many recipients (2)")

    def test_explicit_stage_rcpt(self):
        c = self.session()
        self.assertPass(c.mail("<x@per-rcpt.example>"), "MAIL: the rule waits for RCPT")
        self.assertReply(c.rcpt("<a@y.example>"), "reject", "550", "5.7.1",
                         "Not from per-rcpt.example to a@y.example")
        self.assertReply(c.rcpt("<b@y.example>"), "reject", "550", "5.7.1",
                         "Not from per-rcpt.example to b@y.example")

    def test_tags_are_fresh_for_each_message(self):
        c = self.session()
        t = self.message(c, "<n@news.example>", ["<someone@protected.example>",
                                                 "<other@ok.example>"])
        self.assertReply(t.rcpts[0], "reject", "550", "5.7.1",
                         "No newsletters for someone@protected.example")
        self.assertPass(t.rcpts[1], "other rcpt")
        self.assertEomPass(t.eom)
        t = self.message(c, "<p@plain.example>", ["<someone@protected.example>"])
        self.assertPass(t.rcpts[0], "second message: tag must be gone")
        self.assertEomPass(t.eom)


class T50Header(Base):
    def test_header_reject_at_end_of_headers(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>",
                             [("From", "a@plain.example"), ("Subject", "Buy VIAGRA now")])
        self.assertReply(r, "reject", "554", "5.7.1", "Spam subject refused")

    def test_header_tempfail_default(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("X-Tempfail", "1")])
        self.assertReply(r, "tempfail", "451", "4.7.1", "Try again later")

    def test_header_accept(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("X-Accept", "yes")])
        self.assertEqual(r.action, "accept", repr(r))

    def test_header_discard_name_case_insensitive(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("X-DISCARD", "yes")])
        self.assertEqual(r.action, "discard", repr(r))

    def test_8bit_header(self):
        c = self.session()
        subj = "Grüße aus Köln".encode("utf-8")
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("Subject", subj)])
        what = "daemon answered %r (raw %r)" % (r, r.raw)
        self.assertEqual((r.action, r.code, r.xcode), ("reject", "550", "5.6.0"), what)
        self.assertTrue(r.text.startswith("Eight-bit subject "), what)
        # An SMTP reply is 7-bit: no 8-bit byte or control character reaches it.
        for ch in r.raw:
            self.assertTrue(ch == " " or 0x21 <= ord(ch) < 0x7f, "non-ASCII in " + what)

    def test_folded_header_is_unfolded(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>",
                             [("X-Folded", "alpha\r\n beta\r\n gamma")])
        self.assertReply(r, "reject", "550", "5.7.1", "Folded header seen")
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>",
                             [("X-Folded", "alpha\r\n beta")])
        self.assertPass(r, "other folded value")

    def test_header_count(self):
        c = self.session()
        hdrs = [("X-H%d" % i, "v") for i in range(41)]
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", hdrs)
        self.assertReply(r, "reject", "552", "5.6.0", "Too many headers (41)")
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", hdrs[:40])
        self.assertPass(r, "40 headers")

    def test_percent_in_header_expansion(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>",
                             [("Subject", "Percent 100% sure")])
        self.assertReply(r, "reject", "550", "5.7.1", "Subject was: Percent 100% sure")
        self.assertIn("100%%", r.raw, "'%' must be doubled on the wire")


class T60Body(Base):
    def body_eom(self, body, sender="<a@plain.example>"):
        c = self.session()
        t = self.message(c, sender, ["<b@ok.example>"], body=body)
        return t

    def test_body_reject_at_end_of_message(self):
        t = self.body_eom(b"hello\r\nEICAR-TEST-MARKER\r\nbye\r\n")
        for r in t.bodies:
            self.assertPass(r, "body chunk")
        self.assertEqual(t.stopped, None, repr(t))
        self.assertReply(t.eom, "reject", "554", "5.7.1", "Body rejected")

    def test_body_rule_macro_requested_at_end_of_headers(self):
        c = self.session()
        self.assertIn("{body_probe}", c.symlists.get("eoh", []), c.symlists)
        for probe in ("yes", "no"):
            macros = qid_macros()
            macros["eoh"] = dict(macros["eoh"], **{"{body_probe}": probe})
            t = c.transaction("<a@plain.example>", ["<b@ok.example>"], [("Subject", "x")],
                              b"MACRO-PROBE\r\n", macros=macros)
            if probe == "yes":
                self.assertReply(t.eom, "reject", "554", "5.7.1", "Body probe yes")
            else:
                self.assertEomPass(t.eom)

    def test_body_match_spans_chunks(self):
        body = b"x" * 65530 + b"EICAR-TEST-MARKER\r\n"
        t = self.body_eom(body)
        self.assertEqual(len(t.bodies), 2)
        self.assertReply(t.eom, "reject", "554", "5.7.1", "Body rejected")

    def test_body_regex_multiline(self):
        t = self.body_eom(b"first\r\ntempfail-me\r\nlast\r\n")
        self.assertReply(t.eom, "tempfail", "451", "4.7.1", "Body tempfail")
        t = self.body_eom(b"first\r\nno tempfail-me here\r\n")
        self.assertEomPass(t.eom)

    def test_10mb_body_matches_within_limit(self):
        body = bytearray(b"0123456789abcdef\r\n" * (10 * 1024 * 1024 // 18))
        body[500000:500000] = b"EICAR-TEST-MARKER"
        t = self.body_eom(bytes(body))
        self.assertGreater(len(t.bodies), 150)
        self.assertReply(t.eom, "reject", "554", "5.7.1", "Body rejected")

    def test_10mb_body_beyond_limit_not_scanned(self):
        body = bytearray(b"0123456789abcdef\r\n" * (10 * 1024 * 1024 // 18))
        body[9500000:9500000] = b"EICAR-TEST-MARKER"
        t = self.body_eom(bytes(body))
        self.assertEomPass(t.eom, "marker past body_limit (1M)")

    def test_size_at_end_of_message(self):
        t = self.body_eom(b"y" * (6 * 1024 * 1024), sender="<a@big.example>")
        self.assertPass(t.mail, "MAIL: size rules wait for end of message")
        self.assertReply(t.eom, "reject", "552", "5.3.4", "Message too big")
        t = self.body_eom(b"y" * 1000, sender="<a@big.example>")
        self.assertEomPass(t.eom, "small message")

    def test_client_disconnect_mid_body(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("Subject", "x")])
        self.assertPass(r, "EOH")
        for r in c.body(b"z" * 100000):
            self.assertPass(r, "body chunk")
        # Half a packet, then the MTA's connection goes away.
        c.sock.sendall(struct.pack("!I", 65536) + b"B" + b"z" * 30000)
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        c = self.session()
        t = self.message(c, "<a@plain.example>", ["<b@ok.example>"],
                         body=b"EICAR-TEST-MARKER\r\n")
        self.assertReply(t.eom, "reject", "554", "5.7.1", "Body rejected")


class T70Eom(Base):
    def test_add_header(self):
        c = self.session(ip="192.0.2.1")
        t = self.message(c, "<a@tagme.example>", ["<b@ok.example>"])
        self.assertPass(t.mail, "MAIL: add_header waits for end of message")
        self.assertEomPass(t.eom)
        self.assertEqual(t.eom.added_headers(),
                         [("X-Policy", "add-hdr"), ("X-Policy-Client", "192.0.2.1")],
                         repr(t.eom))
        self.assertEqual([m.header_line for m in t.eom.mods if m.name],
                         ["X-Policy: add-hdr", "X-Policy-Client: 192.0.2.1"])

    def test_quarantine(self):
        c = self.session()
        t = self.message(c, "<a@hold.example>", ["<b@ok.example>"])
        self.assertPass(t.mail, "MAIL: quarantine happens at end of message")
        self.assertEomPass(t.eom)
        self.assertEqual(t.eom.quarantine, "held by hold", repr(t.eom))

    def test_eom_discard(self):
        c = self.session()
        t = self.message(c, "<a@discard-eom.example>", ["<b@ok.example>"])
        self.assertPass(t.mail, "MAIL")
        self.assertEqual(t.eom.action, "discard", repr(t.eom))

    def test_eom_accept(self):
        c = self.session()
        t = self.message(c, "<a@accept-eom.example>", ["<b@ok.example>"])
        self.assertEqual(t.eom.action, "accept", repr(t.eom))

    def test_eom_tempfail_with_queue_id(self):
        c = self.session()
        t = self.message(c, "<a@tempfail-eom.example>", ["<b@ok.example>"], qid="7QQ7")
        self.assertReply(t.eom, "tempfail", "451", "4.3.0", "Try later, 7QQ7")

    def test_explicit_stage_eom(self):
        c = self.session()
        t = self.message(c, "<x@late.example>", ["<b@ok.example>"])
        for r in [t.mail, t.data, t.eoh] + t.rcpts + t.headers + t.bodies:
            self.assertPass(r, "%s before the eom rule" % r.stage)
        self.assertReply(t.eom, "reject", "550", "5.7.1", "Late reject for x@late.example")

    def test_dry_run_at_eom(self):
        c = self.session()
        t = self.message(c, "<a@dry.example>", ["<b@ok.example>"])
        self.assertEomPass(t.eom, "dry_run reject")
        self.assertLog("would-reject-eom")

    def test_two_messages_fresh_state(self):
        c = self.session()
        t = self.message(c, "<x@mark.example>", ["<b@ok.example>"],
                         headers=[("Subject", "one"), ("X-Mark", "1")])
        self.assertEomPass(t.eom)
        self.assertEqual(sorted(t.eom.added_headers()),
                         [("X-Mark-Seen", "yes"), ("X-Tagged", "yes")], repr(t.eom))
        t = self.message(c, "<y@plain.example>", ["<b@ok.example>"],
                         headers=[("Subject", "two")])
        self.assertEomPass(t.eom)
        self.assertEqual(t.eom.added_headers(), [], "second message: %r" % t.eom)

    def test_abort_then_new_transaction(self):
        c = self.session()
        self.assertPass(c.mail("<x@mark.example>"), "MAIL 1")
        self.assertPass(c.rcpt("<b@ok.example>", macros={"i": QID}), "RCPT 1")
        self.assertPass(c.data(macros={"i": QID}), "DATA 1")
        self.assertPass(c.header("X-Mark", "1"), "header 1")
        c.abort()
        t = self.message(c, "<y@plain.example>", ["<b@ok.example>"])
        self.assertEomPass(t.eom)
        self.assertEqual(t.eom.added_headers(), [], "after abort: %r" % t.eom)
        # rcpt_count starts again too.
        self.assertPass(c.mail("<a@many.example>"), "MAIL")
        self.assertPass(c.rcpt("<r1@ok.example>"), "rcpt 1")
        self.assertPass(c.rcpt("<r2@ok.example>"), "rcpt 2")
        c.abort()
        self.assertPass(c.mail("<a@many.example>"), "MAIL")
        self.assertPass(c.rcpt("<r1@ok.example>"), "rcpt 1 after abort")
        self.assertPass(c.rcpt("<r2@ok.example>"), "rcpt 2 after abort")


REDOS = "a" * 5000 + "b"


class T80OnErrorTempfail(Base):
    key = "onerror-tempfail"
    policy = "onerror"
    config = {"on_error": "tempfail"}

    def test_runtime_error_tempfails(self):
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("X-Redos", REDOS)])
        self.assertEqual(r.action, "tempfail", "regex over PCRE2's match limit with "
                         "on_error = tempfail: %r" % r)
        if r.code is not None:
            self.assertEqual(r.code[0], "4", repr(r))
        c = self.session()
        r = self.through_eoh(c, "<a@plain.example>", "<b@ok.example>", [("X-Redos", "aab")])
        self.assertPass(r, "no error, no match")


class T81OnErrorContinue(Base):
    key = "onerror-continue"
    policy = "onerror"
    config = {"on_error": "continue"}

    def test_runtime_error_continues(self):
        c = self.session()
        t = self.message(c, "<a@plain.example>", ["<b@ok.example>"],
                         headers=[("X-Redos", REDOS)])
        self.assertPass(t.eoh, "on_error = continue")
        self.assertEomPass(t.eom)


class T90UnixSocket(Base):
    key = "unix"
    unix = True

    def test_unix_socket(self):
        c = self.session(ip="/var/spool/postfix/private/smtpd", family="L", helo=None)
        self.assertReply(c.helo("bad.helo.example"), "reject", "550", "5.7.1",
                         "Rejected by policy")


class T99Stop(unittest.TestCase):
    def test_sigterm_stops_cleanly(self):
        with Daemon(rules=policy_files("main")) as d:
            c = MilterClient(d.address)
            c.negotiate()
            self.assertEqual(c.connect("a.example", "192.0.2.1", 25).action, "continue")
            c.quit()
            status = d.stop()
            self.assertFalse(d.killed, "SIGTERM did not stop the daemon; log:\n" + d.log())
            self.assertEqual(status, 0, "exit status on SIGTERM; log:\n" + d.log()[-3000:])


if __name__ == "__main__":
    sys.exit(runner.main(sys.argv, __name__, finish=stop_daemons))
