// What every page of the live page shares: the theme switch, JSON reads, and the match in
// words (periods, event titles, minutes) as `matchstream watch` prints it.

// ---- Theme: the system's unless the switch in the bar chose one (kept in localStorage). ----

const THEMES = ["auto", "dark", "light"];

export function setUpTheme() {
  const button = document.getElementById("theme");
  let theme = localStorage.getItem("matchstream-theme") || "auto";
  const apply = () => {
    if (theme === "auto") {
      document.documentElement.removeAttribute("data-theme");
    } else {
      document.documentElement.setAttribute("data-theme", theme);
    }
    if (button) button.textContent = `theme: ${theme}`;
  };
  apply();
  if (button) {
    button.addEventListener("click", () => {
      theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
      localStorage.setItem("matchstream-theme", theme);
      apply();
    });
  }
}

// ---- Reads ----

/// GETs `path` and parses its JSON; throws with the status on anything but 200.
export async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`${path}: ${response.status}`);
  }
  return response.json();
}

/// Sets the text of the element with id `id` only when it changed (no needless repaint).
export function setText(id, text) {
  const el = typeof id === "string" ? document.getElementById(id) : id;
  if (el && el.textContent !== String(text)) el.textContent = String(text);
}

/// An element with a class and text.
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- The match in words ----

const PERIOD_NAMES = {
  not_started: "not started",
  first: "first half",
  halftime: "half-time",
  last: "second half",
  first_extra: "extra time, 1st half",
  halftime_extra: "extra time, half-time",
  last_extra: "extra time, 2nd half",
  ended: "full time",
};

export function periodName(period) {
  return PERIOD_NAMES[period] || period;
}

/// Whether the ball is in play in `period` (or about to be again: half-time counts as live).
export function isLive(period) {
  return period !== "not_started" && period !== "ended";
}

/// The period after an event of `kind` in `period` (the protocol's state machine).
export function nextPeriod(kind, period) {
  switch (kind) {
    case "start": return "first";
    case "halftime_start":
      return period === "first" ? "halftime" : period === "first_extra" ? "halftime_extra" : period;
    case "halftime_stop":
      return period === "halftime" ? "last" : period === "halftime_extra" ? "last_extra" : period;
    case "extratime": return period === "last" ? "first_extra" : period;
    case "stop": return isLive(period) ? "ended" : period;
    default: return period;
  }
}

const TITLES = {
  start: "KICK-OFF",
  stop: "FULL TIME",
  halftime_start: "HALF-TIME",
  halftime_stop: "SECOND HALF",
  extratime: "EXTRA TIME",
  goalkick: "GOAL KICK",
  freekick: "FREE KICK",
  throwin: "THROW-IN",
};

/// An event's title: `GOAL`, `RED CARD`, `SECOND HALF`.
export function title(event, periodBefore) {
  const d = event.data || {};
  if (event.kind === "card") {
    return d.card === "red" ? "RED CARD" : d.card === "yellow" ? "YELLOW CARD" : "CARD";
  }
  if (event.kind === "halftime_stop" && periodBefore === "halftime_extra") {
    return "EXTRA TIME, SECOND HALF";
  }
  return TITLES[event.kind] || event.kind.toUpperCase();
}

export function who(p) {
  return p ? `${p.name} (${p.number})` : "";
}

/// The rest of an event in words: `tig — Luna (7)`, `Silva (21) for Boselli (9)`.
export function detail(event) {
  const d = event.data || {};
  const parts = [];
  if (d.team) parts.push(d.team.toUpperCase());
  if (event.kind === "substitution" && d.player_in && d.player_out) {
    parts.push(`${who(d.player_in)} for ${who(d.player_out)}`);
  } else if (d.player) {
    const own = event.kind === "goal" && d.player_team && d.player_team !== d.team;
    parts.push(who(d.player) + (own ? " own goal" : ""));
  }
  if (d.comment) parts.push(d.comment);
  return parts.join(" — ");
}

// Minutes of play, counted from the events that start a period, as football counts them:
// 1' in the first half, 46' in the second, 91' and 106' in extra time, 45+2' past a period's
// length; HT at half-time; the time of day where no start is known.
const SPANS = { first: [0, 45], last: [45, 45], first_extra: [90, 15], last_extra: [105, 15] };

export class Clock {
  constructor() {
    this.starts = {};
  }

  started(period, ms) {
    if (SPANS[period]) this.starts[period] = ms;
  }

  label(period, ms) {
    if (period === "halftime" || period === "halftime_extra") return "HT";
    const span = SPANS[period];
    const start = this.starts[period];
    if (!span || start === undefined) {
      return new Date(ms).toISOString().slice(11, 16);
    }
    const [base, length] = span;
    const minute = Math.floor(Math.max(0, ms - start) / 60000) + 1;
    return minute > length ? `${base + length}+${minute - length}'` : `${base + minute}'`;
  }
}

/// The period an event's minute is counted in: a period's opening event belongs to the new
/// period (46'), its closing one to the period it closes (45+1').
export function periodOf(kind, before, after) {
  return kind === "start" || kind === "halftime_stop" || kind === "extratime" ? after : before;
}

export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatCount(n) {
  return Math.round(n).toLocaleString("en-US");
}
