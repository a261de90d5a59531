"""Make docs/gallery.png: the review gallery of a real dataset, as a reviewer sees it (1280x900).

    .venv/bin/python scripts/gallery_screenshot.py [OUT.png]

Uses the chess-pieces photos and the MobileNetV2 embedder from ../shared when they are there (so
the class-consistency rule LL501 shows its nearest crops); otherwise the `labellint demo` set.
Drives Debian's /usr/bin/chromium through Playwright; never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LABELLINT_SHARED", REPO.parent / "shared"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def make_report(work: Path) -> Path:
    """Lint a dataset with pictures into work/review.html (paths in the page are short: cwd=work)."""
    chess = SHARED / "data" / "chess_pieces" / "train"
    model = SHARED / "models" / "mobilenetv2-12-int8-embed.onnx"
    env = {**os.environ, "LABELLINT_NO_PROGRESS": "1"}
    if (chess / "_annotations.coco.json").is_file() and model.is_file():
        (work / "chess").mkdir()
        shutil.copy(chess / "_annotations.coco.json", work / "chess" / "train.json")
        args = ["chess/train.json", "--images", str(chess), "--backbone", str(model)]
    else:
        subprocess.run([sys.executable, "-m", "labellint", "demo", "demo"], cwd=work, check=True, env=env)
        args = ["demo/annotations.json", "--images", "demo/images"]
    subprocess.run([sys.executable, "-m", "labellint", "check", *args, "-f", "html", "-o", "review.html",
                    "--exit-zero", "--no-cache"], cwd=work, check=True, env=env, stdout=subprocess.DEVNULL)
    return work / "review.html"


def screenshot(report: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        # a review under way, by keyboard: the first finding kept (x), the second's box deleted (d);
        # the third is selected
        page.keyboard.press("x")
        page.keyboard.press("d")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "gallery.png"
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs {CHROMIUM} (Debian package chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        screenshot(make_report(Path(tmp)), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
