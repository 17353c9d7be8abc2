// The operations panel (`GET /ops`): this node's figures from `/1/stats`, read every second.
// Rates (deliveries/s, API requests/s) are the difference of two readings over the time
// between them; the charts keep the last 5 minutes of readings in the page (nothing is
// stored on the node). Deliveries count every frame written to a subscriber, SSE keep-alive
// comments included, as `frames_sent` does.

import { setUpTheme, getJson, setText, el, formatBytes, formatCount } from "/web/common.js";

const REFRESH_MS = 1000;
const WINDOW_MS = 5 * 60 * 1000;

const history = []; // { at, subscribers, deliveries }
let previous = null; // { at, stats }
let slowAt = []; // [at, total slow cut-offs], for "in the last minute"

function sum(cores, key) {
  return cores.reduce((n, c) => n + (c[key] || 0), 0);
}

function rate(now, before, dt, pick) {
  if (!before || dt <= 0) return 0;
  return Math.max(0, (pick(now) - pick(before)) / dt);
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/// Draws `values` (last WINDOW_MS of readings) as a filled line on `canvas`.
function draw(canvas, key, color) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const now = Date.now();
  const max = Math.max(1, ...history.map((h) => h[key]));
  ctx.strokeStyle = cssVar("--line");
  ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = Math.round((height * i) / 4) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(width, y);
    ctx.stroke();
  }
  if (history.length < 2) return max;
  const x = (at) => width - ((now - at) / WINDOW_MS) * width;
  const y = (v) => height - 4 - (v / max) * (height - 8);
  ctx.beginPath();
  history.forEach((h, i) => (i === 0 ? ctx.moveTo(x(h.at), y(h[key])) : ctx.lineTo(x(h.at), y(h[key]))));
  ctx.strokeStyle = color;
  ctx.lineWidth = 2.5;
  ctx.stroke();
  ctx.lineTo(x(history[history.length - 1].at), height);
  ctx.lineTo(x(history[0].at), height);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
  return max;
}

function coreRow(c, dt) {
  const before = previous && previous.stats.cores.find((p) => p.core === c.core);
  const tr = el("tr");
  tr.dataset.core = c.core;
  const cells = [
    `core ${c.core}`,
    String(c.stream_port),
    formatCount(c.subscribers),
    formatCount(c.live_matches),
    formatCount(rate(c, before, dt, (s) => s.frames_sent)),
    formatCount(c.bus_depth),
    formatCount(c.slow_disconnects),
    formatCount(rate(c, before, dt, (s) => s.http_requests)),
  ];
  cells.forEach((text, i) => {
    const td = el("td", "", text);
    if (i === 5 && c.bus_depth > 1000) td.className = "hot";
    if (i === 6 && before && c.slow_disconnects > before.slow_disconnects) td.className = "alarm";
    tr.append(td);
  });
  return tr;
}

function renderCluster(stats) {
  const byNode = new Map();
  const own = stats.cores.map((c) => c.stream_port).join(", ");
  byNode.set(stats.node_id, { ports: own, load: sum(stats.cores, "subscribers"), self: true });
  for (const r of stats.cluster) {
    const n = byNode.get(r.node) || { ports: [], load: 0 };
    n.ports = [...n.ports, `${r.host}:${r.port}`];
    n.load += r.load;
    byNode.set(r.node, n);
  }
  const rows = [...byNode.entries()].map(([node, n]) => {
    const tr = el("tr");
    tr.append(
      el("td", "", n.self ? `${node} (this node)` : node),
      el("td", "", Array.isArray(n.ports) ? n.ports.join(", ") : n.ports),
      el("td", "", formatCount(n.load)),
    );
    return tr;
  });
  document.querySelector("#cluster tbody").replaceChildren(...rows);
  document.getElementById("cluster-alone").hidden = stats.cluster.length > 0;
}

function render(stats, at) {
  const dt = previous ? (at - previous.at) / 1000 : 0;
  const cores = stats.cores;
  const subscribers = sum(cores, "subscribers");
  const deliveries = previous ? rate(stats, previous.stats, dt, (s) => sum(s.cores, "frames_sent")) : 0;
  const bytes = previous ? rate(stats, previous.stats, dt, (s) => sum(s.cores, "bytes_sent")) : 0;
  setText("node", `${stats.node_id} · api ${stats.api}`);
  setText("subscribers", formatCount(subscribers));
  setText("subscribers-sub", `on ${cores.length} cores · ${formatCount(sum(cores, "live_matches"))} matches`);
  setText("deliveries", formatCount(deliveries));
  setText("deliveries-sub", `${formatBytes(bytes)}/s to subscribers`);
  const bus = Math.max(0, ...cores.map((c) => c.bus_depth));
  setText("bus", formatCount(bus));
  setText("bus-sub", "deepest core, at its last drain");
  const slow = sum(cores, "slow_disconnects");
  slowAt.push([at, slow]);
  slowAt = slowAt.filter(([t]) => at - t <= 60000);
  setText("slow", formatCount(slow));
  setText("slow-sub", `+${formatCount(slow - slowAt[0][1])} in the last minute`);
  const p = stats.process;
  setText("rss", formatBytes(p.rss_bytes));
  // Per subscriber only where subscribers, not the process's base, make up the figure.
  setText("rss-sub", subscribers >= 1000 ? `${formatBytes(p.rss_bytes / subscribers)} per subscriber` : "the node's process");
  setText("files", `${formatCount(p.open_files)}`);
  const share = p.open_files_limit > 0 ? p.open_files / p.open_files_limit : 0;
  setText("files-sub", `of ${formatCount(p.open_files_limit)} allowed (${(share * 100).toFixed(1)} %)`);
  const meter = document.getElementById("files-meter");
  meter.firstElementChild.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
  meter.classList.toggle("warn", share >= 0.75 && share < 0.9);
  meter.classList.toggle("bad", share >= 0.9);
  document.querySelector("#cores tbody").replaceChildren(...cores.map((c) => coreRow(c, dt)));
  renderCluster(stats);

  history.push({ at, subscribers, deliveries });
  while (history.length && at - history[0].at > WINDOW_MS) history.shift();
  const maxSubs = draw(document.getElementById("chart-subscribers"), "subscribers", cssVar("--home"));
  const maxDeliveries = draw(document.getElementById("chart-deliveries"), "deliveries", cssVar("--accent"));
  setText("chart-subscribers-max", `max ${formatCount(maxSubs)}`);
  setText("chart-deliveries-max", `max ${formatCount(maxDeliveries)}/s`);
  previous = { at, stats };
}

async function main() {
  setUpTheme();
  const conn = document.getElementById("conn");
  for (;;) {
    const started = Date.now();
    try {
      const stats = await getJson("/1/stats");
      render(stats, Date.now());
      conn.dataset.state = "live";
      setText(conn, "live · every 1 s");
    } catch (e) {
      conn.dataset.state = "error";
      setText(conn, "node unreachable");
    }
    await new Promise((r) => setTimeout(r, Math.max(100, REFRESH_MS - (Date.now() - started))));
  }
}

main();
