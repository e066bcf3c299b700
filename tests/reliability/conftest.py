"""The reliability suite: faults on purpose, against real servers. Counts are
small by default (CI); `make reliability` runs the full counts of
docs/reliability.md. Each test writes its figures to build/reliability/."""

from tests.support.server import ROOT

REPORTS = ROOT / "build" / "reliability"
