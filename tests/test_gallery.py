"""The HTML review gallery: a self-contained page, safe with hostile class names, usable in a browser.

The page is made by the real CLI from real JPEGs and driven in Debian's headless Chromium
(/usr/bin/chromium, through Playwright; the browser tests skip when it is missing, and no browser
is ever downloaded). Decisions downloaded from the page are applied with ``labellint apply``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from rich.console import Console

from conftest import REPO
from labellint.coco import load
from labellint.findings import Finding, Fix, Severity, delete, fingerprint, set_field
from labellint.report import html as html_report
from labellint.run import FileOutcome, Result

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
EVIL = "<img src=x onerror=alert(1)>"
BLOB = re.compile(r'<script type="application/json" id="labellint-data">(.*?)</script>', re.S)


# -- data ----------------------------------------------------------------------------------------

def photo(path: Path, size=(160, 120), seed=0, exif_orientation=None) -> None:
    """A small real JPEG: a gradient with a few shapes, distinct per seed."""
    w, h = size
    im = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.ellipse([20 + seed * 3, 20, 60 + seed * 3, 60], fill=(230, 180, 20))
    draw.rectangle([90, 40, 130, 90], fill=(40 + 40 * seed, 90, 200))
    kw = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    im.save(path, "JPEG", quality=90, **kw)


def small_dataset(folder: Path) -> Path:
    """Four photos and a missing one; a box outside its image (of the hostile class), a duplicate
    box, a box of an unknown image, an unused class."""
    (folder / "images").mkdir(parents=True)
    for i in range(1, 5):
        photo(folder / "images" / f"p{i}.jpg", seed=i)
    images = [{"id": i, "file_name": f"p{i}.jpg", "width": 160, "height": 120} for i in range(1, 5)]
    images.append({"id": 5, "file_name": "missing.jpg", "width": 160, "height": 120})

    def ann(i, image, cat, box):
        return {"id": i, "image_id": image, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}

    annotations = [
        ann(1, 1, 1, [20, 20, 40, 40]), ann(2, 1, 3, [90, 40, 40, 50]),
        ann(3, 2, 1, [30, 30, 40, 40]), ann(4, 2, 2, [100, 50, 80, 50]),  # LL105: right by 20 px
        ann(5, 3, 1, [10, 10, 30, 30]), ann(6, 3, 1, [10, 10, 30, 30]),  # LL201: 6 duplicates 5
        ann(7, 99, 1, [5, 5, 10, 10]),  # LL011: no image 99
        ann(8, 4, 3, [50, 50, 30, 30]), ann(9, 5, 1, [5, 5, 20, 20]),
    ]
    categories = [{"id": 1, "name": "ball"}, {"id": 2, "name": EVIL}, {"id": 3, "name": "box"},
                  {"id": 4, "name": "unused"}]
    path = folder / "data.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}, indent=1))
    return path


def labellint(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LABELLINT_NO_PROGRESS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "labellint", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def gallery(folder: Path, *extra: str) -> Path:
    done = labellint("check", "data.json", *extra, "-f", "html", "-o", "review.html", "--exit-zero", "--no-cache",
                     cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "review.html"


def blob_of(text: str) -> tuple[str, dict]:
    m = BLOB.search(text)
    assert m is not None
    return m.group(1), json.loads(m.group(1))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gallery")
    small_dataset(folder)
    return gallery(folder, "--images", "images")


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """5,000 boxes outside their images and 100 images without boxes, no pictures (--images absent)."""
    folder = tmp_path_factory.mktemp("gallery-large")
    images = [{"id": i, "file_name": f"im{i}.jpg", "width": 64, "height": 48} for i in range(1, 1101)]
    annotations = [{"id": k + 1, "image_id": k // 5 + 1, "category_id": 1 + k % 2,
                    "bbox": [50, (k % 5) * 8, 30, 6], "area": 180, "iscrowd": 0} for k in range(5000)]
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    (folder / "data.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                  "categories": categories}))
    return gallery(folder)


@pytest.fixture(scope="module")
def ids(tmp_path_factory) -> Path:
    """Id papercuts: an annotation id 0 (LL014), an id used twice (LL010) and an image_id written as
    the string "2" although image 2 exists (LL001)."""
    folder = tmp_path_factory.mktemp("gallery-ids")
    (folder / "images").mkdir()
    for i in (1, 2):
        photo(folder / "images" / f"p{i}.jpg", seed=i)
    images = [{"id": i, "file_name": f"p{i}.jpg", "width": 160, "height": 120} for i in (1, 2)]
    annotations = [{"id": aid, "image_id": image, "category_id": 1, "bbox": [10 + 30 * k, 10, 20, 20], "area": 400,
                    "iscrowd": 0} for k, (aid, image) in enumerate([(0, 1), (7, 1), (7, 2), (9, "2")])]
    (folder / "data.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                  "categories": [{"id": 1, "name": "ball"}]}, indent=1))
    return gallery(folder, "--images", "images")


# -- the file ------------------------------------------------------------------------------------

def test_page_is_self_contained(small):
    text = small.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    raw, doc = blob_of(text)
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    markup = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", "", text, flags=re.S)
    for m in re.finditer(r"""\b(?:src|href|action|srcset|poster)\s*=\s*["']?([^"'\s>]*)""", markup):
        assert m.group(1).startswith("data:"), m.group(0)
    assert " on" not in re.sub(r"<(script|style)\b[^>]*>.*?</\1>|>[^<]*<", "><", markup, flags=re.S)  # no onclick=...
    assert "url(" not in text and "@import" not in text
    assert len(scripts) == 1  # the page's own script; it neither fetches nor turns strings into code or markup
    for word in ("fetch(", "XMLHttpRequest", "WebSocket", "import(", "eval(", "Function(", "innerHTML", "outerHTML",
                 "insertAdjacentHTML", "document.write", "setAttribute(\"on"):
        assert word not in scripts[0], word
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src 'sha256-" in csp
    pictured = [rec for rec in doc["images"].values() if rec["src"]]
    assert {rec["name"] for rec in pictured} == {"p2.jpg", "p3.jpg"}  # the others: no finding, or no file
    assert all(rec["src"].startswith("data:image/jpeg;base64,") for rec in pictured)
    missing = next(rec for rec in doc["images"].values() if rec["name"] == "missing.jpg")
    assert missing["src"] is None and "not available" in missing["why"]


def test_hostile_class_name_is_only_data(small):
    text = small.read_text(encoding="utf-8")
    raw, doc = blob_of(text)
    assert "<" not in raw and ">" not in raw  # nothing in the blob can close its element or open a tag
    outside = text.replace(raw, "")
    assert "onerror" not in outside and "<img" not in outside
    assert EVIL in {c["name"] for c in doc["files"][0]["classes"]}
    assert any(EVIL in f["msg"] or f["cls"] == EVIL for f in doc["findings"])


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory):
    """A run made by hand (a renderer unit test): three findings on one image, an embedding finding
    with neighbours and a suggested class, fixes that accept can and cannot take, an EXIF-rotated photo."""
    folder = tmp_path_factory.mktemp("gallery-unit")
    (folder / "images").mkdir()
    photo(folder / "images" / "a.jpg", size=(200, 150))
    photo(folder / "images" / "b.jpg", size=(200, 150), seed=2)
    photo(folder / "images" / "r.jpg", size=(150, 200), seed=3, exif_orientation=6)  # shown 200x150
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 150},
                      {"id": 2, "file_name": "b.jpg", "width": 200, "height": 150},
                      {"id": 3, "file_name": "r.jpg", "width": 200, "height": 150}],
           "annotations": [{"id": 10 + k, "image_id": 1 + k % 3, "category_id": 1 + k % 2,
                            "bbox": [10 + 20 * k, 20, 30, 40], "area": 1200} for k in range(6)],
           "categories": [{"id": 1, "name": "pawn"}, {"id": 2, "name": EVIL}]}
    path = folder / "data.json"
    path.write_text(json.dumps(doc))
    ds = load(path, "data.json")

    def finding(code, pointer, *, fix=None, extra=None):
        return Finding(code=code, name="x", severity=Severity.WARNING, message=f"{code} about {EVIL}",
                       path="data.json", pointer=pointer, line=1, column=1,
                       fingerprint=fingerprint(code, "data.json", pointer), fix=fix, extra=extra or {})

    findings = [
        finding("LL501", "/annotations/0", extra={"suggested_category_id": 2, "neighbours": [
            {"annotation": 3, "similarity": 0.93}, {"annotation": 1, "similarity": 0.9},
            {"annotation": 5, "similarity": 0.8}]},
            fix=Fix("relabel", (set_field("annotations", 0, "category_id", 2),), "unsafe")),
        finding("LL105", "/annotations/3", fix=Fix("clip", (set_field("annotations", 3, "bbox", [70, 20, 30.5, 40]),
                                                            set_field("annotations", 3, "area", 1220.0)))),
        finding("LL201", "/annotations/3/bbox", fix=Fix("drop", (delete("annotations", 3),), "unsafe")),
        finding("LL113", "/annotations/2", fix=Fix("area", (set_field("annotations", 2, "area", 1),))),
        finding("LL402", "/images/0", fix=Fix("drop", (delete("images", 0), delete("annotations", 0)), "unsafe")),
        finding("LL016", "/categories/1"),
    ]
    result = Result(findings=findings, files=[FileOutcome("data.json", "linted", counts={"annotations": 6})],
                    datasets={"data.json": ds}, sources={"data.json": path})
    text = html_report.render(result, images=folder / "images", console=Console(file=io.StringIO()))
    (folder / "unit.html").write_text(text, encoding="utf-8")
    return {"html": folder / "unit.html", "text": text, "ds": ds, "findings": findings, "result": result,
            "images": folder / "images"}


