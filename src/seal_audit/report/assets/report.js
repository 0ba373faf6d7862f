/* seal-audit report: pair explorer, rewrite viewer, links from every number, URL state.
 *
 * Security rule of this file: dataset text is only ever written with textContent (never
 * innerHTML, never attribute-to-code), so a transcript containing <script> or <img onerror>
 * shows as text. The page's Content-Security-Policy allows only this script (by hash).
 *
 * The explorer's whole view (filters, sort, page, the open pair) lives in the URL hash as
 * "#explorer?key=value&…": a reload or a shared link restores it, and every link the report draws
 * on a number ("a door", class "door") is such a hash, filtering to exactly the pairs it counts.
 */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(x, d) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return Number(x).toFixed(d === undefined ? 2 : d).replace("-", "−");
  }
  function snippet(t, n) {
    var s = (t || "").replace(/\s+/g, " ").trim();
    return s.length > n ? s.slice(0, n) + "…" : s;
  }

  // the sticky header's height, so that a jump to a heading lands below it (CSS scroll-margin)
  var header = document.querySelector("header.top");
  function headerHeight() {
    if (header) document.documentElement.style.setProperty("--header-h", header.getBoundingClientRect().height + "px");
  }
  // a box that scrolls sideways (a wide figure or table on a phone) must be reachable by keyboard
  function markScrollable() {
    Array.prototype.forEach.call(document.querySelectorAll("figure, .table-wrap, .regimes, .half"), function (e) {
      if (e.scrollWidth > e.clientWidth + 1) {
        if (!e.hasAttribute("tabindex")) { e.tabIndex = 0; e.setAttribute("data-scroll", "1"); }
      } else if (e.getAttribute("data-scroll") === "1") { e.removeAttribute("tabindex"); e.removeAttribute("data-scroll"); }
    });
  }
  headerHeight();
  markScrollable();
  window.addEventListener("resize", function () { headerHeight(); markScrollable(); });
  // print every collapsed part (a printed <details> cannot be opened), then restore
  var closedForPrint = [];
  window.addEventListener("beforeprint", function () {
    var closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
    closedForPrint = closedForPrint.concat(closed);
  });
  window.addEventListener("afterprint", function () { closedForPrint.forEach(function (d) { d.open = false; }); closedForPrint = []; });

  var dataNode = document.getElementById("pair-data");
  var D = null;
  try { D = JSON.parse(dataNode ? dataNode.textContent : "null"); } catch (e) { D = null; }
  var root = document.getElementById("explorer-app");
  if (!D || !root || !D.n) {
    if (root) { clear(root); root.appendChild(el("p", "skipped", "not computed: " + ((D && D.missing) || "no pairs in this run"))); }
    return;
  }

  clear(root);
  var N = D.n;
  if (D.ctx_i && D.ctx_u) D.ctx = D.ctx_i.map(function (k) { return D.ctx_u[k]; });
  // at scale the page embeds the texts of a sample of pairs only (every pair's numbers are here)
  var hasText = null, nText = N;
  if (D.txt_i) {
    hasText = new Uint8Array(N); nText = D.txt_i.length;
    var fullCtx = new Array(N).fill(""), fullCh = new Array(N).fill(""), fullRj = new Array(N).fill("");
    D.txt_i.forEach(function (i, k) { hasText[i] = 1; fullCtx[i] = D.ctx[k]; fullCh[i] = D.ch[k]; fullRj[i] = D.rj[k]; });
    D.ctx = fullCtx; D.ch = fullCh; D.rj = fullRj;
  }
  var inFile = hasText ? hasText.slice() : null; // the pairs whose texts the file itself holds
  var NO_TEXT = "(text not in this file: see pairs.parquet, or `seal view RUN --serve`)";
  // served by `seal view --serve`: the texts the file lacks come from the run's Parquet, same origin
  var SERVED = document.documentElement.getAttribute("data-texts") === "served";
  var TEXTS_PATH = "/api/texts";
  var fetched = {}, fetchError = "";
  function needText(i) { return !!hasText && !hasText[i]; }
  function textOf(i, text) {
    if (!needText(i)) return text;
    if (!SERVED) return NO_TEXT;
    var st = fetched[D.ids[i]];
    return st === "failed" ? "(could not fetch the text from the server: " + fetchError + ")" : "(loading the text from the server…)";
  }
  // fetch the texts of pairs ``indices`` (at most a page at a time); when they arrive (or fail) the
  // table and an open detail panel are drawn again
  function textsArrived() {
    render();
    if (!detail.hidden) { var k = parseInt(detail.getAttribute("data-index"), 10); if (k >= 0) showPair(k, true); }
  }
  function fetchTexts(indices) {
    if (!SERVED || !hasText) return;
    var ids = [];
    indices.forEach(function (i) { if (needText(i) && !fetched[D.ids[i]]) { fetched[D.ids[i]] = "pending"; ids.push(D.ids[i]); } });
    if (!ids.length) return;
    fetch(TEXTS_PATH + "?ids=" + ids.map(encodeURIComponent).join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (t) { throw new Error(t.trim() || ("HTTP " + r.status)); });
        return r.json();
      })
      .then(function (doc) {
        ids.forEach(function (id) {
          var e = doc.pairs ? doc.pairs[id] : undefined, i = idIndex.get(id);
          if (!e || i === undefined) { fetched[id] = "failed"; fetchError = "pair not in the run's pairs table"; return; }
          D.ctx[i] = e.ctx; D.ch[i] = e.ch; D.rj[i] = e.rj;
          if (e.rctx !== undefined) { if (!D.rctx) D.rctx = {}; D.rctx[String(i)] = e.rctx; }
          (e.rw || []).forEach(function (x) {
            var t = trByName[x[0]];
            if (!t || t.pos[i] < 0) return;
            var j = t.pos[i], side = x[1];
            if (!t.txt[side]) t.txt[side] = {};
            if (x[2] !== null && t.txt[side]["o" + j] === undefined) t.txt[side]["o" + j] = x[2];
            if (x[3] !== null && t.txt[side]["r" + j] === undefined) t.txt[side]["r" + j] = x[3];
          });
          if (lower) { lower.ctx[i] = e.ctx.toLowerCase(); lower.ch[i] = e.ch.toLowerCase(); lower.rj[i] = e.rj.toLowerCase(); }
          hasText[i] = 1; nFetched++;
          fetched[id] = "done";
        });
        textsArrived();
      })
      .catch(function (err) {
        ids.forEach(function (id) { fetched[id] = "failed"; });
        fetchError = String(err && err.message ? err.message : err);
        textsArrived();
      });
  }
  var nFetched = 0;
  // served: the text search runs on the server over every pair (the file's own search covers the
  // texts it holds); while the answer is on its way the loaded texts are searched
  var SEARCH_PATH = "/api/search";
  var remote = null; // {q, hit: Uint8Array | null, error: string}
  function remoteHit(q) {
    if (!SERVED || !hasText) return null;
    if (remote && remote.q === q) return remote.hit;
    var mine = remote = { q: q, hit: null, error: "" };
    fetch(SEARCH_PATH + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (t) { throw new Error(t.trim() || ("HTTP " + r.status)); });
        return r.json();
      })
      .then(function (doc) {
        var hit = new Uint8Array(N);
        (doc.ids || []).forEach(function (id) { var i = idIndex.get(id); if (i !== undefined) hit[i] = 1; });
        mine.hit = hit;
        if (remote === mine && state.q.trim().toLowerCase() === q) refresh();
      })
      .catch(function (err) { mine.error = String(err && err.message ? err.message : err); if (remote === mine) render(); });
    return null;
  }
  var REGIME_LABEL = {
    stayed_aligned: "stayed aligned", got_aligned: "got aligned",
    resisted_alignment: "resisted", reversed_alignment: "reversed"
  };
  var GAMMA_LABEL = { c: "c · LM agrees", i: "i · LM indifferent", r: "r · LM disagrees", "-": "unknown" };
  var GATE_LABEL = { o: "passed the gate", d: "drifted", r: "rejected", f: "failed", n: "no rewrite record (rewritten rewards only)" };
  var rms = D.rms || [];
  var rmNames = rms.map(function (r) { return r.name; });
  var post = D.post || (rmNames.length ? rmNames[0] : "");
  var pre = D.pre || "";

  // per-RM margins as typed arrays (NaN = missing) for fast filter and sort
  var margins = {};
  rmNames.forEach(function (rm) {
    var c = D.rw[rm][0], r = D.rw[rm][1], m = new Float64Array(N);
    for (var i = 0; i < N; i++) {
      m[i] = (c[i] === null || r[i] === null) ? NaN : c[i] - r[i];
    }
    margins[rm] = m;
  });
  var theta = D.theta ? Float64Array.from(D.theta, function (v) { return v === null ? NaN : v; }) : null;
  var regime = D.regime || null;
  var gamma = D.gamma || null;
  var susp = new Uint8Array(N);
  var suspRank = new Int32Array(N).fill(-1);
  (D.susp || []).forEach(function (i, k) { susp[i] = 1; suspRank[i] = k; });
  var trunc = new Uint8Array(N);
  (D.trunc || []).forEach(function (i) { trunc[i] = 1; });
  var feats = D.feats || [];
  var agree = D.agree || {};
  var transforms = D.tr || [];
  var trByName = {};
  transforms.forEach(function (t) {
    trByName[t.name] = t;
    t.pos = new Int32Array(N).fill(-1); // pair index → entry of this transform
    t.i.forEach(function (i, j) { t.pos[i] = j; });
  });
  var kinds = [];
  transforms.forEach(function (t) { if (kinds.indexOf(t.kind) < 0) kinds.push(t.kind); });
  var idIndex = new Map();
  for (var ii = 0; ii < N; ii++) idIndex.set(D.ids[ii], ii);
  var lower = null; // lazily built lower-cased texts for the search

  // ---- state and the URL -----------------------------------------------------------------------
  // One state object; URL_KEYS maps it to the hash. Only non-default values are written.
  function defaults() {
    return {
      regime: "all", gamma: "all", susp: false, q: "", ids: "",
      feature: "", side: "either", op: ">=", fval: "1",
      mrm: post, mmin: "", mmax: "", agree: "", cal: "",
      t: "all", kind: "all", rw: "", rwrm: post,
      sortKey: "index", sortDir: 1, page: 0, pageSize: 25, pair: "", forest: ""
    };
  }
  var URL_KEYS = {
    regime: "regime", gamma: "gamma", susp: "susp", q: "q", ids: "ids",
    feature: "f", side: "fside", op: "fop", fval: "fval",
    mrm: "mrm", mmin: "mmin", mmax: "mmax", agree: "agree", cal: "cal",
    t: "t", kind: "kind", rw: "rw", rwrm: "rwrm",
    sortKey: "sort", sortDir: "dir", page: "page", pageSize: "size", pair: "pair", forest: "forest"
  };
  var state = defaults();
  var view = null;

  function encodeState() {
    var d = defaults(), parts = [];
    Object.keys(URL_KEYS).forEach(function (k) {
      var v = state[k];
      if (k === "page") v = state.page + 1;
      if (k === "regime" && v !== "all") v = parseInt(v, 10) >= 0 ? D.regimes[parseInt(v, 10)] : "unknown";
      var dv = k === "page" ? 1 : d[k];
      if (v === dv || (k === "susp" && !v)) return;
      parts.push(encodeURIComponent(URL_KEYS[k]) + "=" + encodeURIComponent(k === "susp" ? "1" : String(v)));
    });
    return "#explorer" + (parts.length ? "?" + parts.join("&") : "");
  }
  function parseHash(hash) {
    var q = hash.indexOf("?");
    if (hash.indexOf("#explorer") !== 0 || q < 0) return null;
    var s = defaults(), back = {};
    Object.keys(URL_KEYS).forEach(function (k) { back[URL_KEYS[k]] = k; });
    hash.slice(q + 1).split("&").forEach(function (kv) {
      if (!kv) return;
      var eq = kv.indexOf("="), key = decodeURIComponent(eq < 0 ? kv : kv.slice(0, eq));
      var val = eq < 0 ? "" : decodeURIComponent(kv.slice(eq + 1).replace(/\+/g, " "));
      var k = back[key];
      if (!k) return;
      if (k === "susp") s.susp = val === "1" || val === "true";
      else if (k === "sortDir") s.sortDir = val === "-1" ? -1 : 1;
      else if (k === "page") s.page = Math.max(0, (parseInt(val, 10) || 1) - 1);
      else if (k === "pageSize") s.pageSize = [25, 50, 100, 250].indexOf(parseInt(val, 10)) >= 0 ? parseInt(val, 10) : 25;
      else if (k === "regime") {
        var r = (D.regimes || []).indexOf(val);
        s.regime = val === "all" ? "all" : (r >= 0 ? String(r) : (val === "unknown" ? "-1" : val));
      } else s[k] = val;
    });
    return s;
  }
  function writeUrl(push) {
    var h = encodeState();
    if (location.hash === h) return;
    if (h === "#explorer" && location.hash.indexOf("#explorer?") !== 0) return; // nothing to keep
    try {
      if (push) history.pushState(null, "", h); else history.replaceState(null, "", h);
    } catch (e) { /* file:// in some browsers: the view still works, only the URL stays */ }
  }

  // ---- controls ------------------------------------------------------------------------------
  function option(sel, value, label) { var o = el("option", null, label); o.value = value; sel.appendChild(o); return o; }
  var ctlCount = 0;
  function labelled(text, control) {
    var l = el("label", "ctl"); l.appendChild(el("span", null, text)); l.appendChild(control);
    if (!control.id) control.id = "ex-ctl-" + (ctlCount++);
    l.htmlFor = control.tagName === "SPAN" ? "" : control.id;
    return l;
  }
  function aria(control, text) { control.setAttribute("aria-label", text); return control; }

  var controls = el("div", "controls");
  var qInput = el("input"); qInput.type = "search"; qInput.placeholder = "search context, chosen, rejected…"; qInput.id = "ex-search";
  controls.appendChild(labelled("Text", qInput));

  var regSel = el("select"); regSel.id = "ex-regime";
  option(regSel, "all", "all");
  (D.regimes || []).forEach(function (r, i) { option(regSel, String(i), REGIME_LABEL[r] || r); });
  option(regSel, "-1", "unknown");
  if (regime) controls.appendChild(labelled("Regime", regSel));

  var gSel = el("select"); gSel.id = "ex-gamma";
  option(gSel, "all", "all");
  ["c", "i", "r", "-"].forEach(function (g) { option(gSel, g, GAMMA_LABEL[g]); });
  if (gamma) controls.appendChild(labelled("LM agreement γ", gSel));

  var mSel = aria(el("select"), "RM of the margin"); mSel.id = "ex-margin-rm";
  rmNames.forEach(function (r) { option(mSel, r, r); });
  mSel.value = post;
  var mMin = aria(el("input"), "minimum margin"); mMin.type = "number"; mMin.step = "any"; mMin.placeholder = "min"; mMin.id = "ex-margin-min";
  var mMax = aria(el("input"), "maximum margin"); mMax.type = "number"; mMax.step = "any"; mMax.placeholder = "max"; mMax.id = "ex-margin-max";
  var mBox = el("span", "inline"); mBox.appendChild(mSel); mBox.appendChild(mMin); mBox.appendChild(mMax);
  if (rmNames.length) controls.appendChild(labelled("Reward margin r(t_c) − r(t_r)", mBox));

  var aSel = el("select"); aSel.id = "ex-agree";
  option(aSel, "", "any");
  Object.keys(agree).forEach(function (rm) {
    option(aSel, rm + ":1", rm + " agrees with the human");
    option(aSel, rm + ":0", rm + " disagrees (misaligned)");
  });
  if (Object.keys(agree).length) controls.appendChild(labelled("RM verdict", aSel));

  // calibration bins (pair-once reliability): one code character per pair and RM
  var CAL = D.cal && D.cal.rms ? D.cal : null;
  var BIN_CODES = "0123456789abcdefghijklmnopqrstuvwxyz";
  var cSel = el("select"); cSel.id = "ex-cal";
  option(cSel, "", "any");
  if (CAL) Object.keys(CAL.rms).forEach(function (rm) {
    for (var b = 0; b < CAL.k; b++) {
      var lo = 0.5 + b / (2 * CAL.k), hi = 0.5 + (b + 1) / (2 * CAL.k);
      option(cSel, rm + ":" + b, rm + " · P(its pick wins) " + lo.toFixed(2) + "–" + hi.toFixed(2));
    }
  });
  if (CAL && Object.keys(CAL.rms).length) controls.appendChild(labelled("Calibration bin", cSel));

  var fSel = aria(el("select"), "feature"); fSel.id = "ex-feature";
  option(fSel, "", "(any)");
  feats.forEach(function (f) { option(fSel, f.name, f.name + (f.role ? " · " + f.role : "")); });
  var sideSel = aria(el("select"), "side of the feature test"); sideSel.id = "ex-feature-side";
  [["either", "either side"], ["both", "both sides"], ["chosen", "chosen"], ["rejected", "rejected"], ["diff", "chosen − rejected"]].forEach(function (p) { option(sideSel, p[0], p[1]); });
  var opSel = aria(el("select"), "comparison"); opSel.id = "ex-feature-op";
  [">=", "<=", "=", "!="].forEach(function (o) { option(opSel, o, o); });
  var fVal = aria(el("input"), "feature value"); fVal.type = "number"; fVal.step = "any"; fVal.value = "1"; fVal.id = "ex-feature-value";
  var fBox = el("span", "inline"); [fSel, sideSel, opSel, fVal].forEach(function (c) { fBox.appendChild(c); });
  if (feats.length) controls.appendChild(labelled("Feature", fBox));

  var tSel = el("select"); tSel.id = "ex-transform";
  option(tSel, "all", "any transform");
  transforms.forEach(function (t) { option(tSel, t.name, t.name + (t.kind && t.kind !== "unknown" ? " · " + t.kind : "")); });
  var kSel = el("select"); kSel.id = "ex-kind";
  option(kSel, "all", "any kind");
  kinds.forEach(function (k) { option(kSel, k, k); });
  var rwSel = aria(el("select"), "rewrite outcome"); rwSel.id = "ex-rewrite";
  [["", "(no rewrite filter)"], ["has", "rewritten"], ["used", "used by the robustness analysis"],
   ["flipped", "verdict flipped"], ["misaligned", "became misaligned"], ["excluded", "excluded by the gate"],
   ["drifted", "drifted"], ["rejected", "rejected"], ["failed", "failed"]].forEach(function (p) { option(rwSel, p[0], p[1]); });
  var rwRm = aria(el("select"), "RM whose verdict flips"); rwRm.id = "ex-rewrite-rm";
  rmNames.forEach(function (r) { option(rwRm, r, r); });
  rwRm.value = post;
  var tBox = el("span", "inline"); [tSel, kSel, rwSel, rwRm].forEach(function (c) { tBox.appendChild(c); });
  if (transforms.length) controls.appendChild(labelled("Rewrite", tBox));

  var sCheck = el("input"); sCheck.type = "checkbox"; sCheck.id = "ex-susp";
  if (D.susp) controls.appendChild(labelled("Suspicious only", sCheck));

  var idsNote = el("span", "ids-note"); idsNote.id = "ex-ids";
  controls.appendChild(idsNote);
  var resetBtn = el("button", "btn", "Reset"); resetBtn.type = "button"; resetBtn.id = "ex-reset";
  controls.appendChild(resetBtn);
  root.appendChild(controls);

  // which mode the report is in: the file alone, or served with every pair's texts
  var modeNote = el("p", "note ex-mode"); modeNote.id = "ex-mode";
  modeNote.setAttribute("data-mode", SERVED ? "served" : "file");
  if (SERVED) modeNote.textContent = "Served by seal view --serve: every pair's texts (and rewrites) are read from the run's Parquet on demand" +
    (hasText ? "; the file alone holds the texts of " + nText.toLocaleString("en") + " of " + N.toLocaleString("en") + " pairs." : ".");
  else if (hasText) modeNote.textContent = "This file holds every pair's numbers but the texts of a sample of " + nText.toLocaleString("en") + " of " +
    N.toLocaleString("en") + " pairs (the watchlist, rewritten pairs, then a fixed sample); `seal view RUN --serve` shows every pair's texts.";
  else modeNote.textContent = "This file holds every pair's texts.";
  root.appendChild(modeNote);
  var status = el("p", "ex-status"); status.id = "ex-status"; status.setAttribute("aria-live", "polite");
  root.appendChild(status);

  // ---- table ---------------------------------------------------------------------------------
  var columns = [{ key: "id", label: "pair" }];
  if (regime) columns.push({ key: "regime", label: "regime" });
  if (gamma) columns.push({ key: "gamma", label: "γ" });
  rmNames.forEach(function (r) { columns.push({ key: "m:" + r, label: "margin " + r, num: true }); });
  if (theta) columns.push({ key: "theta", label: "θ (°)", num: true });
  columns.push({ key: "feat", label: "feature c / r", num: true });
  columns.push({ key: "ch", label: "chosen" });
  columns.push({ key: "rj", label: "rejected" });

  var wrap = el("div", "table-wrap");
  var tbl = el("table", "data explorer"); tbl.id = "ex-table";
  var thead = el("thead"), htr = el("tr");
  columns.forEach(function (c) {
    var th = el("th", c.num ? "num sortable" : (c.key === "ch" || c.key === "rj" ? "snip" : "sortable"), c.label);
    th.setAttribute("scope", "col");
    if (c.key !== "ch" && c.key !== "rj") {
      th.setAttribute("data-key", c.key);
      th.setAttribute("aria-sort", "none");
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(c.key); });
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(c.key); } });
    }
    htr.appendChild(th);
  });
  thead.appendChild(htr); tbl.appendChild(thead);
  var tbody = el("tbody"); tbl.appendChild(tbody);
  wrap.appendChild(tbl); root.appendChild(wrap);

  var pager = el("div", "pager");
  var prevBtn = el("button", "btn", "‹ Prev"); prevBtn.type = "button"; prevBtn.id = "ex-prev";
  var nextBtn = el("button", "btn", "Next ›"); nextBtn.type = "button"; nextBtn.id = "ex-next";
  var pageInfo = el("span", "page-info");
  var sizeSel = aria(el("select"), "pairs per page"); sizeSel.id = "ex-page-size";
  [25, 50, 100, 250].forEach(function (s) { option(sizeSel, String(s), s + " per page"); });
  pager.appendChild(prevBtn); pager.appendChild(pageInfo); pager.appendChild(nextBtn); pager.appendChild(sizeSel);
  root.appendChild(pager);

  var detail = el("div", "detail"); detail.id = "ex-detail"; detail.hidden = true;
  root.appendChild(detail);

  function syncControls() {
    qInput.value = state.q; regSel.value = state.regime; gSel.value = state.gamma; sCheck.checked = state.susp;
    mSel.value = state.mrm; mMin.value = state.mmin; mMax.value = state.mmax; aSel.value = state.agree;
    cSel.value = state.cal;
    fSel.value = state.feature; sideSel.value = state.side; opSel.value = state.op; fVal.value = state.fval;
    tSel.value = state.t; kSel.value = state.kind; rwSel.value = state.rw; rwRm.value = state.rwrm;
    sizeSel.value = String(state.pageSize);
    var n = state.ids ? state.ids.split(",").length : 0;
    idsNote.textContent = n ? "only " + n + " chosen pair" + (n > 1 ? "s" : "") : "";
  }

  // ---- filtering and sorting -----------------------------------------------------------------
  function featVal(name, side, i) {
    var col = D.fv[name];
    if (!col) return NaN;
    if (col.s) {  // one digit per pair, offset by lo; '.' = missing (see _explorer._feature_column)
      var c = col.s[side].charCodeAt(i);
      return c >= 48 && c <= 57 ? c - 48 + col.lo : NaN;
    }
    var v = col[side][i];
    return v === null || v === undefined ? NaN : v;
  }
  function test(op, v, x) {
    if (!isFinite(v)) return false;
    if (op === ">=") return v >= x;
    if (op === "<=") return v <= x;
    if (op === "=") return v === x;
    return v !== x;
  }
  function ensureLower() {
    if (lower) return;
    lower = { ctx: D.ctx.map(function (t) { return t.toLowerCase(); }),
              ch: D.ch.map(function (t) { return t.toLowerCase(); }),
              rj: D.rj.map(function (t) { return t.toLowerCase(); }) };
  }
  // does entry j of transform t satisfy the rewrite outcome filter?
  function rwTest(t, j) {
    var w = state.rw;
    var st = t.st.charAt(j);
    if (!w) return true;
    if (w === "has") return st !== "n";
    if (w === "used") { var f = t.fl[state.rwrm]; return f ? f.charAt(j) !== "-" : false; }
    if (w === "flipped") { var fl = t.fl[state.rwrm]; return fl ? fl.charAt(j) === "1" : false; }
    if (w === "misaligned") { var bm = t.bm[state.rwrm]; return bm ? bm.charAt(j) === "1" : false; }
    if (w === "excluded") return st === "f" || st === "r" || (st === "d" && t.exclude_drifted);
    if (w === "drifted") return st === "d";
    if (w === "rejected") return st === "r";
    if (w === "failed") return st === "f";
    return true;
  }
  function compute() {
    var out = new Int32Array(N), k = 0;
    var q = state.q.trim().toLowerCase();
    if (q) ensureLower();
    var qHit = q ? remoteHit(q) : null;
    var reg = state.regime === "all" ? null : parseInt(state.regime, 10);
    var g = state.gamma === "all" ? null : state.gamma;
    var m = margins[state.mrm];
    var lo = state.mmin === "" ? -Infinity : parseFloat(state.mmin);
    var hi = state.mmax === "" ? Infinity : parseFloat(state.mmax);
    var useM = m && (lo > -Infinity || hi < Infinity);
    var fx = parseFloat(state.fval);
    var useF = state.feature && isFinite(fx);
    var ag = null;
    if (state.agree) { var p = state.agree.lastIndexOf(":"); ag = { s: agree[state.agree.slice(0, p)] || "", v: state.agree.slice(p + 1) }; }
    var cb = null;
    if (state.cal && CAL) {
      var cp = state.cal.lastIndexOf(":");
      cb = { s: CAL.rms[state.cal.slice(0, cp)] || "", v: BIN_CODES.charAt(parseInt(state.cal.slice(cp + 1), 10)) || "?" };
    }
    var useT = state.t !== "all" || state.kind !== "all" || state.rw;
    var ts = transforms.filter(function (t) { return (state.t === "all" || t.name === state.t) && (state.kind === "all" || t.kind === state.kind); });
    var only = null;
    if (state.ids) { only = new Uint8Array(N); state.ids.split(",").forEach(function (id) { var i = idIndex.get(id); if (i !== undefined) only[i] = 1; }); }
    for (var i = 0; i < N; i++) {
      if (only && !only[i]) continue;
      if (reg !== null && (!regime || regime[i] !== reg)) continue;
      if (g !== null && (!gamma || gamma.charAt(i) !== g)) continue;
      if (state.susp && !susp[i]) continue;
      if (ag && ag.s.charAt(i) !== ag.v) continue;
      if (cb && cb.s.charAt(i) !== cb.v) continue;
      if (useM) { var mv = m[i]; if (!(mv >= lo && mv <= hi)) continue; }
      if (useF) {
        var c = featVal(state.feature, 0, i), r = featVal(state.feature, 1, i), ok;
        if (state.side === "chosen") ok = test(state.op, c, fx);
        else if (state.side === "rejected") ok = test(state.op, r, fx);
        else if (state.side === "both") ok = test(state.op, c, fx) && test(state.op, r, fx);
        else if (state.side === "diff") ok = test(state.op, c - r, fx);
        else ok = test(state.op, c, fx) || test(state.op, r, fx);
        if (!ok) continue;
      }
      if (useT) {
        var hit = false;
        for (var x = 0; x < ts.length && !hit; x++) { var j = ts[x].pos[i]; if (j >= 0 && rwTest(ts[x], j)) hit = true; }
        if (!hit) continue;
      }
      if (qHit) { if (!qHit[i]) continue; }
      else if (q && lower.ctx[i].indexOf(q) < 0 && lower.ch[i].indexOf(q) < 0 && lower.rj[i].indexOf(q) < 0) continue;
      out[k++] = i;
    }
    var idx = Array.prototype.slice.call(out.subarray(0, k));
    var key = state.sortKey, dir = state.sortDir;
    if (key !== "index" && key !== "id" && key !== "gamma") {
      // numeric keys (missing last, ties by pair order): a stable radix sort of the keys' bits,
      // exact and without a comparator call per comparison (160,800 pairs in tens of ms)
      var get = sortGetter(key), len = idx.length, vals = new Float64Array(len);
      for (var p2 = 0; p2 < len; p2++) {
        var v = get(idx[p2]);
        vals[p2] = (typeof v === "number" && isFinite(v)) ? v * dir : Infinity;
      }
      idx = radixOrder(idx, vals);
    } else if (key !== "index") {
      var getter = sortGetter(key);
      idx.sort(function (a, b) {
        var x = getter(a), y = getter(b);
        var xn = (typeof x === "number" && !isFinite(x)), yn = (typeof y === "number" && !isFinite(y));
        if (xn || yn) return xn === yn ? a - b : (xn ? 1 : -1); // missing values last
        if (x < y) return -dir;
        if (x > y) return dir;
        return a - b;
      });
    }
    view = idx;
  }
  // positions ``idx`` ordered by ``vals`` (ascending, ties in input order): LSD radix sort, 16 bits
  // a pass, over each float64 mapped to an unsigned integer of the same order (−0 as +0)
  function radixOrder(idx, vals) {
    var len = vals.length, f = new Float64Array(1), u = new Uint32Array(f.buffer), p;
    var H = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0, L = 1 - H; // word order
    var hi = new Uint32Array(len), lo = new Uint32Array(len);
    for (p = 0; p < len; p++) {
      f[0] = vals[p] + 0;
      var h = u[H], l = u[L];
      if (h & 0x80000000) { h = ~h >>> 0; l = ~l >>> 0; } else h = (h | 0x80000000) >>> 0;
      hi[p] = h; lo[p] = l;
    }
    var perm = new Int32Array(len), tmp = new Int32Array(len), count = new Uint32Array(65536);
    for (p = 0; p < len; p++) perm[p] = p;
    var words = [lo, lo, hi, hi];
    for (var pass = 0; pass < 4; pass++) {
      var w = words[pass], shift = pass % 2 ? 16 : 0, k, sum = 0;
      count.fill(0);
      for (p = 0; p < len; p++) count[(w[perm[p]] >>> shift) & 0xffff]++;
      for (k = 0; k < 65536; k++) { var c = count[k]; count[k] = sum; sum += c; }
      for (p = 0; p < len; p++) { var q = perm[p]; tmp[count[(w[q] >>> shift) & 0xffff]++] = q; }
      var t = perm; perm = tmp; tmp = t;
    }
    var out = new Int32Array(len);
    for (p = 0; p < len; p++) out[p] = idx[perm[p]];
    return out;
  }
  function sortGetter(key) {
    if (key === "id") return function (i) { return D.ids[i]; };
    if (key === "rank") return function (i) { return suspRank[i] < 0 ? NaN : suspRank[i]; };
    if (key === "regime") return function (i) { return regime[i] < 0 ? NaN : regime[i]; };
    if (key === "gamma") return function (i) { return gamma.charAt(i); };
    if (key === "theta") return function (i) { return theta[i]; };
    if (key === "feat") return function (i) {
      if (!state.feature) return NaN;
      var c = featVal(state.feature, 0, i), r = featVal(state.feature, 1, i);
      return c - r;
    };
    if (key.slice(0, 2) === "m:" && margins[key.slice(2)]) { var m = margins[key.slice(2)]; return function (i) { return m[i]; }; }
    return function (i) { return i; };
  }
  function sortBy(key) {
    if (state.sortKey === key) state.sortDir = -state.sortDir; else { state.sortKey = key; state.sortDir = 1; }
    refresh(true);
  }

  // ---- rendering -----------------------------------------------------------------------------
  function render() {
    clear(tbody);
    var total = view.length, size = state.pageSize;
    var pages = Math.max(1, Math.ceil(total / size));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * size, end = Math.min(total, start + size);
    for (var j = start; j < end; j++) {
      var i = view[j], tr = el("tr", "pair-row");
      tr.setAttribute("data-index", String(i));
      tr.tabIndex = 0;
      columns.forEach(function (c) {
        var td;
        if (c.key === "id") td = el("td", "mono", D.ids[i]);
        else if (c.key === "regime") {
          td = el("td");
          var rg = regime[i] >= 0 ? D.regimes[regime[i]] : null;
          td.appendChild(el("span", "pill r-" + (rg || "none"), rg ? REGIME_LABEL[rg] : "–"));
        } else if (c.key === "gamma") td = el("td", "center", gamma.charAt(i) === "-" ? "–" : gamma.charAt(i));
        else if (c.key.slice(0, 2) === "m:") {
          var mv = margins[c.key.slice(2)][i];
          td = el("td", "num " + (mv > 0 ? "pos" : mv <= 0 ? "neg" : ""), fmt(mv));
        } else if (c.key === "theta") td = el("td", "num", fmt(theta[i], 1));
        else if (c.key === "feat") {
          td = el("td", "num", state.feature ? fmt(featVal(state.feature, 0, i), 2) + " / " + fmt(featVal(state.feature, 1, i), 2) : "");
        } else td = el("td", "snip", needText(i) ? textOf(i, "") : snippet(c.key === "ch" ? D.ch[i] : D.rj[i], 90));
        tr.appendChild(td);
      });
      if (susp[i]) tr.classList.add("susp");
      if (String(i) === detail.getAttribute("data-index") && !detail.hidden) tr.classList.add("selected");
      tbody.appendChild(tr);
    }
    Array.prototype.forEach.call(htr.children, function (th) {
      var k = th.getAttribute("data-key");
      if (!k) return;
      if (k === "feat") th.textContent = state.feature ? state.feature + " c / r" : "feature c / r";
      var on = k === state.sortKey;
      th.classList.toggle("asc", on && state.sortDir > 0);
      th.classList.toggle("desc", on && state.sortDir < 0);
      th.setAttribute("aria-sort", on ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
    });
    status.textContent = total.toLocaleString("en") + " of " + N.toLocaleString("en") + " pairs match" +
      (total ? " · showing " + (start + 1).toLocaleString("en") + "–" + end.toLocaleString("en") : "") +
      (hasText && !SERVED ? " · texts (and the text search) cover " + nText.toLocaleString("en") + " of " + N.toLocaleString("en") +
       " pairs: the watchlist, rewritten pairs, then a fixed sample" : "") +
      (hasText && SERVED && state.q.trim() ? searchNote() : "");
    if (SERVED) fetchTexts(Array.prototype.slice.call(view, start, end));
    status.setAttribute("data-count", String(total));
    pageInfo.textContent = "page " + (state.page + 1) + " of " + pages;
    prevBtn.disabled = state.page <= 0;
    nextBtn.disabled = state.page >= pages - 1;
  }
  function searchNote() {
    var q = state.q.trim().toLowerCase();
    if (remote && remote.q === q && remote.hit) return " · text search over all " + N.toLocaleString("en") + " pairs (served)";
    if (remote && remote.q === q && remote.error) return " · the server's text search failed (" + remote.error + "): the " +
      (nText + nFetched).toLocaleString("en") + " pairs whose texts are loaded were searched";
    return " · searching all pairs on the server… (meanwhile the " + (nText + nFetched).toLocaleString("en") + " loaded)";
  }
  function refresh(keepPage) {
    compute();
    if (!keepPage) state.page = 0;
    render();
    writeUrl(false);
  }

  function kvTable(rows, headers, caption) {
    var t = el("table", "data small"), tb = el("tbody");
    if (caption) t.appendChild(el("caption", null, caption));
    if (headers) {
      var th = el("thead"), tr = el("tr");
      headers.forEach(function (h, k) { var c = el("th", k > 0 ? "num" : null, h); c.setAttribute("scope", "col"); tr.appendChild(c); });
      th.appendChild(tr); t.appendChild(th);
    }
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (c, k) {
        var td = el("td", k > 0 ? "num" : null);
        if (c && c.nodeType) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    return t;
  }

  // ---- word diff (original vs rewrite) -------------------------------------------------------
  function words(s) { return (s || "").split(/(\s+)/).filter(function (w) { return w.length; }); }
  // Longest common subsequence over words, after trimming the common head and tail; a middle too
  // large for a quadratic table is shown as one replaced block (said so), never freezing the page.
  function wordDiff(a, b) {
    var A = words(a), B = words(b), head = 0, tail = 0;
    while (head < A.length && head < B.length && A[head] === B[head]) head++;
    while (tail < A.length - head && tail < B.length - head && A[A.length - 1 - tail] === B[B.length - 1 - tail]) tail++;
    var a2 = A.slice(head, A.length - tail), b2 = B.slice(head, B.length - tail), ops = [];
    A.slice(0, head).forEach(function (w) { ops.push(["=", w]); });
    if (a2.length * b2.length > 4e6) {
      a2.forEach(function (w) { ops.push(["-", w]); });
      b2.forEach(function (w) { ops.push(["+", w]); });
    } else {
      var n = a2.length, m = b2.length, L = [];
      for (var i = 0; i <= n; i++) L.push(new Uint32Array(m + 1));
      for (i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--)
        L[i][j] = a2[i] === b2[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
      i = 0; j = 0;
      while (i < n && j < m) {
        if (a2[i] === b2[j]) { ops.push(["=", a2[i]]); i++; j++; }
        else if (L[i + 1][j] >= L[i][j + 1]) ops.push(["-", a2[i++]]);
        else ops.push(["+", b2[j++]]);
      }
      while (i < n) ops.push(["-", a2[i++]]);
      while (j < m) ops.push(["+", b2[j++]]);
    }
    A.slice(A.length - tail).forEach(function (w) { ops.push(["=", w]); });
    return ops;
  }
  function diffView(orig, rew) {
    var ops = wordDiff(orig, rew), box = el("div", "diff");
    var left = el("div", "text diff-a"), right = el("div", "text diff-b");
    var nDel = 0, nIns = 0;
    ops.forEach(function (o) {
      if (o[0] === "=") { left.appendChild(document.createTextNode(o[1])); right.appendChild(document.createTextNode(o[1])); }
      else if (o[0] === "-") { left.appendChild(el("del", null, o[1])); if (/\S/.test(o[1])) nDel++; }
      else { right.appendChild(el("ins", null, o[1])); if (/\S/.test(o[1])) nIns++; }
    });
    var a = el("div", "diff-col"), b = el("div", "diff-col");
    a.appendChild(el("h6", null, "original")); a.appendChild(left);
    b.appendChild(el("h6", null, "rewrite")); b.appendChild(right);
    box.appendChild(a); box.appendChild(b);
    box.setAttribute("data-deleted", String(nDel)); box.setAttribute("data-inserted", String(nIns));
    return box;
  }

  function rewriteViewer(i) {
    var box = el("div", "rewrites"); box.id = "ex-rewrites";
    var any = false;
    transforms.forEach(function (t) {
      var j = t.pos[i];
      if (j < 0) return;
      any = true;
      var st = t.st.charAt(j), used = t.fl[post] ? t.fl[post].charAt(j) !== "-" : false;
      var card = el("div", "rewrite"); card.setAttribute("data-transform", t.name);
      card.appendChild(el("h4", null, "Rewrite · " + t.name + (t.kind && t.kind !== "unknown" ? " (" + t.kind + ")" : "")));
      var gate = GATE_LABEL[st] || "–";
      if (st === "d") gate += t.exclude_drifted ? " — excluded by the gate" : " — kept (drifted rewrites are not excluded)";
      if (t.why && t.why[String(j)]) gate += ": " + t.why[String(j)];
      var meta = el("p", "meta");
      function add(label, value, cls) {
        var s = el("span", "meta-item " + (cls || "")); s.appendChild(el("b", null, label + ": "));
        s.appendChild(document.createTextNode(value)); meta.appendChild(s);
      }
      add("gate", gate, st === "o" ? "" : "warn");
      add("drift score (similarity)", "chosen " + fmt(t.sim[0][j], 3) + " · rejected " + fmt(t.sim[1][j], 3));
      add("robustness analysis", used ? "uses this pair" : "leaves this pair out");
      card.appendChild(meta);
      [0, 1].forEach(function (side) {
        var key = side === 0 ? "chosen" : "rejected";
        var o = t.txt[side] ? t.txt[side]["o" + j] : undefined, r = t.txt[side] ? t.txt[side]["r" + j] : undefined;
        if (o === undefined && r === undefined) return;
        card.appendChild(el("h5", null, key + " response: original vs rewrite"));
        if (r === undefined || r === null) card.appendChild(el("p", "note", "no rewrite text (" + gate + ")"));
        else card.appendChild(diffView(o === undefined ? (side === 0 ? D.ch[i] : D.rj[i]) : o, r));
      });
      var rows = [];
      rmNames.forEach(function (rm) {
        var rw = t.rw[rm];
        if (!rw) return;
        var c0 = D.rw[rm][0][i], r0 = D.rw[rm][1][i], c1 = rw[0][j], r1 = rw[1][j];
        var m0 = (c0 === null || r0 === null) ? NaN : c0 - r0, m1 = (c1 === null || r1 === null) ? NaN : c1 - r1;
        var f = t.fl[rm] ? t.fl[rm].charAt(j) : "-";
        rows.push([rm, fmt(c0, 3) + " → " + fmt(c1, 3), fmt(r0, 3) + " → " + fmt(r1, 3), fmt(m0, 3) + " → " + fmt(m1, 3),
                   f === "-" ? "not used" : (f === "1" ? "flipped" : "kept")]);
      });
      if (rows.length) card.appendChild(kvTable(rows, ["RM", "chosen reward", "rejected reward", "margin", "verdict"], "Rewards before → after"));
      var fr = (t.fch || []).filter(function (x) { return x[0] === j; }).map(function (x) {
        return [(x[1] === 0 ? "chosen · " : "rejected · ") + x[2], fmt(featVal(x[2], x[1], i), 2) + " → " + fmt(x[3], 2)];
      });
      if (fr.length) card.appendChild(kvTable(fr, ["feature", "before → after"], "Feature changes"));
      else card.appendChild(el("p", "note", "No labelled feature changed."));
      box.appendChild(card);
    });
    return any ? box : null;
  }

  // features that differ within the pair, each with its β·Δτ contribution to the margin
  function contributions(i) {
    var B = D.beta;
    if (!B || !feats.length) return null;
    var rows = [];
    feats.forEach(function (f) {
      var c = featVal(f.name, 0, i), r = featVal(f.name, 1, i), b = B.coef[f.name];
      if (!isFinite(c) || !isFinite(r) || c === r) return;
      var d = c - r, contrib = (b === undefined || b === null) ? NaN : b * d;
      rows.push({ name: f.name, c: c, r: r, d: d, b: b, x: contrib });
    });
    var box = el("div", "contrib"); box.id = "ex-contrib";
    box.appendChild(el("h4", null, "Features that differ within the pair · β·Δτ (" + B.estimator + " imprint of " + B.rm + ")"));
    if (!rows.length) { box.appendChild(el("p", "note", "No feature differs between the chosen and the rejected response.")); return box; }
    rows.sort(function (a, b) {
      var x = isFinite(a.x) ? Math.abs(a.x) : -1, y = isFinite(b.x) ? Math.abs(b.x) : -1;
      return y - x;
    });
    var total = 0;
    var trs = rows.map(function (r) {
      if (isFinite(r.x)) total += r.x;
      var v = el("span", r.x > 0 ? "pos" : r.x < 0 ? "neg" : "", fmt(r.x, 3));
      return [r.name + ((B.sig || []).indexOf(r.name) >= 0 ? " *" : ""), fmt(r.c, 2), fmt(r.r, 2), fmt(r.d, 2), fmt(r.b, 3), v];
    });
    trs.push(["Σ β·Δτ (the fit's margin, without noise)", "", "", "", "", fmt(total, 3)]);
    box.appendChild(kvTable(trs, ["feature", "chosen τ", "rejected τ", "Δτ", "β", "β·Δτ"]));
    box.appendChild(el("p", "note", "Largest contribution first; * = significant imprint. Positive: the feature pushes the RM towards the chosen response."));
    return box;
  }

  function showPair(i, noUrl) {
    clear(detail);
    detail.hidden = false;
    detail.setAttribute("data-index", String(i));
    state.pair = D.ids[i];
    var head = el("div", "detail-head");
    head.appendChild(el("h3", "mono", D.ids[i]));
    var pos = view ? view.indexOf(i) : -1;
    var nav = el("span", "detail-nav");
    var pb = el("button", "btn", "‹ previous"), nb = el("button", "btn", "next ›"), cb = el("button", "btn", "close ✕");
    pb.type = nb.type = cb.type = "button"; pb.id = "ex-detail-prev"; nb.id = "ex-detail-next";
    pb.disabled = pos <= 0; nb.disabled = pos < 0 || pos >= view.length - 1;
    pb.addEventListener("click", function () { showPair(view[pos - 1]); });
    nb.addEventListener("click", function () { showPair(view[pos + 1]); });
    cb.addEventListener("click", function () { detail.hidden = true; state.pair = ""; writeUrl(false); });
    nav.appendChild(pb); nav.appendChild(nb); nav.appendChild(cb);
    head.appendChild(nav);
    if (pos >= 0) head.appendChild(el("span", "detail-pos", "pair " + (pos + 1).toLocaleString("en") + " of " + view.length.toLocaleString("en") + " in this view"));
    detail.appendChild(head);

    var meta = el("p", "meta");
    function add(label, value, cls) {
      var s = el("span", "meta-item " + (cls || ""));
      s.appendChild(el("b", null, label + ": "));
      s.appendChild(document.createTextNode(value));
      meta.appendChild(s);
    }
    if (regime) { var rg = regime[i] >= 0 ? D.regimes[regime[i]] : null; add("regime", rg ? REGIME_LABEL[rg] : "unknown", rg ? "pill r-" + rg : ""); }
    if (gamma) add("γ", GAMMA_LABEL[gamma.charAt(i)] || gamma.charAt(i));
    if (theta) add("θ", fmt(theta[i], 1) + "°");
    if (susp[i]) add("watchlist", "#" + (suspRank[i] + 1) + ": every judge available disagrees with the human label", "warn");
    if (trunc[i]) add("truncated", "an RM saw a truncated input", "warn");
    if (D.rctx && D.rctx[String(i)] !== undefined) add("contexts", "chosen and rejected contexts differ", "warn");
    if (D.src_paths) add("source", D.src_paths[D.src_path[i]] + " #" + D.src_rec[i]);
    if (needText(i)) {
      if (!SERVED) add("texts", "not embedded in this file (a sample is); read them in pairs.parquet or with seal view --serve", "warn");
      else if (fetched[D.ids[i]] === "failed") add("texts", "could not be fetched from the server: " + fetchError, "warn");
      else {
        add("texts", "loading from the server…");
        fetchTexts([i]);
      }
    } else if (SERVED && inFile && !inFile[i]) add("texts", "served from the run's Parquet (not in the file's sample)");
    detail.appendChild(meta);
    var contrib = contributions(i);
    if (contrib) detail.appendChild(contrib);

    var grid = el("div", "triple");
    function column(title, text, side) {
      var col = el("div", "col col-" + title.toLowerCase());
      col.appendChild(el("h4", null, title));
      col.appendChild(el("div", "text", (text || "").replace(/^\s*\n+|\s+$/g, "")));
      if (side !== null) {
        var rr = rmNames.map(function (rm) { var v = D.rw[rm][side][i]; return [rm, fmt(v, 3)]; });
        if (rr.length) { col.appendChild(el("h5", null, "Rewards")); col.appendChild(kvTable(rr)); }
        var fr = feats.map(function (f) { return [f.name, fmt(featVal(f.name, side, i), 2)]; });
        if (fr.length) {
          var det = el("details", "all-features"); det.appendChild(el("summary", null, "All features (" + fr.length + ")"));
          det.appendChild(kvTable(fr)); col.appendChild(det);
        }
      }
      return col;
    }
    var ctxCol = column("Context", textOf(i, D.ctx[i]), null);
    if (D.rctx && D.rctx[String(i)] !== undefined) {
      ctxCol.appendChild(el("h5", null, "Rejected transcript's own context"));
      ctxCol.appendChild(el("div", "text", D.rctx[String(i)]));
    }
    if (rmNames.length) {
      var mr = rmNames.map(function (rm) { var v = margins[rm][i]; return [rm, fmt(v, 3), isFinite(v) ? (v > 0 ? "agrees" : "disagrees") : "–"]; });
      ctxCol.appendChild(el("h5", null, "Margin r(t_c) − r(t_r)"));
      ctxCol.appendChild(kvTable(mr));
    }
    grid.appendChild(ctxCol);
    grid.appendChild(column("Chosen", textOf(i, D.ch[i]), 0));
    grid.appendChild(column("Rejected", textOf(i, D.rj[i]), 1));
    detail.appendChild(grid);
    var rv = rewriteViewer(i);
    if (rv) detail.appendChild(rv);
    Array.prototype.forEach.call(tbody.querySelectorAll("tr.selected"), function (r) { r.classList.remove("selected"); });
    var row = tbody.querySelector('tr[data-index="' + i + '"]');
    if (row) row.classList.add("selected");
    if (!noUrl) writeUrl(false);
  }

  // ---- the overlaid imprint forest: which RMs show ("forest" in the hash; "" = the file's choice) --
  var picker = document.querySelector('fieldset[data-picker="forest"]');
  var pickBoxes = picker ? Array.prototype.slice.call(picker.querySelectorAll("input[type=checkbox]")) : [];
  pickBoxes.forEach(function (b) { b.setAttribute("data-default", b.checked ? "1" : "0"); });
  function forestNames() { return state.forest ? state.forest.split(",").map(decodeURIComponent) : null; }
  function applyForest() {
    var names = forestNames();
    pickBoxes.forEach(function (b) { b.checked = names ? names.indexOf(b.value) >= 0 : b.getAttribute("data-default") === "1"; });
    var on = {};
    pickBoxes.forEach(function (b) { if (b.checked) on[b.value] = 1; });
    var groups = Array.prototype.slice.call(document.querySelectorAll("figure.forest-overlay g.ov"));
    var shown = groups.filter(function (g) { return on[g.getAttribute("data-rm")]; });
    groups.forEach(function (g) { if (!on[g.getAttribute("data-rm")]) g.setAttribute("display", "none"); });
    shown.forEach(function (g, j) {  // centred offsets, as _svg.overlay_offsets draws them
      var step = parseFloat(g.getAttribute("data-step")) || 7;
      g.setAttribute("transform", "translate(0," + ((j - (shown.length - 1) / 2) * step) + ")");
      g.removeAttribute("display");
    });
    if (picker) picker.setAttribute("data-shown", String(shown.length));
  }
  pickBoxes.forEach(function (b) {
    b.addEventListener("change", function () {
      var names = pickBoxes.filter(function (x) { return x.checked; }).map(function (x) { return encodeURIComponent(x.value); });
      var dflt = pickBoxes.every(function (x) { return x.checked === (x.getAttribute("data-default") === "1"); });
      state.forest = dflt ? "" : (names.length ? names.join(",") : "-");
      applyForest();
      writeUrl(false);
    });
  });
  function onlyForest(s) {
    var d = defaults();
    return Object.keys(URL_KEYS).every(function (k) { return k === "forest" || s[k] === d[k]; });
  }

  // ---- applying a state (a door, a reload, back/forward) ---------------------------------------
  function apply(s, scroll) {
    state = s;
    applyForest();
    syncControls();
    compute();
    render();
    var i = state.pair ? idIndex.get(state.pair) : undefined;
    if (i !== undefined) showPair(i, true); else { detail.hidden = true; state.pair = ""; }
    writeUrl(false);
    if (scroll) {
      var target = i !== undefined ? detail : (onlyForest(state) && picker ? picker : document.getElementById("explorer"));
      target.scrollIntoView({ block: "start" });
    }
  }
  function fromHash(scroll) {
    var s = parseHash(location.hash);
    if (s) apply(s, scroll);
  }

  // ---- events --------------------------------------------------------------------------------
  var timer = null;
  qInput.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.q = qInput.value; refresh(); }, 200);
  });
  regSel.addEventListener("change", function () { state.regime = regSel.value; refresh(); });
  gSel.addEventListener("change", function () { state.gamma = gSel.value; refresh(); });
  sCheck.addEventListener("change", function () { state.susp = sCheck.checked; refresh(); });
  aSel.addEventListener("change", function () { state.agree = aSel.value; refresh(); });
  cSel.addEventListener("change", function () { state.cal = cSel.value; refresh(); });
  mSel.addEventListener("change", function () { state.mrm = mSel.value; refresh(); });
  [mMin, mMax].forEach(function (inp) {
    inp.addEventListener("input", function () { state.mmin = mMin.value; state.mmax = mMax.value; refresh(); });
  });
  [fSel, sideSel, opSel, fVal].forEach(function (c) {
    c.addEventListener(c === fVal ? "input" : "change", function () {
      state.feature = fSel.value; state.side = sideSel.value; state.op = opSel.value; state.fval = fVal.value;
      if (state.feature && state.sortKey === "index") { state.sortKey = "feat"; state.sortDir = -1; }
      refresh();
    });
  });
  [tSel, kSel, rwSel, rwRm].forEach(function (c) {
    c.addEventListener("change", function () {
      state.t = tSel.value; state.kind = kSel.value; state.rw = rwSel.value; state.rwrm = rwRm.value; refresh();
    });
  });
  resetBtn.addEventListener("click", function () { var d = defaults(); d.forest = state.forest; apply(d, false); });
  prevBtn.addEventListener("click", function () { state.page--; render(); writeUrl(false); });
  nextBtn.addEventListener("click", function () { state.page++; render(); writeUrl(false); });
  sizeSel.addEventListener("change", function () { state.pageSize = parseInt(sizeSel.value, 10); state.page = 0; render(); writeUrl(false); });
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr.pair-row") : null;
    if (tr) showPair(parseInt(tr.getAttribute("data-index"), 10));
  });
  tbody.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    var tr = ev.target.closest ? ev.target.closest("tr.pair-row") : null;
    if (tr) showPair(parseInt(tr.getAttribute("data-index"), 10));
  });
  // doors: any link to "#explorer?…" applies its state; a scatter dot (data-pair) or a watchlist
  // row opens its pair. Handled here (not by the browser) so that a link equal to the current
  // hash still works, and pushed to the history so that Back returns to the previous view.
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!t.closest) return;
    var a = t.closest('a[href^="#explorer?"]');
    if (!a) {
      var row = t.closest("table.watch tbody tr");
      if (row) a = row.querySelector('a[href^="#explorer?"]');
    }
    var s = null;
    if (a) s = parseHash(a.getAttribute("href"));
    else {
      var dot = t.closest("[data-pair]");
      if (dot) { s = defaults(); s.ids = dot.getAttribute("data-pair"); s.pair = s.ids; }
    }
    if (!s) return;
    ev.preventDefault();
    if (!s.forest) s.forest = state.forest; // a door filters the explorer; the forest keeps its RMs
    state = s;
    try { history.pushState(null, "", encodeState()); } catch (e) { /* see writeUrl */ }
    apply(s, true);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    var dot = ev.target.closest ? ev.target.closest("[data-pair]") : null;
    if (dot && dot.tagName !== "A") dot.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  window.addEventListener("popstate", function () { fromHash(true); });
  window.addEventListener("hashchange", function () { fromHash(true); });

  // the text search's lower-cased copies, built once the page is idle (not on the first keystroke)
  setTimeout(function () { if (!lower) ensureLower(); }, 0);

  var initial = parseHash(location.hash); // read before anything rewrites the URL
  if (initial) apply(initial, true);
  else { syncControls(); compute(); render(); }
  root.setAttribute("data-ready", "1");
})();
