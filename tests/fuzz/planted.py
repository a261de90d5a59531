"""Programs with known faults, run by the fork server in place of labellint to show that the
harness sees each kind of failure (tests/fuzz/test_fuzz.py). The fault is chosen by the
FUZZ_PLANT environment variable; ``boom`` fails only while the dataset holds "BOOM", which is
what the shrinker has to keep."""

import os
import signal
import sys
import time


def _spin():
    while True:
        time.sleep(0.01)


def main():
    plant = os.environ.get("FUZZ_PLANT", "ok")
    if plant == "ok":
        print("1 file linted")
        sys.exit(0)
    if plant == "raise":
        raise ValueError("planted")
    if plant == "hang":
        _spin()
    if plant == "alloc":
        blocks = []
        while True:
            blocks.append(bytearray(64 << 20))
    if plant == "exit3":
        sys.exit(3)
    if plant == "escape":
        print("cat \x1b[31mred\x1b[0m")
        sys.exit(1)
    if plant == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if plant == "silent2":
        sys.exit(2)
    if plant == "peek":  # what a file name that escapes the image root would make labellint do
        with open("images/../canary.jpg", "rb") as f:
            f.read(4)
        sys.exit(0)
    if plant == "boom":
        with open(sys.argv[-1], encoding="utf-8") as f:
            if "BOOM" in f.read():
                raise KeyError("planted")
        sys.exit(0)
    raise SystemExit(f"unknown plant {plant}")