def test_render_shares_pictures_and_offers_accept(hand_made):
    text = hand_made["text"]
    _, data = blob_of(text)
    out = {f["code"]: f for f in data["findings"]}
    assert out["LL501"]["accept"] == {"action": "relabel", "category_id": 2, "label": f"relabel → '{EVIL}'"}
    assert out["LL501"]["suggested"] == EVIL and len(out["LL501"]["nb"]) == 3
    assert all(data["crops"][nb["crop"]]["src"].startswith("data:image/jpeg") for nb in out["LL501"]["nb"])
    assert [nb["cls"] for nb in out["LL501"]["nb"]] == [EVIL, EVIL, EVIL]
    assert [nb["sim"] for nb in out["LL501"]["nb"]] == [0.93, 0.9, 0.8]
    assert out["LL105"]["accept"]["action"] == "set_bbox" and out["LL105"]["accept"]["bbox"] == [70, 20, 30.5, 40]
    assert out["LL201"]["accept"]["action"] == "delete" and out["LL201"]["ann"] == 3
    assert out["LL113"]["accept"] is None  # setting an area is not something the page decides
    assert out["LL402"]["accept"] is None and out["LL402"]["ann"] is None and out["LL402"]["img"] is not None
    assert out["LL016"]["cls"] == EVIL and out["LL016"]["img"] is None
    from labellint.fix.state import entry_state
    assert out["LL501"]["state"] == entry_state(hand_made["ds"], "annotations", 0)
    # one data URI per picture, however many findings show it
    assert all(text.count(rec["src"]) == 1 for rec in data["images"].values())
    assert out["LL105"]["img"] == out["LL201"]["img"] == out["LL402"]["img"]  # all on image row 0
    rotated = next(rec for rec in data["images"].values() if rec["name"] == "r.jpg")
    assert rotated["src"] and (rotated["w"], rotated["h"]) == (200, 150)  # boxes are on the EXIF-rotated view
    assert data["report"] == html_report.report_id(hand_made["findings"])


