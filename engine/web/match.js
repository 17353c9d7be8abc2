// The match page (`GET /match/<id>`): the scoreboard, the rosters and a timeline that grows
// as events arrive over server-sent events (`/1/match/<id>/stream`, SPEC §8).
//
// The stream starts with the match's status (its state after seq S); the timeline's events up
// to S come from `/1/match/<id>/history`, the ones after S from the stream, each applied once
// in seq order (an event at or below the last seq applied is dropped). After a drop the
// browser's EventSource reconnects by itself with `Last-Event-ID`, and the node sends what
// was missed; when the browser gives up (the node was down longer, or answered with an
// error), the page reconnects with `?since=<last seq>`, backing off up to 10 s. A stream that
// ends after `stop` is not reopened. When the node says the match's history changed (it was
// replaced under the same id), the page starts over from a fresh status.
//
// `window.matchstream` exposes what the page received, for tests: `received` lists the seq
// of every event that arrived (duplicates included), `applied` the seqs shown.

import {
  setUpTheme, getJson, setText, el, periodName, isLive, nextPeriod, title, detail, Clock,
  periodOf,
} from "/web/common.js";

const KINDS = [
  "start", "stop", "halftime_start", "halftime_stop", "extratime", "shot", "save", "goal",
  "corner", "goalkick", "offside", "foul", "penalty", "freekick", "card", "substitution",
  "throwin", "comment",
];
const MAX_BACKOFF_MS = 10000;

