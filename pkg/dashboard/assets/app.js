// The ringtrain dashboard: polls /api/state every second and draws it.
// No dependencies, nothing fetched from elsewhere: it works offline.
"use strict";

const state = { steps: [], since: 0, last: null, failures: 0 };
const $ = (id) => document.getElementById(id);

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return v.toFixed(digits);
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

function clock(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false });
}

// smooth is the debiased exponential moving average the PNG curve uses.
function smooth(points, span) {
  if (span <= 0) return [];
  const alpha = 2 / (span + 1);
  let avg = 0, weight = 0;
  return points.map(([x, y]) => {
    avg = (1 - alpha) * avg + alpha * y;
    weight = (1 - alpha) * weight + alpha;
    return [x, avg / weight];
  });
}

function smoothingSpan(n) {
  return n < 10 ? 0 : Math.min(Math.max(Math.floor(n / 25), 5), 200);
}

function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// chart draws per-step points raw and smoothed, and epoch points, on canvas.
function chart(canvas, series) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight || 260;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.points);
  g.font = "12px system-ui, sans-serif";
  if (all.length === 0) {
    g.fillStyle = "#667085";
    g.fillText("waiting for the first step…", 12, h / 2);
    return;
  }
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.max(Math.abs(y0) * 0.05, 1e-3); y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  x1 += Math.max(1, (x1 - x0) * 0.02);
  const L = 48, R = 10, T = 8, B = 28;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (w - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (h - T - B);
  g.strokeStyle = "#e3e7ee"; g.fillStyle = "#667085"; g.lineWidth = 1;
  for (const t of niceTicks(y0, y1, 5)) {
    g.beginPath(); g.moveTo(L, Y(t)); g.lineTo(w - R, Y(t)); g.stroke();
    g.textAlign = "right"; g.fillText(+t.toPrecision(3) + "", L - 6, Y(t) + 4);
  }
  for (const t of niceTicks(Math.max(x0, 0), x1, Math.max(2, Math.floor((w - L) / 80)))) {
    if (t !== Math.round(t)) continue;
    g.beginPath(); g.moveTo(X(t), T); g.lineTo(X(t), h - B); g.stroke();
    g.textAlign = "center"; g.fillText(String(t), X(t), h - B + 15);
  }
  g.textAlign = "right"; g.fillText("step", w - R, h - 2);
  for (const s of series) {
    if (s.points.length === 0) continue;
    g.strokeStyle = s.color; g.fillStyle = s.color; g.lineWidth = s.width || 1.5;
    g.setLineDash(s.dash || []);
    if (s.line && s.points.length > 1) {
      g.beginPath();
      s.points.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
      g.stroke();
    }
    g.setLineDash([]);
    if (s.marker) {
      for (const [x, y] of s.points) {
        g.beginPath();
        if (s.marker === "triangle") {
          g.moveTo(X(x), Y(y) - 6); g.lineTo(X(x) + 5.5, Y(y) + 4); g.lineTo(X(x) - 5.5, Y(y) + 4); g.closePath();
        } else {
          g.arc(X(x), Y(y), 4.5, 0, 2 * Math.PI);
        }
        g.fill();
      }
    }
  }
}

function curves(field, epochTrain, epochTest, st) {
  const raw = state.steps.filter((r) => r[field] !== null).map((r) => [r.step, r[field]]);
  const epochs = st.epochs || [];
  return [
    { points: raw, color: "#9ec5e6", width: 1, line: true },
    { points: smooth(raw, smoothingSpan(raw.length)), color: "#1f77b4", width: 2.5, line: true },
    { points: epochs.filter((e) => e[epochTrain] !== null).map((e) => [e.step, e[epochTrain]]), color: "#1f77b4", marker: "dot" },
    { points: epochs.filter((e) => e[epochTest] !== null).map((e) => [e.step, e[epochTest]]), color: "#d65f0e", marker: "triangle", line: true, dash: [5, 3], width: 1.5 },
  ];
}

function text(el, s) { el.textContent = s; return el; }
function node(tag, cls, s) { const e = document.createElement(tag); if (cls) e.className = cls; if (s !== undefined) e.textContent = s; return e; }