def test_id_cards_offer_accept_and_say_why_a_box_has_no_image(ids):
    _, data = blob_of(ids.read_text(encoding="utf-8"))
    out = {f["code"]: f for f in data["findings"]}
    # fresh ids: something `labellint apply` takes, one sequence for both rules
    assert out["LL014"]["accept"] == {"action": "set_id", "new_id": 10, "label": "give it the id 10"}
    assert out["LL010"]["accept"] == {"action": "set_id", "new_id": 11, "label": "give it the id 11"}
    # image_id "2": the message and the card say what is wrong, and the box is drawn on image 2
    bad = out["LL001"]
    assert "image 2 exists, but the string '2' is not the number 2" in bad["msg"]
    assert bad["imgnote"] == ("image_id is the string '2', not the number 2: drawn on image 2, "
                              "which it does not match as written")
    assert data["images"][bad["img"]]["name"] == "p2.jpg" and data["images"][bad["img"]]["src"]
    assert data["crops"][bad["crop"]]["src"].startswith("data:image/jpeg")
    assert out["LL014"]["imgnote"] is None  # a box on its own image needs no note


def test_pictures_are_capped(hand_made, monkeypatch):
    monkeypatch.setattr(html_report, "MAX_PICTURED", 1)
    text = html_report.render(hand_made["result"], images=hand_made["images"], console=Console(file=io.StringIO()))
    _, data = blob_of(text)
    assert data["summary"]["pictured"] == 1 and data["summary"]["findings"] == 6
    first, second = data["findings"][0], data["findings"][1]
    assert data["images"][first["img"]]["src"] and data["crops"][first["crop"]]
    # the second finding's image is the first's, so it shows; its own crop was not made
    assert second["img"] == first["img"] and second["crop"] and data["crops"][second["crop"]] is None
    monkeypatch.setattr(html_report, "MAX_PICTURED", 0)
    text = html_report.render(hand_made["result"], images=hand_made["images"], console=Console(file=io.StringIO()))
    _, data = blob_of(text)
    assert all(rec["src"] is None and "only the first 0 findings" in rec["why"] for rec in data["images"].values())


