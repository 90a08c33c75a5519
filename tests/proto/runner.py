"""
runner - what every protocol test script shares: finding a sanitizer report in a daemon's
log, and running the script's tests with one summary line ("N passed, N failed") and an exit
status that is non-zero when anything failed or nothing ran.

    if __name__ == "__main__":
        sys.exit(runner.main(sys.argv, __name__, finish=stop_daemons))

finish, if given, runs after the tests (also when they raise) and returns a list of problems
found while stopping shared daemons; each counts as one failure.
"""

import os
import sys
import unittest

from milterclient import MilterClient

# What AddressSanitizer, LeakSanitizer and UBSan print when they report.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "AddressSanitizer:", "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(log):
    """The first sanitizer report in a daemon's log, with some context; None if none."""
    for mark in SANITIZER_MARKS:
        if mark in log:
            i = log.index(mark)
            return log[max(0, i - 200):i + 4000]
    return None


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(argv, module_name, finish=None):
    module = sys.modules[module_name]
    verbosity = 2 if "-v" in argv else 1
    names = [a for a in argv[1:] if not a.startswith("-")]
    loader = unittest.TestLoader()
    if names:
        suite = loader.loadTestsFromNames(names, module)
    else:
        suite = loader.loadTestsFromModule(module)
    print("daemon: %s" % os.environ.get("MP_DAEMON", "(default)"))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity,
                                     resultclass=CountingResult)
    problems = []
    try:
        result = runner.run(suite)
    finally:
        if finish is not None:
            problems = finish()
    for p in problems:
        print("FAIL: " + p)
    failed = result.testsRun - result.passed + len(problems)
    print("%d passed, %d failed" % (result.passed, failed))
    return 1 if failed or result.testsRun == 0 else 0


class DaemonCase(unittest.TestCase):
    """A test against a daemon from start_daemon() (often shared between tests): self.d, and
    self.mark, where its log stood when the test began.  Clients opened with client() are
    closed after the test; a daemon that died during the test fails it."""
    maxDiff = None
    client_options = {}  # passed to every MilterClient

    def start_daemon(self):
        raise NotImplementedError

    def setUp(self):
        self.d = self.start_daemon()
        self.clients = []
        self.mark = self.d.log_mark()

    def tearDown(self):
        for c in self.clients:
            c.close()
        if not self.d.alive():
            self.d.stop()
            self.fail("daemon died (status %s); log tail:\n%s"
                      % (self.d.status, self.d.log()[-4000:]))

    def client(self, negotiate=True, **kw):
        c = MilterClient(self.d.address, **dict(self.client_options, **kw))
        self.clients.append(c)
        if negotiate:
            c.negotiate()
        return c
