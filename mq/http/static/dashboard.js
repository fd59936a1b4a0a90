// The mq dashboard: polls /api/overview, keeps the last minutes of figures in memory and draws
// them. No library, nothing fetched but this broker's own JSON. Text from the broker is set
// with textContent only, never parsed as HTML.
"use strict";

const POLL_MS = 2000;
const WINDOW_S = 300;
const history = [];  // {t, published, acked, depth: {queue: n}}, oldest first
let previous = null;  // the last overview and when it came: rates are differences to it

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function ago(s) {
  if (s === null || s === undefined) return "-";
  return s < 90 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
}

function age(s) {
  if (!s) return "-";
  return s < 90 ? s.toFixed(1) + " s" : s < 5400 ? Math.round(s / 60) + " min"
    : (s / 3600).toFixed(1) + " h";
}

function fill(tbody, rows, columns, empty) {
  tbody.replaceChildren();
  if (!rows.length) {
    const td = el("td", empty, "empty");
    td.colSpan = columns;
    const tr = el("tr");
    tr.append(td);
    tbody.append(tr);
  }
  for (const cells of rows) {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
    tbody.append(tr);
  }
}

function num(v, cls) { return el("td", v, cls || "num"); }

function rates(now, at) {
  const out = {};
  if (!previous) return out;
  const dt = (at - previous.at) / 1000;
  const before = new Map(previous.data.queues.map(q => [q.name, q]));
  for (const q of now.queues) {
    const p = before.get(q.name);
    if (p && dt > 0) {
      out[q.name] = {published: Math.max(0, q.published - p.published) / dt,
                     acked: Math.max(0, q.acked - p.acked) / dt};
    }
  }
  return out;
}

function sparkline(values) {
  const c = el("canvas");
  c.width = 160; c.height = 28;
  const g = c.getContext("2d");
  const top = Math.max(1, ...values);
  g.strokeStyle = "#2f6fdf"; g.lineWidth = 1.5; g.beginPath();
  values.forEach((v, i) => {
    const x = values.length < 2 ? 0 : i * (c.width - 2) / (values.length - 1) + 1;
    const y = c.height - 2 - v / top * (c.height - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
  const td = el("td");
  td.append(c);
  return td;
}

function drawRates() {
  const c = document.getElementById("rates");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const points = history.filter(h => h.rate);
  const top = Math.max(1, ...points.map(h => Math.max(h.rate.published, h.rate.acked)));
  g.fillStyle = "#6b7385"; g.font = "11px sans-serif";
  g.fillText(top.toFixed(0) + "/s", 4, 12);
  g.strokeStyle = "#dde1ea"; g.beginPath(); g.moveTo(0, c.height - 1);
  g.lineTo(c.width, c.height - 1); g.stroke();
  const t0 = Date.now() - WINDOW_S * 1000;
  for (const [key, color] of [["published", "#2f6fdf"], ["acked", "#1c9a5a"]]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    points.forEach((h, i) => {
      const x = (h.t - t0) / (WINDOW_S * 1000) * c.width;
      const y = c.height - 2 - h.rate[key] / top * (c.height - 18);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}

function render(data, at) {
  const s = data.server;
  document.getElementById("server").textContent =
    `${s.version} · up ${age(s.uptime_s)} · ${s.connections} connections · ` +
    `${s.sessions} sessions · ${s.commits} commits · sync ${s.sync}`;
  const status = document.getElementById("status");
  status.textContent = data.not_ready ? "not ready: " + data.not_ready : "ready";
  status.className = data.not_ready ? "pill bad" : "pill";

  const r = rates(data, at);
  const total = {published: 0, acked: 0};
  for (const q of Object.values(r)) { total.published += q.published; total.acked += q.acked; }
  const depth = {};
  for (const q of data.queues) depth[q.name] = q.ready + q.delayed + q.leased;
  history.push({t: at, rate: previous ? total : null, depth});
  while (history.length && history[0].t < at - WINDOW_S * 1000) history.shift();
  document.getElementById("rate-now").textContent =
    previous ? ` now: ${total.published.toFixed(1)} published/s, ${total.acked.toFixed(1)} acked/s`
      : "";

  const tbody = document.querySelector("#queues tbody");
  fill(tbody, data.queues.map(q => {
    const rate = r[q.name] || {published: 0, acked: 0};
    return [el("td", q.name, "queue"), num(depth[q.name], "depth"), num(q.ready), num(q.delayed),
            num(q.leased), num(rate.published.toFixed(1)), num(rate.acked.toFixed(1)),
            num(age(q.oldest_ready_s)), num(q.dead_lettered),
            sparkline(history.map(h => h.depth[q.name] || 0))];
  }), 10, "no queues yet");
  data.queues.forEach((q, i) => { tbody.rows[i].dataset.queue = q.name; });

  fill(document.querySelector("#consumers tbody"), data.consumers.map(c =>
    [c.consumer, c.holder, c.connected ? "yes" : "no (in grace)", ago(c.last_heartbeat_s_ago),
     c.heartbeat_s + " s", num(c.leases)]), 6, "no consumer sessions");
  fill(document.querySelector("#members tbody"), data.members.map(m =>
    [`${m.queue} / ${m.group}`, m.consumer, num(m.leases), num(m.prefetch),
     num((m.ring_share * 100).toFixed(1) + " %"), ago(m.last_heartbeat_s_ago)]),
    6, "no consumer groups");
  fill(document.querySelector("#dead tbody"), data.dead_letters.map(d =>
    [d.queue, num(d.msg_id), d.dead_from || "-", el("td", d.reason, "error"),
     el("td", d.last_error || "-", "error"), num(d.deliveries), d.body]), 7, "no dead letters");
  drawRates();
  previous = {data, at};
}

async function poll() {
  try {
    const reply = await fetch("/api/overview", {cache: "no-store"});
    if (!reply.ok) throw new Error("HTTP " + reply.status);
    render(await reply.json(), Date.now());
  } catch (e) {
    const status = document.getElementById("status");
    status.textContent = "broker unreachable: " + e.message;
    status.className = "pill bad";
  }
  setTimeout(poll, POLL_MS);
}

async function explain(event) {
  if (event) event.preventDefault();
  const id = document.getElementById("msg-id").value.trim();
  const why = document.getElementById("why");
  const out = document.getElementById("explanation");
  const reply = await fetch("/api/explain?id=" + encodeURIComponent(id), {cache: "no-store"});
  const body = await reply.json();
  why.className = reply.ok ? "" : "bad";
  why.textContent = reply.ok ? body.why : body.error;
  out.textContent = reply.ok ? JSON.stringify(body, null, 2) : "";
}

document.getElementById("explain").addEventListener("submit", explain);
// A link can ask for an explanation: /?explain=42 fills the box and asks at once.
const asked = new URLSearchParams(location.search).get("explain");
if (asked) {
  document.getElementById("msg-id").value = asked;
  explain();
}
poll();
