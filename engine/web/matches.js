// The match list (`GET /`): every match this node knows, with its live score, refreshed
// every 2 s from `/1/matches` and `/1/match/<id>`. Live matches first, then those still to
// come, then the ended ones.

import { setUpTheme, getJson, setText, el, periodName, isLive } from "/web/common.js";

const REFRESH_MS = 2000;
/// At most this many matches are shown (each costs a request per refresh).
const MAX_SHOWN = 60;

function rank(m) {
  return isLive(m.period) ? 0 : m.period === "not_started" ? 1 : 2;
}

function card(m) {
  const a = el("a", "card panel");
  a.href = `/match/${encodeURIComponent(m.id)}`;
  a.dataset.id = m.id;
  a.append(el("div", "team home"), el("div", "score"), el("div", "team visit"));
  const meta = el("div", "meta");
  meta.append(el("span", "period"), el("span", "where"));
  a.append(meta);
  return a;
}

function fill(a, m) {
  setText(a.querySelector(".home"), m.home.toUpperCase());
  setText(a.querySelector(".visit"), m.visit.toUpperCase());
  setText(a.querySelector(".score"), m.period === "not_started" ? "–" : `${m.home_score} – ${m.visit_score}`);
  const period = a.querySelector(".period");
  setText(period, periodName(m.period));
  period.classList.toggle("live", isLive(m.period));
  setText(a.querySelector(".where"), [m.stadium, m.start_date].filter(Boolean).join(" · "));
}

async function refresh(list) {
  const ids = (await getJson("/1/matches")).slice(0, MAX_SHOWN);
  const matches = (await Promise.all(ids.map((id) => getJson(`/1/match/${encodeURIComponent(id)}`).catch(() => null))))
    .filter(Boolean)
    .sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1));
  const existing = new Map([...list.children].map((li) => [li.firstChild.dataset.id, li]));
  const order = [];
  for (const m of matches) {
    let li = existing.get(m.id);
    if (!li) {
      li = el("li");
      li.append(card(m));
    }
    existing.delete(m.id);
    fill(li.firstChild, m);
    order.push(li);
  }
  for (const gone of existing.values()) gone.remove();
  order.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  document.getElementById("no-matches").hidden = matches.length > 0;
}

async function main() {
  setUpTheme();
  const list = document.getElementById("matches");
  const conn = document.getElementById("conn");
  for (;;) {
    try {
      await refresh(list);
      conn.dataset.state = "live";
      setText(conn, "live");
    } catch (e) {
      conn.dataset.state = "error";
      setText(conn, "node unreachable");
    }
    await new Promise((r) => setTimeout(r, REFRESH_MS));
  }
}

main();