const id = decodeURIComponent(location.pathname.replace(/^\/match\//, ""));
const debug = { received: [], applied: [], statuses: 0, connects: 0 };
window.matchstream = debug;

let match = null; // the state after `lastSeq`
let lastSeq = 0;
let clock = new Clock();
let ready = false; // the history up to the status is shown
let pending = []; // events that arrived before it was
let source = null;
let backoff = 1000;
let retryTimer = null;
// Per player marks: "team/number" -> { goals, yellow, red }.
let marks = new Map();

function conn(state, text) {
  const badge = document.getElementById("conn");
  badge.dataset.state = state;
  setText(badge, text);
}

function banner(text) {
  const b = document.getElementById("banner");
  b.hidden = !text;
  setText(b, text || "");
}

// ---- Rendering ----

function renderBoard(flash) {
  setText("home-code", match.home.toUpperCase());
  setText("visit-code", match.visit.toUpperCase());
  setText("home-title", `${match.home.toUpperCase()} · home`);
  setText("visit-title", `${match.visit.toUpperCase()} · visitors`);
  for (const side of ["home", "visit"]) {
    const num = document.getElementById(`${side}-score`);
    const value = String(match[`${side}_score`]);
    if (num.textContent !== value) {
      num.textContent = value;
      if (flash) {
        num.classList.remove("flash");
        void num.offsetWidth; // restart the animation
        num.classList.add("flash");
      }
    }
  }
  const period = document.getElementById("period");
  setText(period, periodName(match.period));
  period.classList.toggle("live", isLive(match.period));
  setText("venue", [match.stadium, match.start_date].filter(Boolean).join(" · "));
  document.title = `${match.home.toUpperCase()} ${match.home_score}–${match.visit_score} ${match.visit.toUpperCase()} · matchstream`;
  tick();
}

function renderRoster(side) {
  const list = document.getElementById(`${side}-roster`);
  const team = match[side];
  const players = match[`${side}_players`];
  const rows = players.map((p) => {
    const li = el("li");
    li.dataset.number = p.number;
    li.append(el("span", "no", String(p.number)), el("span", "name", p.name));
    const m = marks.get(`${team}/${p.number}`);
    const box = el("span", "marks");
    if (m) {
      for (let i = 0; i < m.goals; i++) {
        const ball = el("span", "mark goal");
        ball.title = "goal";
        box.append(ball);
      }
      if (m.yellow) {
        const card = el("span", "mark yellow");
        card.title = "yellow card";
        box.append(card);
      }
    }
    li.append(box);
    return li;
  });
  list.replaceChildren(...rows);
}

function mark(team, player, what) {
  if (!team || !player) return;
  const key = `${team}/${player.number}`;
  const m = marks.get(key) || { goals: 0, yellow: 0 };
  m[what] += 1;
  marks.set(key, m);
}

/// The live clock under the score: the minute of play now, from the current period's start.
function tick() {
  if (!match) return;
  const text = isLive(match.period) && match.period.indexOf("halftime") < 0 && clock.starts[match.period] !== undefined
    ? clock.label(match.period, Date.now())
    : match.period.indexOf("halftime") >= 0 ? "HT" : "";
  setText("clock", text);
}

function timelineItem(event, before, after, fresh) {
  const li = el("li", fresh ? "new" : "");
  li.dataset.seq = event.seq;
  li.dataset.kind = event.kind;
  if (event.data && event.data.card) li.dataset.card = event.data.card;
  if (before !== after || event.kind === "start") li.classList.add("period-change");
  const when = clock.label(periodOf(event.kind, before, after), event.timestamp);
  const what = el("div", "what");
  what.append(el("span", "kind", title(event, before)));
  const d = detail(event);
  if (d) what.append(document.createTextNode(" "), el("span", "detail", `· ${d}`));
  const score = event.kind === "goal" || event.kind === "stop" ? `${match.home_score} – ${match.visit_score}` : "";
  li.append(el("span", "when", when), what, el("span", "after", score));
  return li;
}

// ---- The state machine of the protocol (state::apply) ----

function apply(event, fresh) {
  const d = event.data || {};
  const before = match.period;
  const after = nextPeriod(event.kind, before);
  if (after !== before) clock.started(after, event.timestamp);
  let rosters = false;
  switch (event.kind) {
    case "start":
      if (d.home_players) match.home_players = d.home_players;
      if (d.visit_players) match.visit_players = d.visit_players;
      match.home_score = 0;
      match.visit_score = 0;
      rosters = true;
      break;
    case "goal":
      if (d.team === match.home) match.home_score += 1;
      else if (d.team === match.visit) match.visit_score += 1;
      if (!d.player_team || d.player_team === d.team) mark(d.team, d.player, "goals");
      rosters = true;
      break;
    case "card":
      if (d.card === "red" && d.team && d.player) {
        const key = `${d.team === match.home ? "home" : "visit"}_players`;
        if (match[key]) match[key] = match[key].filter((p) => p.number !== d.player.number);
      } else if (d.card === "yellow") {
        mark(d.team, d.player, "yellow");
      }
      rosters = true;
      break;
    case "substitution": {
      const key = `${d.team === match.home ? "home" : "visit"}_players`;
      if (d.team && match[key]) {
        if (d.player_out) match[key] = match[key].filter((p) => p.number !== d.player_out.number);
        if (d.player_in) match[key] = [...match[key], d.player_in];
      }
      rosters = true;
      break;
    }
    default:
      break;
  }
  match.period = after;
  match.last_seq = event.seq;
  match.updated = event.timestamp;
  const timeline = document.getElementById("timeline");
  timeline.prepend(timelineItem(event, before, after, fresh));
  document.getElementById("no-events").hidden = true;
  debug.applied.push(event.seq);
  return rosters;
}

function onEvent(event, fresh) {
  if (event.seq <= lastSeq) return; // already shown
  lastSeq = event.seq;
  if (apply(event, fresh)) {
    renderRoster("home");
    renderRoster("visit");
  }
  renderBoard(fresh);
  if (match.period === "ended") finished();
}

// ---- The stream ----

function reset() {
  match = null;
  lastSeq = 0;
  clock = new Clock();
  marks = new Map();
  ready = false;
  pending = [];
  document.getElementById("timeline").replaceChildren();
  document.getElementById("no-events").hidden = false;
}

async function onStatus(m) {
  debug.statuses += 1;
  if (match && match.incarnation !== m.incarnation) reset();
  if (match) return; // a status after a resume changes nothing
  // The state at seq S, with the events up to S read from the history.
  const upTo = m.last_seq;
  let history = [];
  for (let tries = 0; tries < 10; tries++) {
    try {
      history = await getJson(`/1/match/${encodeURIComponent(id)}/history`);
    } catch (e) {
      history = [];
    }
    if (history.length === 0 || history[history.length - 1].seq >= upTo || upTo === 0) break;
    await new Promise((r) => setTimeout(r, 200)); // another core has not caught up yet
  }
  // Replay the history from the start to know each event's period and minute; then take the
  // status's own state (the rosters and scores the node computed).
  match = { ...m, home_score: 0, visit_score: 0, period: "not_started", last_seq: 0 };
  for (const event of history) {
    if (event.seq > upTo) break;
    apply(event, false);
  }
  match = { ...m };
  lastSeq = upTo;
  renderBoard(false);
  renderRoster("home");
  renderRoster("visit");
  ready = true;
  const queued = pending;
  pending = [];
  for (const event of queued) onEvent(event, true);
  if (match.period === "ended") finished();
}

function received(e) {
  const event = JSON.parse(e.data);
  debug.received.push(event.seq);
  if (!ready) {
    pending.push(event);
  } else {
    onEvent(event, true);
  }
}

function finished() {
  if (source) {
    source.close();
    source = null;
  }
  clearTimeout(retryTimer);
  conn("ended", "full time · stream closed");
}

function connect() {
  clearTimeout(retryTimer);
  const since = lastSeq > 0 ? `?since=${lastSeq}` : "";
  const es = new EventSource(`/1/match/${encodeURIComponent(id)}/stream${since}`);
  source = es;
  debug.connects += 1;
  es.onopen = () => {
    backoff = 1000;
    banner(null);
    conn("live", "live");
  };
  es.addEventListener("status", (e) => {
    onStatus(JSON.parse(e.data));
  });
  for (const kind of KINDS) es.addEventListener(kind, received);
  es.addEventListener("error", (e) => {
    if (e.data) {
      // The node's last words: {"error": reason}.
      const reason = JSON.parse(e.data).error;
      if (reason === "match history changed") {
        es.close();
        reset();
        banner("The match's history was replaced on the node; starting over.");
        retryTimer = setTimeout(connect, 500);
      } else {
        banner(`The node closed the stream: ${reason}. Resuming…`);
      }
      return;
    }
    if (source !== es) return;
    if (match && match.period === "ended") {
      finished();
    } else if (es.readyState === EventSource.CONNECTING) {
      conn("reconnecting", "reconnecting…");
    } else {
      // The browser gave up (the node was down, or answered an error): try again ourselves.
      es.close();
      source = null;
      conn("reconnecting", "reconnecting…");
      retryTimer = setTimeout(retry, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  });
}

async function retry() {
  if (!match) {
    try {
      await getJson(`/1/match/${encodeURIComponent(id)}`);
    } catch (e) {
      if (String(e.message).endsWith("404")) {
        banner(`No match “${id}” on this node.`);
        conn("error", "unknown match");
        retryTimer = setTimeout(retry, MAX_BACKOFF_MS);
        return;
      }
    }
  }
  connect();
}

setUpTheme();
setInterval(tick, 1000);
connect();
