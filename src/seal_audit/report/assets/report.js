/* seal-audit report: pair explorer and small interactions.
 *
 * Security rule of this file: dataset text is only ever written with textContent (never
 * innerHTML, never attribute-to-code), so a transcript containing <script> or <img onerror>
 * shows as text. The page's Content-Security-Policy allows only this script (by hash).
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
  var REGIME_LABEL = {
    stayed_aligned: "stayed aligned", got_aligned: "got aligned",
    resisted_alignment: "resisted", reversed_alignment: "reversed"
  };
  var GAMMA_LABEL = { c: "c · LM agrees", i: "i · LM indifferent", r: "r · LM disagrees", "-": "unknown" };
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
  (D.susp || []).forEach(function (i) { susp[i] = 1; });
  var trunc = new Uint8Array(N);
  (D.trunc || []).forEach(function (i) { trunc[i] = 1; });
  var feats = D.feats || [];
  var idIndex = null;
  var lower = null; // lazily built lower-cased texts for the search

  // ---- controls ------------------------------------------------------------------------------
  var state = {
    regime: "all", gamma: "all", susp: false, q: "",
    feature: "", side: "either", op: ">=", fval: "",
    mrm: post, mmin: "", mmax: "",
    sortKey: "index", sortDir: 1, page: 0, pageSize: 25
  };
  var view = null;

  function option(sel, value, label) { var o = el("option", null, label); o.value = value; sel.appendChild(o); return o; }
  function labelled(text, control) { var l = el("label", "ctl"); l.appendChild(el("span", null, text)); l.appendChild(control); return l; }

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

  var mSel = el("select"); mSel.id = "ex-margin-rm";
  rmNames.forEach(function (r) { option(mSel, r, r); });
  mSel.value = post;
  var mMin = el("input"); mMin.type = "number"; mMin.step = "any"; mMin.placeholder = "min"; mMin.id = "ex-margin-min";
  var mMax = el("input"); mMax.type = "number"; mMax.step = "any"; mMax.placeholder = "max"; mMax.id = "ex-margin-max";
  var mBox = el("span", "inline"); mBox.appendChild(mSel); mBox.appendChild(mMin); mBox.appendChild(mMax);
  if (rmNames.length) controls.appendChild(labelled("Reward margin r(t_c) − r(t_r)", mBox));

  var fSel = el("select"); fSel.id = "ex-feature";
  option(fSel, "", "(any)");
  feats.forEach(function (f) { option(fSel, f.name, f.name + (f.role ? " · " + f.role : "")); });
  var sideSel = el("select"); sideSel.id = "ex-feature-side";
  [["either", "either side"], ["both", "both sides"], ["chosen", "chosen"], ["rejected", "rejected"], ["diff", "chosen − rejected"]].forEach(function (p) { option(sideSel, p[0], p[1]); });
  var opSel = el("select"); opSel.id = "ex-feature-op";
  [">=", "<=", "=", "!="].forEach(function (o) { option(opSel, o, o); });
  var fVal = el("input"); fVal.type = "number"; fVal.step = "any"; fVal.value = "1"; fVal.id = "ex-feature-value";
  var fBox = el("span", "inline"); [fSel, sideSel, opSel, fVal].forEach(function (c) { fBox.appendChild(c); });
  if (feats.length) controls.appendChild(labelled("Feature", fBox));

  var sCheck = el("input"); sCheck.type = "checkbox"; sCheck.id = "ex-susp";
  if (D.susp) controls.appendChild(labelled("Suspicious only", sCheck));

  var resetBtn = el("button", "btn", "Reset"); resetBtn.type = "button";
  controls.appendChild(resetBtn);
  root.appendChild(controls);

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
    var th = el("th", c.num ? "num sortable" : (c.key === "ch" || c.key === "rj" ? "" : "sortable"), c.label);
    if (c.key !== "ch" && c.key !== "rj") {
      th.setAttribute("data-key", c.key);
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(c.key); });
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter") sortBy(c.key); });
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
  var sizeSel = el("select"); [25, 50, 100, 250].forEach(function (s) { option(sizeSel, String(s), s + " per page"); });
  pager.appendChild(prevBtn); pager.appendChild(pageInfo); pager.appendChild(nextBtn); pager.appendChild(sizeSel);
  root.appendChild(pager);

  var detail = el("div", "detail"); detail.id = "ex-detail"; detail.hidden = true;
  root.appendChild(detail);

  // ---- filtering and sorting -----------------------------------------------------------------
  function featVal(name, side, i) {
    var v = D.fv[name] ? D.fv[name][side][i] : null;
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
  function compute() {
    var out = new Int32Array(N), k = 0;
    var q = state.q.trim().toLowerCase();
    if (q) ensureLower();
    var reg = state.regime === "all" ? null : parseInt(state.regime, 10);
    var g = state.gamma === "all" ? null : state.gamma;
    var m = margins[state.mrm];
    var lo = state.mmin === "" ? -Infinity : parseFloat(state.mmin);
    var hi = state.mmax === "" ? Infinity : parseFloat(state.mmax);
    var useM = m && (lo > -Infinity || hi < Infinity);
    var fx = parseFloat(state.fval);
    var useF = state.feature && isFinite(fx);
    for (var i = 0; i < N; i++) {
      if (reg !== null && (!regime || regime[i] !== reg)) continue;
      if (g !== null && (!gamma || gamma.charAt(i) !== g)) continue;
      if (state.susp && !susp[i]) continue;
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
      if (q && lower.ctx[i].indexOf(q) < 0 && lower.ch[i].indexOf(q) < 0 && lower.rj[i].indexOf(q) < 0) continue;
      out[k++] = i;
    }
    var idx = Array.prototype.slice.call(out.subarray(0, k));
    var key = state.sortKey, dir = state.sortDir;
    if (key !== "index") {
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
  function sortGetter(key) {
    if (key === "id") return function (i) { return D.ids[i]; };
    if (key === "regime") return function (i) { return regime[i] < 0 ? NaN : regime[i]; };
    if (key === "gamma") return function (i) { return gamma.charAt(i); };
    if (key === "theta") return function (i) { return theta[i]; };
    if (key === "feat") return function (i) {
      if (!state.feature) return NaN;
      var c = featVal(state.feature, 0, i), r = featVal(state.feature, 1, i);
      return c - r;
    };
    if (key.slice(0, 2) === "m:") { var m = margins[key.slice(2)]; return function (i) { return m[i]; }; }
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
        } else td = el("td", "snip", snippet(c.key === "ch" ? D.ch[i] : D.rj[i], 90));
        tr.appendChild(td);
      });
      if (susp[i]) tr.classList.add("susp");
      tbody.appendChild(tr);
    }
    Array.prototype.forEach.call(htr.children, function (th) {
      var k = th.getAttribute("data-key");
      if (k === "feat") th.textContent = state.feature ? state.feature + " c / r" : "feature c / r";
      th.classList.toggle("asc", k === state.sortKey && state.sortDir > 0);
      th.classList.toggle("desc", k === state.sortKey && state.sortDir < 0);
    });
    status.textContent = total.toLocaleString("en") + " of " + N.toLocaleString("en") + " pairs match" +
      (total ? " · showing " + (start + 1).toLocaleString("en") + "–" + end.toLocaleString("en") : "");
    status.setAttribute("data-count", String(total));
    pageInfo.textContent = "page " + (state.page + 1) + " of " + pages;
    prevBtn.disabled = state.page <= 0;
    nextBtn.disabled = state.page >= pages - 1;
  }
  function refresh(keepPage) {
    compute();
    if (!keepPage) state.page = 0;
    render();
  }

  function kvTable(rows, headers) {
    var t = el("table", "data small"), tb = el("tbody");
    if (headers) {
      var th = el("thead"), tr = el("tr");
      headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
      th.appendChild(tr); t.appendChild(th);
    }
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (c, k) { tr.appendChild(el("td", k > 0 ? "num" : null, c)); });
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    return t;
  }

  function showPair(i) {
    clear(detail);
    detail.hidden = false;
    detail.setAttribute("data-index", String(i));
    var head = el("div", "detail-head");
    head.appendChild(el("h3", "mono", D.ids[i]));
    var pos = view ? view.indexOf(i) : -1;
    var nav = el("span", "detail-nav");
    var pb = el("button", "btn", "‹ previous"), nb = el("button", "btn", "next ›"), cb = el("button", "btn", "close ✕");
    pb.type = nb.type = cb.type = "button";
    pb.disabled = pos <= 0; nb.disabled = pos < 0 || pos >= view.length - 1;
    pb.addEventListener("click", function () { showPair(view[pos - 1]); });
    nb.addEventListener("click", function () { showPair(view[pos + 1]); });
    cb.addEventListener("click", function () { detail.hidden = true; });
    nav.appendChild(pb); nav.appendChild(nb); nav.appendChild(cb);
    head.appendChild(nav);
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
    if (susp[i]) add("watchlist", "every judge disagrees with the human label", "warn");
    if (trunc[i]) add("truncated", "an RM saw a truncated input", "warn");
    if (D.rctx && D.rctx[String(i)] !== undefined) add("contexts", "chosen and rejected contexts differ", "warn");
    if (D.src_paths) add("source", D.src_paths[D.src_path[i]] + " #" + D.src_rec[i]);
    detail.appendChild(meta);

    var grid = el("div", "triple");
    function column(title, text, side) {
      var col = el("div", "col col-" + title.toLowerCase());
      col.appendChild(el("h4", null, title));
      col.appendChild(el("div", "text", (text || "").replace(/^\s*\n+|\s+$/g, "")));
      if (side !== null) {
        var rr = rmNames.map(function (rm) { var v = D.rw[rm][side][i]; return [rm, fmt(v, 3)]; });
        if (rr.length) { col.appendChild(el("h5", null, "Rewards")); col.appendChild(kvTable(rr)); }
        var fr = feats.map(function (f) { return [f.name, fmt(featVal(f.name, side, i), 2)]; });
        if (fr.length) { col.appendChild(el("h5", null, "Features")); col.appendChild(kvTable(fr)); }
      }
      return col;
    }
    var ctxCol = column("Context", D.ctx[i], null);
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
    grid.appendChild(column("Chosen", D.ch[i], 0));
    grid.appendChild(column("Rejected", D.rj[i], 1));
    detail.appendChild(grid);
    Array.prototype.forEach.call(tbody.querySelectorAll("tr.selected"), function (r) { r.classList.remove("selected"); });
    var row = tbody.querySelector('tr[data-index="' + i + '"]');
    if (row) row.classList.add("selected");
  }

  function openById(id) {
    if (!idIndex) { idIndex = new Map(); for (var i = 0; i < N; i++) idIndex.set(D.ids[i], i); }
    var i = idIndex.get(id);
    if (i === undefined) return;
    showPair(i);
    detail.scrollIntoView({ block: "start" });
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
  resetBtn.addEventListener("click", function () {
    state.regime = "all"; state.gamma = "all"; state.susp = false; state.q = ""; state.feature = "";
    state.mmin = ""; state.mmax = ""; state.sortKey = "index"; state.sortDir = 1;
    regSel.value = "all"; gSel.value = "all"; sCheck.checked = false; qInput.value = ""; fSel.value = "";
    mMin.value = ""; mMax.value = "";
    refresh();
  });
  prevBtn.addEventListener("click", function () { state.page--; render(); });
  nextBtn.addEventListener("click", function () { state.page++; render(); });
  sizeSel.addEventListener("change", function () { state.pageSize = parseInt(sizeSel.value, 10); state.page = 0; render(); });
  tbody.addEventListener("click", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr.pair-row") : null;
    if (tr) showPair(parseInt(tr.getAttribute("data-index"), 10));
  });
  tbody.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    var tr = ev.target.closest ? ev.target.closest("tr.pair-row") : null;
    if (tr) showPair(parseInt(tr.getAttribute("data-index"), 10));
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("[data-pair]") : null;
    if (!a) return;
    ev.preventDefault();
    openById(a.getAttribute("data-pair"));
  });

  refresh();
  root.setAttribute("data-ready", "1");
})();