def test_accept_a_suggested_class_in_the_browser(browser, hand_made, tmp_path):
    view = Gallery(browser, hand_made["html"])
    card = view.card("LL501")
    assert card.locator(".nb").count() == 3
    assert card.locator(".nbs").inner_text().count(EVIL) == 3
    assert EVIL in card.locator("button.accept").inner_text()
    card.locator("button.accept").click()
    assert card.get_attribute("data-decision") == "relabel"
    assert view.card("LL402").locator("button.accept").count() == 0
    assert view.card("LL113").locator("button.accept").is_disabled()
    # a fix the page cannot record says so, and which command applies it
    assert "labellint check --fix" in view.card("LL113").locator("button.accept").get_attribute("title")
    assert "apply it with labellint check --fix" in view.card("LL113").locator(".suggest").inner_text()
    assert "apply it with" not in view.card("LL105").locator(".suggest").inner_text()  # accept takes its fix
    view.card("LL105").locator("button.accept").click()
    decisions = view.download(tmp_path)["decisions"]
    assert decisions[0]["action"] == "relabel" and decisions[0]["category_id"] == 2
    assert decisions[1]["action"] == "set_bbox" and decisions[1]["bbox"] == [70, 20, 30.5, 40]
    assert decisions[0]["annotation_id"] == 10 and decisions[1]["annotation_id"] == 13
    view.close()


def test_accept_action_reads_fixes_and_suggestions(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"images": [], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], "categories": [{"id": 1, "name": "a"}]}))
    ds = load(path, "d.json")

    def f(fix=None, extra=None):
        return Finding("LL999", "x", Severity.ERROR, "m", "d.json", "/annotations/0", 1, 1, fix=fix, extra=extra or {})

    assert html_report.accept_action(f(Fix("t", (delete("annotations", 0),))), ds, 0)["action"] == "delete"
    assert html_report.accept_action(f(Fix("t", (delete("annotations", 1),))), ds, 0) is None  # another box
    assert html_report.accept_action(f(Fix("t", (set_field("annotations", 0, "category_id", 1),
                                                 set_field("annotations", 0, "iscrowd", 0)))), ds, 0) is None
    assert html_report.accept_action(f(extra={"suggested_bbox": [1, 2, 3, 4.5]}), ds, 0)["bbox"] == [1, 2, 3, 4.5]
    assert html_report.accept_action(f(), ds, 0) is None
    # a fix computed only when fixing (LL110's area) is not the page's, and is not computed for it
    lazy = Fix("area", lambda: pytest.fail("computed for the page"))
    assert html_report.accept_action(f(lazy), ds, 0) is None
    assert html_report.accept_action(f(Fix("t", (set_field("annotations", 0, "id", 5),))), ds, 0)["new_id"] == 5
    assert html_report.accept_action(f(Fix("t", (set_field("annotations", 0, "id", "5"),))), ds, 0) is None


# -- in the browser --------------------------------------------------------------------------------

