/* labellint review gallery.
 *
 * Everything the page shows comes from the JSON blob in #labellint-data. Dataset strings (class
 * names, file names, messages) come from strangers: they are only ever set as text (textContent,
 * option.text, createTextNode), never parsed as markup, and they key only Maps, never plain
 * objects (a class named "__proto__" or "constructor" is a name like any other). Every command
 * line the page shows quotes its paths as a POSIX shell reads them. Only the current page of findings is
 * built, so the page stays quick with thousands of them. Decisions are kept in localStorage under
 * the report's id and downloaded as decisions.json for `labellint apply`.
 */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("labellint-data").textContent);
  var PAGE_SIZE = 50;
  // the SVG namespace, taken from an <svg> the HTML parser made: the page holds no URL at all
  var SVG = document.getElementById("svg-namespace").namespaceURI;
  var STORE_KEY = "labellint-decisions:" + DATA.report;
  var SEVERITIES = ["error", "warning", "info"];
  var COLORS = {error: "#ef4444", warning: "#f59e0b", info: "#3b82f6"};
  var findings = DATA.findings;
  var byFingerprint = new Map();
  findings.forEach(function (f, i) { byFingerprint.set(f.fp, i); });

  var view = {filtered: [], page: 0, selected: 0};
  var decisions = new Map();  // fingerprint -> {action, category_id?, bbox?, seq}, in the order decided
  var seq = 0;
  var storageOk = true;

  // -- small DOM helpers (text only) --------------------------------------------------------------
  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function count(map, key) { map.set(key, (map.get(key) || 0) + 1); }

  /* A word as a POSIX shell reads it back unchanged (Python's shlex.quote): bare when it holds only
     safe characters, else in single quotes, each ' written as '"'"'. A word starting with "-" gets
     "./" so that no command takes it for an option. */
  function shellQuote(word) {
    word = String(word);
    if (word.charAt(0) === "-") word = "./" + word;
    if (word === "") return "''";
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
    return "'" + word.replace(/'/g, "'\"'\"'") + "'";
  }

  /* The commands that apply the downloaded decisions: `labellint apply` takes one dataset, so one
     line per file. */
  function applyCommands() {
    if (!DATA.files.length) return ["labellint apply decisions.json DATA.json"];
    return DATA.files.map(function (file) {
      return "labellint apply decisions.json " + (file.shell ? shellQuote(file.path) : "DATA.json")
             + (file.shell ? "" : "  # the file's name holds control characters: type it here");
    });
  }

  // -- decisions: stored per report, downloaded as decisions.json ----------------------------------
  function loadDecisions() {
    try {
      var raw = window.localStorage.getItem(STORE_KEY);
      if (!raw) return;
      var stored = JSON.parse(raw);
      if (stored && typeof stored === "object" && !Array.isArray(stored)) {  // kept by an older page: by key
        stored = Object.keys(stored).map(function (fp) { return [fp, stored[fp]]; });
      }
      if (!Array.isArray(stored)) return;
      stored.forEach(function (pair) {
        var fp = Array.isArray(pair) ? pair[0] : null, d = Array.isArray(pair) ? pair[1] : null;
        if (typeof fp === "string" && byFingerprint.has(fp) && d && typeof d.action === "string") {
          decisions.set(fp, d);
          seq = Math.max(seq, Number(d.seq) || 0);
        }
      });
    } catch (e) {
      storageOk = false;
    }
  }

  function saveDecisions() {
    if (!storageOk) return;
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(Array.from(decisions.entries())));
    } catch (e) {
      storageOk = false;
      showBanner();
    }
  }

  function decide(i, decision) {
    var f = findings[i];
    if (decision === null) {
      decisions.delete(f.fp);
    } else {
      seq += 1;
      decision.seq = seq;
      decisions.set(f.fp, decision);
    }
    saveDecisions();
    refreshCard(i);
    refreshCounts();
  }

  function describe(f, d) {
    if (!d) return "undecided";
    if (d.action === "keep") return "keep as it is";
    if (d.action === "delete") return "delete the box";
    if (d.action === "set_bbox") return "set box [" + d.bbox.join(", ") + "]";
    if (d.action === "set_id") return "give it the id " + d.new_id;
    if (d.action === "relabel") return "relabel → '" + className(f, d.category_id) + "'";
    return d.action;
  }

  function className(f, categoryId) {
    var classes = DATA.files[f.file].classes;
    for (var k = 0; k < classes.length; k++) {
      if (classes[k].id === categoryId) return classes[k].name;
    }
    return "#" + categoryId;
  }

  function decisionsDocument() {
    var fps = Array.from(decisions.keys()).sort(function (a, b) { return decisions.get(a).seq - decisions.get(b).seq; });
    var out = [];
    fps.forEach(function (fp) {
      var f = findings[byFingerprint.get(fp)];
      var d = decisions.get(fp);
      var onBox = f.ann !== null && f.aid !== null;
      var entry = {path: DATA.files[f.file].path, fingerprint: f.fp, code: f.code,
                   annotation_id: onBox ? f.aid : null, state: onBox ? f.state : null, action: d.action};
      if (d.action === "relabel") entry.category_id = d.category_id;
      if (d.action === "set_bbox") entry.bbox = d.bbox;
      if (d.action === "set_id") entry.new_id = d.new_id;
      out.push(entry);
    });
    return {
      format: "labellint-decisions",
      version: 1,
      created: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      tool: {name: DATA.tool.name, version: DATA.tool.version},
      report: DATA.report,
      decisions: out
    };
  }

  function download() {
    var text = JSON.stringify(decisionsDocument(), null, 2) + "\n";
    var url = URL.createObjectURL(new Blob([text], {type: "application/json"}));
    var a = document.createElement("a");
    a.href = url;
    a.download = "decisions.json";
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
  }

  // -- filters ------------------------------------------------------------------------------------
  function fillFilters() {
    var sevCounts = new Map(), ruleCounts = new Map(), ruleNames = new Map(), classCounts = new Map(),
        fileCounts = new Map();
    findings.forEach(function (f) {
      count(sevCounts, f.sev);
      count(ruleCounts, f.code);
      ruleNames.set(f.code, f.name);
      if (f.cls !== null) count(classCounts, f.cls);
      count(fileCounts, f.file);
    });
    var box = $("filter-severity");
    SEVERITIES.forEach(function (s) {
      var label = el("label");
      var input = el("input");
      input.type = "checkbox";
      input.checked = true;
      input.value = s;
      input.id = "sev-" + s;
      input.addEventListener("change", applyFilters);
      label.appendChild(input);
      label.appendChild(el("span", "dot " + s));
      label.appendChild(el("span", null, s));
      label.appendChild(el("span", "n", fmt(sevCounts.get(s) || 0)));
      box.appendChild(label);
    });
    var rules = $("filter-rule");
    Array.from(ruleCounts.keys()).sort().forEach(function (code) {
      var o = document.createElement("option");
      o.value = code;
      o.text = code + " " + ruleNames.get(code) + " (" + fmt(ruleCounts.get(code)) + ")";
      rules.appendChild(o);
    });
    var classes = $("filter-class");
    Array.from(classCounts.keys()).sort().forEach(function (name) {
      var o = document.createElement("option");
      o.value = name;
      o.text = name + " (" + fmt(classCounts.get(name)) + ")";
      classes.appendChild(o);
    });
    if (DATA.files.length > 1) {
      $("file-filter").hidden = false;
      DATA.files.forEach(function (file, k) {
        var o = document.createElement("option");
        o.value = String(k);
        o.text = file.label + " (" + fmt(fileCounts.get(k) || 0) + ")";
        $("filter-file").appendChild(o);
      });
    }
    ["filter-rule", "filter-class", "filter-file", "filter-decision"].forEach(function (id) {
      $(id).addEventListener("change", applyFilters);
    });
  }

  function applyFilters() {
    var sev = new Map();
    SEVERITIES.forEach(function (s) { sev.set(s, $("sev-" + s).checked); });
    var rule = $("filter-rule").value;
    var cls = $("filter-class").value;
    var file = $("filter-file").value;
    var decided = $("filter-decision").value;
    view.filtered = [];
    findings.forEach(function (f, i) {
      if (!sev.get(f.sev)) return;
      if (rule && f.code !== rule) return;
      if (cls && f.cls !== cls) return;
      if (file && String(f.file) !== file) return;
      if (decided === "decided" && !decisions.has(f.fp)) return;
      if (decided === "undecided" && decisions.has(f.fp)) return;
      view.filtered.push(i);
    });
    view.page = 0;
    view.selected = 0;
    renderPage();
  }

  // -- pictures -----------------------------------------------------------------------------------
  function addBox(svg, box, color, width, dashed) {
    var attrs = {x: box[0], y: box[1], width: Math.max(box[2], 0), height: Math.max(box[3], 0),
                 fill: "none", stroke: color, "stroke-width": width, "vector-effect": "non-scaling-stroke"};
    if (dashed) attrs["stroke-dasharray"] = "4 3";
    svg.appendChild(svgEl("rect", attrs));
  }

  function focusBox(svg, box, color) {
    addBox(svg, box, "rgba(0,0,0,.65)", 4.5);
    addBox(svg, box, color, 2.2);
  }

  /* The whole image (or a blank canvas of its size) with the finding's box; the view grows to
     show a box that reaches outside its image. */
  function thumbnail(f) {
    var rec = f.img === null ? null : DATA.images[f.img];
    var fig = el("figure", "thumb");
    var frame = el("div", "frame");
    fig.appendChild(frame);
    if (!rec && !f.box) {
      fig.classList.add("none");
      frame.appendChild(el("div", "placeholder", f.cls !== null ? "about the class" : "about the file"));
      frame.lastChild.appendChild(el("b", null, f.cls !== null ? f.cls : DATA.files[f.file].label));
      return fig;
    }
    var W = rec && isNum(rec.w) && rec.w > 0 ? rec.w : null;
    var H = rec && isNum(rec.h) && rec.h > 0 ? rec.h : null;
    var box = f.box;
    var shown = [box, f.accept && f.accept.action === "set_bbox" ? f.accept.bbox : null].filter(Boolean);
    var x0 = 0, y0 = 0, x1 = W || 0, y1 = H || 0;
    if (W === null || H === null) {
      x0 = y0 = Infinity; x1 = y1 = -Infinity;
    }
    shown.forEach(function (b) {
      x0 = Math.min(x0, b[0]); y0 = Math.min(y0, b[1]);
      x1 = Math.max(x1, b[0] + b[2]); y1 = Math.max(y1, b[1] + b[3]);
    });
    if (!isFinite(x0) || !isFinite(y0)) { x0 = 0; y0 = 0; }
    if (!(x1 > x0) || !(y1 > y0)) { x1 = x0 + 100; y1 = y0 + 75; }
    var outside = W !== null && H !== null && (x0 < 0 || y0 < 0 || x1 > W || y1 > H);
    var pad = outside || W === null ? 0.04 * Math.max(x1 - x0, y1 - y0) : 0;
    var svg = svgEl("svg", {viewBox: [x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad].join(" "),
                            preserveAspectRatio: "xMidYMid meet", role: "img"});
    if (outside) {
      svg.appendChild(svgEl("rect", {x: x0 - pad, y: y0 - pad, width: x1 - x0 + 2 * pad, height: y1 - y0 + 2 * pad,
                                     fill: "#374151"}));
    }
    if (W !== null && H !== null) {
      if (rec.src) {
        svg.appendChild(svgEl("image", {href: rec.src, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none"}));
      } else {
        svg.appendChild(svgEl("rect", {x: 0, y: 0, width: W, height: H, fill: "#e5e7eb"}));
      }
      if (outside) addBox(svg, [0, 0, W, H], "#f9fafb", 1, true);
    }
    if (rec) {
      rec.boxes.forEach(function (b) {
        if (b[0] !== f.ann) addBox(svg, b.slice(1), rec.src ? "rgba(255,255,255,.75)" : "#9ca3af", 1);
      });
    }
    if (box) focusBox(svg, box, COLORS[f.sev]);
    proposedBox(svg, f);
    frame.appendChild(svg);
    // why there is no picture, or why the box is drawn on an image it does not belong to
    var notes = [f.imgnote, rec && !rec.src ? rec.why || "image not available" : null].filter(Boolean);
    if (!rec && !notes.length) notes.push("no image: the box's image is unknown");
    if (notes.length) frame.appendChild(el("div", "na", notes.join(" · ")));
    if (rec) {
      var cap = el("figcaption", "mono", rec.name);
      cap.title = rec.name;
      fig.appendChild(cap);
    }
    return fig;
  }

  /* A crop (its region in image pixels) with the box drawn over it. */
  function cropSvg(crop, box, color, width) {
    var view = crop.view || [crop.x, crop.y, crop.w, crop.h];
    var svg = svgEl("svg", {viewBox: view.join(" "), preserveAspectRatio: "xMidYMid meet"});
    svg.appendChild(svgEl("image", {href: crop.src, x: crop.x, y: crop.y, width: crop.w, height: crop.h,
                                     preserveAspectRatio: "none"}));
    if (box && width) {
      if (width > 1.5) focusBox(svg, box, color); else addBox(svg, box, color, width);
    }
    return svg;
  }

  /* The box that "accept" would set, dashed, beside the current one. */
  function proposedBox(svg, f) {
    if (f.accept && f.accept.action === "set_bbox") addBox(svg, f.accept.bbox, "#34d399", 2, true);
  }

  function cropFigure(f) {
    var crop = f.crop === null ? null : DATA.crops[f.crop];
    if (!crop) return null;
    var fig = el("figure", "crop");
    var frame = el("div", "frame");
    var svg = cropSvg(crop, f.box, COLORS[f.sev], 2.2);
    proposedBox(svg, f);
    frame.appendChild(svg);
    fig.appendChild(frame);
    fig.appendChild(el("figcaption", null, "box " + (f.box || []).map(function (v) { return Math.round(v); }).join(", ")));
    return fig;
  }

  function neighbours(f) {
    var row = el("div", "nbs");
    var label = el("div", "nbs-label", "nearest crops");
    label.appendChild(el("span", null, f.nb.length + " by similarity"));
    row.appendChild(label);
    f.nb.forEach(function (nb) {
      var fig = el("figure", "nb" + (nb.cls !== null && nb.cls === f.suggested ? " agrees" : "")
                               + (nb.cls !== null && nb.cls === f.cls ? " same" : ""));
      var frame = el("div", "frame");
      var crop = nb.crop === null ? null : DATA.crops[nb.crop];
      if (crop) frame.appendChild(cropSvg(crop, null, null, 0));
      fig.appendChild(frame);
      var cap = el("figcaption");
      cap.appendChild(el("span", "sim", isNum(nb.sim) ? nb.sim.toFixed(2) : "–"));
      cap.appendChild(el("span", "cls", nb.cls === null ? "?" : nb.cls));
      cap.title = (nb.cls === null ? "?" : nb.cls) + " · similarity " + (isNum(nb.sim) ? nb.sim.toFixed(3) : "?")
                  + (nb.aid !== null ? " · annotation id " + nb.aid : "");
      fig.appendChild(cap);
      row.appendChild(fig);
    });
    return row;
  }

  // -- cards --------------------------------------------------------------------------------------
  function canEdit(f) { return f.ann !== null && f.aid !== null; }

  function card(i, position) {
    var f = findings[i];
    var node = el("article", "card " + f.sev);
    node.dataset.index = String(i);
    node.dataset.fp = f.fp;
    node.dataset.code = f.code;
    node.tabIndex = -1;
    node.appendChild(thumbnail(f));
    var crop = cropFigure(f);
    if (crop) node.appendChild(crop); else node.classList.add("no-crop");
    var body = el("div", "body");
    var head = el("div", "head");
    head.appendChild(el("span", "sev " + f.sev, f.sev));
    head.appendChild(el("span", "code", f.code));
    head.appendChild(el("span", "rname", f.name));
    head.appendChild(el("span", "rank", "#" + fmt(i + 1) + " · score " + (isNum(f.score) ? f.score.toFixed(2) : "–")));
    head.appendChild(el("span", "decision"));
    body.appendChild(head);
    body.appendChild(el("p", "msg", f.msg));
    var meta = el("div", "meta");
    function fact(label, value) {
      var s = el("span");
      s.appendChild(document.createTextNode(label + " "));
      s.appendChild(el("b", null, value));
      meta.appendChild(s);
    }
    if (f.cls !== null) fact("class", f.cls);
    if (f.aid !== null) fact("annotation", f.aid);
    if (f.iid !== null && f.iid !== undefined) fact("image", f.iid);
    fact("at", (DATA.files.length === 1 && f.line !== null ? "line " + f.line + ":" + (f.col || 1) : f.loc) + " " + f.ptr);
    body.appendChild(meta);
    if (f.suggested !== undefined || f.sugg !== null || f.fix) {
      var sug = el("p", "suggest");
      if (f.suggested !== undefined) {
        sug.appendChild(document.createTextNode("suggested class "));
        sug.appendChild(el("b", null, f.suggested));
      } else if (f.sugg !== null) {
        sug.appendChild(document.createTextNode("suggestion "));
        sug.appendChild(el("b", null, f.sugg));
      }
      if (f.fix) sug.appendChild(document.createTextNode((f.suggested !== undefined || f.sugg !== null ? " · " : "")
                                                          + f.fix.safety + " fix: " + f.fix.title));
      if (f.fix && !f.accept) sug.appendChild(el("span", "no-accept", " · not recorded by Accept: apply it with "));
      if (f.fix && !f.accept) sug.lastChild.appendChild(el("code", null, fixCommand(f)));
      body.appendChild(sug);
    }
    body.appendChild(actions(i));
    node.appendChild(body);
    if (f.nb.length) node.appendChild(neighbours(f));
    node.addEventListener("click", function () { select(position, false); });
    return node;
  }

  function actions(i) {
    var f = findings[i];
    var row = el("div", "actions");
    if (canEdit(f)) {
      var accept = el("button", "accept", f.accept ? "Accept: " + f.accept.label : "Accept");
      accept.type = "button";
      accept.dataset.action = "accept";
      if (!f.accept) {
        accept.disabled = true;
        accept.title = noAcceptReason(f);
      }
      accept.addEventListener("click", function () { doAccept(i); });
      row.appendChild(accept);
      var pick = document.createElement("select");
      pick.className = "relabel";
      var first = document.createElement("option");
      first.value = "";
      first.text = "Class…";
      pick.appendChild(first);
      DATA.files[f.file].classes.forEach(function (c) {
        var o = document.createElement("option");
        o.value = String(c.id);
        o.text = c.name + (c.id === f.cid ? " (current)" : "");
        pick.appendChild(o);
      });
      pick.addEventListener("change", function () {
        if (pick.value === "") return;
        decide(i, {action: "relabel", category_id: Number(pick.value)});
      });
      row.appendChild(pick);
      var del = el("button", "delete", "Delete box");
      del.type = "button";
      del.dataset.action = "delete";
      del.addEventListener("click", function () { decide(i, {action: "delete"}); });
      row.appendChild(del);
    }
    var keep = el("button", "keep", "Keep");
    keep.type = "button";
    keep.dataset.action = "keep";
    keep.addEventListener("click", function () { decide(i, {action: "keep"}); });
    row.appendChild(keep);
    var undo = el("button", "undo", "Undo");
    undo.type = "button";
    undo.dataset.action = "undo";
    undo.addEventListener("click", function () { decide(i, null); });
    row.appendChild(undo);
    return row;
  }

  /* Why "accept" is off: a fix that is not a decision `labellint apply` takes (it takes relabels,
     deletions, boxes and annotation ids) is applied by `check --fix`; the card says which command. */
  function fixCommand(f) {
    return f.fix.safety === "safe" ? "labellint check --fix" : "labellint check --fix --unsafe-fixes";
  }

  function noAcceptReason(f) {
    if (!f.fix) return "nothing machine-readable is suggested for this finding";
    return "this fix is not a decision the page can record: apply it with `" + fixCommand(f) + "`";
  }

  function doAccept(i) {
    var f = findings[i];
    if (!canEdit(f) || !f.accept) return false;
    var d = {action: f.accept.action};
    if (f.accept.action === "relabel") d.category_id = f.accept.category_id;
    if (f.accept.action === "set_bbox") d.bbox = f.accept.bbox.slice();
    if (f.accept.action === "set_id") d.new_id = f.accept.new_id;
    decide(i, d);
    return true;
  }

  function cardNode(i) {
    return document.querySelector('#cards .card[data-index="' + i + '"]');
  }

  function refreshCard(i) {
    var node = cardNode(i);
    if (!node) return;
    var f = findings[i];
    var d = decisions.get(f.fp);
    node.classList.toggle("decided", !!d);
    node.dataset.decision = d ? d.action : "";
    var label = node.querySelector(".decision");
    label.textContent = d ? "✓ " + describe(f, d) : "undecided";
    label.title = d ? "decided: " + describe(f, d) : "no decision yet";
    label.classList.toggle("none", !d);
    node.querySelectorAll(".actions button").forEach(function (b) {
      var a = b.dataset.action;
      var chosen = d && ((a === "accept" && f.accept && d.action === f.accept.action &&
                          (d.action !== "relabel" || d.category_id === f.accept.category_id) &&
                          (d.action !== "set_bbox" || JSON.stringify(d.bbox) === JSON.stringify(f.accept.bbox)) &&
                          (d.action !== "set_id" || d.new_id === f.accept.new_id)) ||
                         (a === "delete" && d.action === "delete" && !(f.accept && f.accept.action === "delete")) ||
                         (a === "keep" && d.action === "keep"));
      b.classList.toggle("chosen", !!chosen);
    });
    node.querySelector(".undo").disabled = !d;
    var pick = node.querySelector("select.relabel");
    if (pick) {
      var picked = d && d.action === "relabel" && !(f.accept && f.accept.action === "relabel" &&
                                                   f.accept.category_id === d.category_id);
      pick.value = picked ? String(d.category_id) : "";
      pick.classList.toggle("chosen", !!picked);
    }
  }

  function refreshCounts() {
    var n = decisions.size;
    $("decided-count").textContent = fmt(n) + " decided · " + fmt(findings.length - n) + " undecided";
    $("progress-fill").style.width = (findings.length ? (100 * n / findings.length) : 0).toFixed(1) + "%";
    $("download").disabled = n === 0;
  }

  // -- paging and selection -----------------------------------------------------------------------
  function pages() { return Math.max(1, Math.ceil(view.filtered.length / PAGE_SIZE)); }

  function renderPage() {
    var cards = $("cards");
    cards.textContent = "";
    var start = view.page * PAGE_SIZE;
    var slice = view.filtered.slice(start, start + PAGE_SIZE);
    var frag = document.createDocumentFragment();
    slice.forEach(function (i, k) { frag.appendChild(card(i, start + k)); });
    cards.appendChild(frag);
    slice.forEach(refreshCard);
    if (!slice.length) {
      cards.appendChild(el("div", "empty", findings.length ? "No finding matches these filters." : "No findings: nothing to review."));
    }
    var info = view.filtered.length
      ? "findings " + fmt(start + 1) + "–" + fmt(start + slice.length) + " of " + fmt(view.filtered.length)
        + " · page " + fmt(view.page + 1) + " of " + fmt(pages())
      : "0 findings";
    $("page-info").textContent = info;
    $("page-info-bottom").textContent = info;
    ["prev-page", "prev-page-bottom"].forEach(function (id) { $(id).disabled = view.page === 0; });
    ["next-page", "next-page-bottom"].forEach(function (id) { $(id).disabled = view.page >= pages() - 1; });
    highlight(false);
  }

  function goPage(p) {
    p = Math.max(0, Math.min(pages() - 1, p));
    if (p === view.page) return;
    view.page = p;
    view.selected = p * PAGE_SIZE;
    renderPage();
    window.scrollTo(0, 0);
  }

  function highlight(scroll) {
    document.querySelectorAll("#cards .card.selected").forEach(function (n) { n.classList.remove("selected"); });
    if (!view.filtered.length) return;
    var node = cardNode(view.filtered[view.selected]);
    if (!node) return;
    node.classList.add("selected");
    if (scroll) node.scrollIntoView({block: "nearest"});
  }

  function select(position, scroll) {
    if (!view.filtered.length) return;
    position = Math.max(0, Math.min(view.filtered.length - 1, position));
    var page = Math.floor(position / PAGE_SIZE);
    view.selected = position;
    if (page !== view.page) {
      view.page = page;
      renderPage();
    }
    highlight(scroll);
  }

  function current() { return view.filtered.length ? view.filtered[view.selected] : null; }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = e.target && e.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var i = current();
    var handled = true;
    switch (e.key) {
      case "j": case "ArrowDown": select(view.selected + 1, true); break;
      case "k": case "ArrowUp": select(view.selected - 1, true); break;
      case "ArrowRight": case "]": goPage(view.page + 1); break;
      case "ArrowLeft": case "[": goPage(view.page - 1); break;
      case "a": if (i !== null && doAccept(i)) select(view.selected + 1, true); break;
      case "d": if (i !== null && canEdit(findings[i])) { decide(i, {action: "delete"}); select(view.selected + 1, true); } break;
      case "x": if (i !== null) { decide(i, {action: "keep"}); select(view.selected + 1, true); } break;
      case "u": if (i !== null) decide(i, null); break;
      case "c":
        var node = i === null ? null : cardNode(i);
        var pick = node && node.querySelector("select.relabel");
        if (pick) pick.focus();
        break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  }

  // -- header, notes, footer ----------------------------------------------------------------------
  function header() {
    var s = DATA.summary;
    $("version").textContent = DATA.tool.version;
    var chips = $("sev-counts");
    SEVERITIES.forEach(function (sev) {
      var n = s.by_severity[sev] || 0;
      chips.appendChild(el("span", "chip " + sev, fmt(n) + " " + (sev === "info" ? "info" : sev + (n === 1 ? "" : "s"))));
    });
    chips.appendChild(el("span", "chip total", fmt(s.findings) + " finding" + (s.findings === 1 ? "" : "s")));
    var files = DATA.files.map(function (f) { return f.label; });
    var text = (files.length ? files.join(", ") + " · " : "") + fmt(s.images) + " images · "
               + fmt(s.annotations) + " annotations";
    $("files").textContent = text;
    $("files").title = text;
    $("report-id").textContent = DATA.report;
    $("apply-command").textContent = applyCommands().join("\n");
    var notes = DATA.errors.map(function (e) { return "error: " + e; }).concat(DATA.notes);
    if (s.hidden) notes.push(fmt(s.hidden) + " findings hidden by the baseline or the diff base");
    if (notes.length) {
      var box = $("notes");
      box.hidden = false;
      box.appendChild(el("h2", null, "Notes"));
      notes.forEach(function (n) { box.appendChild(el("p", null, n)); });
    }
    showBanner();
  }

  function showBanner() {
    var s = DATA.summary;
    var lines = [];
    if (s.images_root && s.findings > s.pictured) {
      lines.push("Pictures are embedded for the first " + fmt(s.pictured) + " of " + fmt(s.findings)
                 + " findings only (to keep this file a reasonable size); the others show their box on a blank canvas.");
    }
    if (!s.images_root && s.findings) {
      lines.push("No pictures: the report was made without --images DIR, so boxes are drawn on blank canvases of the images' sizes.");
    }
    if (!storageOk) {
      lines.push("This browser does not let the page store data: decisions are lost on reload, so download them before closing.");
    }
    var banner = $("banner");
    banner.textContent = "";
    lines.forEach(function (l) { banner.appendChild(el("div", null, l)); });
    banner.hidden = !lines.length;
  }

  // -- start --------------------------------------------------------------------------------------
  loadDecisions();
  header();
  fillFilters();
  $("download").addEventListener("click", download);
  ["prev-page", "prev-page-bottom"].forEach(function (id) { $(id).addEventListener("click", function () { goPage(view.page - 1); }); });
  ["next-page", "next-page-bottom"].forEach(function (id) { $(id).addEventListener("click", function () { goPage(view.page + 1); }); });
  document.addEventListener("keydown", onKey);
  refreshCounts();
  applyFilters();
  document.body.dataset.ready = "1";
})();