function render(st) {
  const b = document.body;
  const status = $("status");
  text(status, st.status); status.className = "badge " + st.status;
  b.dataset.status = st.status;
  text($("network"), st.network ? `${st.network} · ${st.params.toLocaleString()} parameters · batch ${st.batch} · ${st.config.dataset || ""}` : "");
  const p = st.progress;
  const pct = Math.round(100 * p.fraction);
  $("barfill").style.width = pct + "%";
  $("bar").setAttribute("aria-valuenow", String(pct));
  const last = state.steps[state.steps.length - 1];
  const figs = $("figures"); figs.replaceChildren();
  const fig = (label, value) => { const s = node("span"); s.append(label + " ", node("b", "", value)); figs.append(s); };
  fig("step", `${p.steps} / ${p.total_steps || "?"}`);
  fig("epoch", `${p.epoch || 0} / ${p.epochs || "?"}`);
  fig("done", pct + "%");
  fig("samples/s", fmt(p.samples_per_second, 0));
  fig("ETA", st.status === "running" ? duration(p.eta_seconds) : "–");
  fig("elapsed", duration(st.elapsed_seconds));
  if (last) fig("loss", fmt(last.train_loss, 4));
  const err = $("error");
  err.hidden = !st.error; text(err, st.error || "");

  chart($("loss"), curves("train_loss", "train_loss", "test_loss", st));
  chart($("acc"), curves("train_accuracy", "train_accuracy", "test_accuracy", st));

  text($("gen"), st.ring_generation ? `generation ${st.ring_generation}` : "");
  const body = $("ring").tBodies[0]; body.replaceChildren();
  // The bar is the step's wall time: compute, then the all-reduce's exposed
  // part (the rest of it ran during backward).
  const slowest = Math.max(1e-9, ...st.workers.map((w) => w.compute_ms + w.exposed_ms));
  for (const w of st.workers) {
    const tr = node("tr", w.straggler ? "straggler" : "");
    const id = node("td", "", w.id);
    if (w.straggler) id.append(node("span", "tag", `straggler ${fmt(w.straggler_ratio, 1)}×`));
    tr.append(id, node("td", "state-" + w.state, w.state), node("td", "num", fmt(w.compute_ms, 1) + " ms"), node("td", "num", fmt(w.allreduce_ms, 1) + " ms" + (w.exposed_ms < w.allreduce_ms ? ` (${fmt(w.exposed_ms, 1)} exposed)` : "")));
    const bars = node("div", "bars");
    const c = node("div", "c"); c.style.width = (100 * w.compute_ms / slowest) + "%";
    const a = node("div", "a"); a.style.width = (100 * w.exposed_ms / slowest) + "%";
    bars.append(c, a);
    const td = node("td", "barcol"); td.append(bars); tr.append(td);
    body.append(tr);
  }
  if (st.workers.length === 0) {
    const tr = node("tr"), td = node("td", "muted", "no workers yet (none at all with --single-process: it trains in this process)");
    td.colSpan = 5; tr.append(td); body.append(tr);
  }
  b.dataset.workers = String(st.workers.filter((w) => w.state === "training").length);
  b.dataset.stragglers = st.stragglers.join(",");

  text($("counts"), `${st.aborted_attempts} aborted · ${st.recoveries} recovered`);
  const evs = $("events"); evs.replaceChildren();
  const bad = new Set(["left", "failed", "suspect", "aborted", "straggler"]);
  const good = new Set(["joined", "readmitted", "recovered", "straggler cleared"]);
  for (const e of st.events.slice().reverse()) {
    const li = node("li", bad.has(e.kind) ? "bad" : good.has(e.kind) ? "good" : "");
    li.append(node("span", "t", clock(e.time)), node("span", "kind", e.kind));
    let rest = "";
    if (e.worker) rest += " " + e.worker;
    if (e.step >= 0) rest += ` (step ${e.step + 1})`;
    if (e.detail) rest += ": " + e.detail;
    li.append(rest);
    evs.append(li);
  }
  if (st.events.length === 0) evs.append(node("li", "muted", "none yet"));
  const cks = $("checkpoints"); cks.replaceChildren();
  for (const c of st.checkpoints.slice().reverse()) {
    const li = node("li", c.error ? "bad" : "");
    li.append(node("span", "t", clock(c.time)), node("span", "kind", `step ${c.steps}`), " " + (c.error || c.path.split("/").pop()));
    if (c.path) li.title = c.path;
    cks.append(li);
  }
  if (st.checkpoints.length === 0) cks.append(node("li", "muted", "none yet"));
  const cfg = $("config").tBodies[0];
  if (cfg.rows.length === 0 && st.config) {
    for (const k of Object.keys(st.config).sort()) {
      const tr = node("tr"); tr.append(node("td", "", k), node("td", "", st.config[k])); cfg.append(tr);
    }
  }
  b.dataset.points = String(state.steps.length);
}

async function poll() {
  try {
    const r = await fetch(`/api/state?since=${state.since}`, { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const st = await r.json();
    for (const s of st.steps) if (s.step > state.since) state.steps.push(s);
    if (state.steps.length) state.since = state.steps[state.steps.length - 1].step;
    state.last = st; state.failures = 0;
    render(st);
    if (st.status === "done" || st.status === "failed" || st.status === "interrupted") return; // final
  } catch (e) {
    state.failures++;
    const s = $("status");
    s.textContent = state.last ? "disconnected" : "connecting"; s.className = "badge failed";
  }
  setTimeout(poll, state.failures ? Math.min(5000, 1000 * state.failures) : 1000);
}

window.addEventListener("resize", () => state.last && render(state.last));
poll();