class Gallery:
    """One page in a fresh browser context (its own localStorage), watching for errors and requests."""

    def __init__(self, browser, html: Path, context=None):
        self.context = context or browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(html.as_uri())
        self.page.wait_for_selector("body[data-ready='1']")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def card(self, code: str):
        return self.page.locator(f'.card[data-code="{code}"]').first

    def cards(self) -> int:
        return self.page.locator("#cards .card").count()

    def selected(self) -> str:
        return self.page.locator("#cards .card.selected").get_attribute("data-index")

    def download(self, folder: Path) -> dict:
        with self.page.expect_download() as info:
            self.page.click("#download")
        assert info.value.suggested_filename == "decisions.json"
        target = folder / "decisions.json"
        info.value.save_as(target)
        return json.loads(target.read_text())

    def close(self):
        assert self.errors == [] and self.dialogs == []
        assert all(u.startswith(("file:", "data:", "blob:")) for u in self.requests), self.requests
        self.context.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the gallery browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def decided(browser, small) -> dict:
    """Review the small dataset by clicking: accept, pick a class, delete, keep; download."""
    _, doc = blob_of(small.read_text(encoding="utf-8"))
    view = Gallery(browser, small)
    assert view.cards() == min(len(doc["findings"]), 50)
    body = view.page.inner_text("body")
    assert EVIL in body
    assert view.page.locator('img[src="x"]').count() == 0 and view.page.locator("img").count() == 0
    assert view.page.locator("#decided-count").inner_text().startswith("0 decided")
    view.card("LL011").locator("button.accept").click()  # its fix: delete the box of a missing image
    view.card("LL105").locator("select.relabel").select_option("3")  # relabel the hostile class to 'box'
    view.card("LL201").locator("button.delete").click()
    view.card("LL016").locator("button.keep").click()
    view.card("LL402").locator("button.keep").click()
    assert view.card("LL105").get_attribute("data-decision") == "relabel"
    assert view.card("LL016").locator("button.delete").count() == 0  # not about a box: keep only
    assert view.page.locator("#decided-count").inner_text().startswith("5 decided")
    decisions = view.download(small.parent)
    view.page.reload()  # decisions survive a reload (localStorage, keyed by the report)
    view.page.wait_for_selector("body[data-ready='1']")
    assert view.card("LL201").get_attribute("data-decision") == "delete"
    view.close()
    return {"doc": doc, "decisions": decisions}


def test_gallery_decisions_download(decided):
    doc, out = decided["doc"], decided["decisions"]
    assert out["format"] == "labellint-decisions" and out["version"] == 1
    assert out["tool"]["name"] == "labellint" and out["report"] == doc["report"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out["created"])
    by_code = {d["code"]: d for d in out["decisions"]}
    assert [d["code"] for d in out["decisions"]] == ["LL011", "LL105", "LL201", "LL016", "LL402"]  # as decided
    assert by_code["LL011"]["action"] == "delete" and by_code["LL011"]["annotation_id"] == 7
    assert by_code["LL105"] == {**by_code["LL105"], "action": "relabel", "category_id": 3, "annotation_id": 4}
    assert by_code["LL201"]["action"] == "delete" and by_code["LL201"]["annotation_id"] == 6
    assert by_code["LL016"] == {**by_code["LL016"], "action": "keep", "annotation_id": None, "state": None}
    fingerprints = {f["fp"]: f for f in doc["findings"]}
    for d in out["decisions"]:
        assert d["path"] == "data.json" and d["fingerprint"] in fingerprints
        assert d["state"] == fingerprints[d["fingerprint"]]["state"]
        if d["annotation_id"] is not None:
            assert re.fullmatch(r"[0-9a-f]{16}", d["state"])


def test_gallery_decisions_apply(decided, small):
    """`labellint apply` takes the downloaded file (written concurrently: fails until it lands)."""
    folder = small.parent
    done = labellint("apply", "decisions.json", "data.json", "-o", "out.json", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads((folder / "out.json").read_text())
    anns = {a["id"]: a for a in out["annotations"]}
    assert 7 not in anns and 6 not in anns and 5 in anns  # deleted: the unknown image's box, the duplicate
    assert anns[4]["category_id"] == 3  # relabelled from the hostile class


def test_accept_fresh_ids_in_the_browser_then_apply(browser, ids, tmp_path):
    view = Gallery(browser, ids)
    for code in ("LL014", "LL010"):
        button = view.card(code).locator("button.accept")
        assert button.is_enabled() and "give it the id" in button.inner_text()
        button.click()
        assert view.card(code).get_attribute("data-decision") == "set_id"
        assert "give it the id" in view.card(code).locator(".decision").inner_text()
    note = view.card("LL001").locator(".thumb .na").inner_text()
    assert "the string '2', not the number 2" in note and "unknown" not in note
    decisions = view.download(tmp_path)["decisions"]
    view.close()
    assert [(d["code"], d["annotation_id"], d["new_id"]) for d in decisions] == [("LL014", 0, 10), ("LL010", 7, 11)]
    (ids.parent / "decisions.json").write_text(json.dumps({"format": "labellint-decisions", "version": 1,
                                                           "decisions": decisions}))
    done = labellint("apply", "decisions.json", "data.json", "-o", "out.json", cwd=ids.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads((ids.parent / "out.json").read_text())
    assert [a["id"] for a in out["annotations"]] == [10, 7, 11, 9]


def test_keyboard_navigation(browser, small):
    view = Gallery(browser, small)
    page = view.page
    assert view.selected() == "0"
    page.keyboard.press("j")
    assert view.selected() == "1"
    page.keyboard.press("ArrowDown")
    assert view.selected() == "2"
    page.keyboard.press("k")
    page.keyboard.press("ArrowUp")
    assert view.selected() == "0"
    first = page.locator('#cards .card[data-index="0"]')
    page.keyboard.press("x")  # keep, then on to the next
    assert first.get_attribute("data-decision") == "keep" and view.selected() == "1"
    page.keyboard.press("u")  # undo on the selected one: nothing to undo there
    page.keyboard.press("k")
    page.keyboard.press("u")
    assert first.get_attribute("data-decision") == ""
    # 'd' on the first finding about a box, 'a' on one with a suggestion
    _, doc = blob_of(small.read_text(encoding="utf-8"))
    boxes = [i for i, f in enumerate(doc["findings"]) if f["ann"] is not None and f["aid"] is not None]
    for _ in range(boxes[0]):
        page.keyboard.press("j")
    page.keyboard.press("d")
    assert page.locator(f'#cards .card[data-index="{boxes[0]}"]').get_attribute("data-decision") == "delete"
    accept = next(i for i, f in enumerate(doc["findings"]) if f["accept"] and f["aid"] is not None)
    page.locator(f'#cards .card[data-index="{accept}"] .msg').click()
    assert view.selected() == str(accept)
    page.keyboard.press("a")
    card = page.locator(f'#cards .card[data-index="{accept}"]')
    assert card.get_attribute("data-decision") == doc["findings"][accept]["accept"]["action"]
    page.locator(f'#cards .card[data-index="{boxes[0]}"] .msg').click()
    page.keyboard.press("c")  # focuses the class picker of the selected card
    assert page.evaluate("document.activeElement.className") == "relabel"
    view.close()


def test_pagination_and_filters(browser, large):
    _, doc = blob_of(large.read_text(encoding="utf-8"))
    n = len(doc["findings"])
    outside = sum(f["code"] == "LL105" for f in doc["findings"])
    assert outside == 5000 and n > 5000
    view = Gallery(browser, large)
    page = view.page
    assert view.cards() == 50
    assert f"of {n:,}" in page.inner_text("#page-info")
    assert "without --images" in page.inner_text("#banner")
    assert page.locator("#cards .card").first.get_attribute("data-index") == "0"
    page.click("#next-page")
    assert view.cards() == 50
    assert page.locator("#cards .card").first.get_attribute("data-index") == "50"
    page.keyboard.press("ArrowRight")
    assert page.locator("#cards .card").first.get_attribute("data-index") == "100"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.locator("#cards .card").first.get_attribute("data-index") == "0"
    for _ in range(50):  # j past the last card of a page turns the page
        page.keyboard.press("j")
    assert view.selected() == "50" and page.locator("#cards .card").first.get_attribute("data-index") == "50"
    page.select_option("#filter-rule", "LL305")
    ll305 = sum(f["code"] == "LL305" for f in doc["findings"])
    assert ll305 == 100 and view.cards() == 50 and f"of {ll305:,}" in page.inner_text("#page-info")
    page.select_option("#filter-rule", "")
    page.uncheck("#sev-error")
    not_errors = sum(f["sev"] != "error" for f in doc["findings"])
    assert f"of {not_errors:,}" in page.inner_text("#page-info")
    page.uncheck("#sev-warning")
    page.uncheck("#sev-info")
    assert view.cards() == 0 and "No finding matches" in page.inner_text("#cards")
    page.check("#sev-error")
    page.select_option("#filter-class", "dog")
    dogs = sum(f["cls"] == "dog" and f["sev"] == "error" for f in doc["findings"])
    assert 0 < dogs < outside and f"of {dogs:,}" in page.inner_text("#page-info")
    # blank canvases: the box is drawn, the image says why it is not there
    first = page.locator("#cards .card").first
    assert first.locator("svg rect").count() >= 2 and "not available" in first.inner_text()
    view.close()
