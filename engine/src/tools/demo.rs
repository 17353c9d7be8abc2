//! `matchstream demo`: the main job on a fresh machine. It starts a server, prints how to
//! watch it, and plays the sample match through the real HTTP API in a loop, each round as a
//! new match one day after the last one in the store (so a restart on the same data directory
//! never collides with earlier rounds).
//!
//! Threads: the main thread blocks SIGINT/SIGTERM before anything starts (every thread
//! inherits the mask) and waits for one in `sigwait`. The player runs on its own thread; when
//! it has played `--rounds` rounds, or fails, it raises SIGTERM at its own process to wake the
//! main thread. Shutdown order: stop the player (which ends or removes its current match so
//! no watcher is left waiting), then shut the server down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use matchstream_client::player::{check_speed, play_steps, scaled};
use matchstream_client::HttpClient;
use matchstream_protocol::api::posted_event_body;
use matchstream_protocol::script::{parse_script, Script, SAMPLE};
use matchstream_protocol::{Date, EventKind, MatchId, NewMatch, PostedEvent};

use super::replay::{say, Score};
use crate::config::DemoArgs;
use crate::signals;

/// Longest pause between rounds (at the default speed and slower), so watchers see the end.
const ROUND_PAUSE: Duration = Duration::from_secs(5);

/// The pause between rounds at speed 1, before the [`ROUND_PAUSE`] cap (5 s at 4×).
const ROUND_PAUSE_AT_1X_MS: u64 = 20_000;

/// Most taken dates skipped when looking for a free match id.
const MAX_SKIPPED_DATES: u32 = 10_000;

/// Runs `matchstream demo` until SIGINT/SIGTERM, or until `--rounds` rounds were played.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    check_speed(args.speed)?;
    let script = parse_script(SAMPLE).context("the built-in sample match")?;
    signals::block_termination();
    let store = args.server.store.to_string();
    let server = crate::start(args.server).context("cannot start the demo server")?;
    let base = format!("http://{}", reachable(server.api_addr));
    let mut client = HttpClient::new(&base)?.with_token(&server.token);
    let first = first_round(&mut client, &script.new_match)?;
    let checkin = client.checkin()?;
    say(&banner(&Banner {
        program: &program_name(),
        base: &base,
        host: &checkin.host,
        port: checkin.port,
        first: &first,
        token: &server.token,
        speed: args.speed,
        round: scaled(script.total_sleep_ms(), args.speed).unwrap_or_default(),
        store: &store,
    }));

    let stop = Arc::new(Stop::default());
    let finished = Arc::new(AtomicBool::new(false));
    let player = {
        let stop = Arc::clone(&stop);
        let finished = Arc::clone(&finished);
        let rounds = args.rounds;
        let speed = args.speed;
        std::thread::Builder::new()
            .name("demo-player".into())
            .spawn(move || {
                // Wakes the main thread however the player ends, a panic included.
                let _wake = WakeMain(finished);
                let mut player = Player {
                    client,
                    script,
                    speed,
                    stop: &stop,
                    base,
                };
                player.play(first, rounds)
            })
            .context("cannot start the player thread")?
    };

    let sig = signals::wait_termination();
    if !finished.load(Ordering::SeqCst) {
        say(&format!("signal {sig} received: stopping"));
    }
    stop.set();
    let result = player
        .join()
        .map_err(|_| anyhow!("the player thread panicked"));
    server.shutdown();
    result?
}

/// An address clients can reach: the loopback when the server listens on every address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}

/// How the user ran us (`target/debug/matchstream` or `matchstream`), for copyable commands.
fn program_name() -> String {
    std::env::args()
        .next()
        .filter(|a| a.ends_with("matchstream"))
        .unwrap_or_else(|| "matchstream".into())
}

/// What the banner shows.
struct Banner<'a> {
    program: &'a str,
    base: &'a str,
    host: &'a str,
    port: u16,
    first: &'a MatchId,
    token: &'a str,
    speed: f64,
    round: Duration,
    store: &'a str,
}

/// The how-to-watch text printed at start.
fn banner(b: &Banner<'_>) -> String {
    let Banner {
        program,
        base,
        host,
        port,
        first,
        token,
        speed,
        round,
        store,
    } = *b;
    let pace = if speed == 0.0 {
        "without pauses".to_owned()
    } else {
        let secs = round.as_secs_f64();
        let secs = if secs < 10.0 {
            format!("{secs:.1}")
        } else {
            format!("{secs:.0}")
        };
        format!("at {speed}× speed (a round takes about {secs} s)")
    };
    format!(
        "matchstream demo: playing the sample match in a loop {pace}; store {store}\n\
         Every round is a new match, one day after the last; the first is {first}.\n\
         \n\
         Watch it:\n\
         \x20 in a browser: {base}/match/{first}   (all matches: {base}/ · operations: {base}/ops)\n\
         \x20 nc {host} {port}\n\
         \x20     then type: VERSION:1:CONNECT:me:MATCH:{first}\n\
         \x20 {program} watch {first} --url {base}\n\
         \x20 curl -N {base}/1/match/{first}/stream      (server-sent events, as browsers get them)\n\
         \n\
         HTTP API:\n\
         \x20 checkin:  curl {base}/1/checkin\n\
         \x20 history:  curl {base}/1/match/{first}/history\n\
         \x20 matches:  curl {base}/1/matches\n\
         \x20 token:    {token}\n\
         \x20 replay:   {program} replay sample --url {base} --token {token} --date 2030-01-01\n\
         \n\
         Stop with Ctrl-C.\n"
    )
}

/// Raises SIGTERM at this process when dropped, after marking the player finished.
struct WakeMain(Arc<AtomicBool>);

impl Drop for WakeMain {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        // SAFETY: kill(2) on our own pid. SIGTERM is blocked in every thread, so it stays
        // pending until the main thread's sigwait takes it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
    }
}

/// A stop request the player's pauses wake up for.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Asks the player to stop.
    fn set(&self) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        *stopped = true;
        self.wake.notify_all();
    }

    /// Waits `pause` unless asked to stop; `false` when asked to stop.
    fn sleep(&self, pause: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, pause, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        !*stopped
    }
}

/// The player thread's state.
struct Player<'a> {
    client: HttpClient,
    script: Script,
    speed: f64,
    stop: &'a Stop,
    base: String,
}

impl Player<'_> {
    /// Plays rounds from the (created) match `first` on, until `rounds` were played (0 =
    /// forever) or a stop is asked.
    fn play(&mut self, first: MatchId, rounds: u64) -> anyhow::Result<()> {
        let mut current = first;
        let pause = scaled(ROUND_PAUSE_AT_1X_MS, self.speed).map(|d| d.min(ROUND_PAUSE));
        for round in 1.. {
            say(&format!("round {round}: {current}"));
            let mut score = Score::new(&self.script.new_match);
            let played = play_steps(
                &mut self.client,
                &current,
                &self.script.steps,
                self.speed,
                |pause| self.stop.sleep(pause),
                |e| say(&format!("  {}", score.describe(e))),
            )?;
            if !played {
                return self.wind_up(&current);
            }
            if rounds != 0 && round >= rounds {
                say(&format!(
                    "round {round}: {current} ended; {rounds} round(s) played"
                ));
                return Ok(());
            }
            let date = next_day(date_of(&current)?)
                .ok_or_else(|| anyhow!("no date after {current} for the next round"))?;
            let next = create_from(&mut self.client, &self.script.new_match, date)?;
            let wait = pause.map_or_else(String::new, |d| format!(" in {:.1} s", d.as_secs_f64()));
            say(&format!(
                "round {round}: {current} ended; next: {next}{wait}"
            ));
            if let Some(pause) = pause {
                if !self.stop.sleep(pause) {
                    self.client.cancel_match(&next)?;
                    return Ok(());
                }
            }
            current = next;
        }
        Ok(())
    }

    /// Ends the interrupted match, so its watchers get a `stop` and are let go; a match that
    /// had not started yet is removed instead.
    fn wind_up(&mut self, id: &MatchId) -> anyhow::Result<()> {
        let body = posted_event_body(&PostedEvent::new(EventKind::Stop));
        let response = self
            .client
            .post_json(&format!("/1/match/{id}/events"), &body)?;
        if response.is_success() {
            say(&format!("{id} stopped early"));
        } else {
            log::debug!(target: "matchstream::demo",
                "stop on {id} refused ({}); cancelling it", response.error_text());
            self.client.cancel_match(id)?;
            say(&format!(
                "{id} removed (it had not started) from {}",
                self.base
            ));
        }
        Ok(())
    }
}

/// Creates the first round's match: the day after the latest match of the sample's teams in
/// the store, or the sample's own date when there is none.
fn first_round(client: &mut HttpClient, sample: &NewMatch) -> anyhow::Result<MatchId> {
    let response = client.get("/1/matches")?;
    if !response.is_success() {
        bail!("cannot list the matches: {}", response.error_text());
    }
    let listing = response.json()?;
    let ids = listing
        .as_array()
        .ok_or_else(|| anyhow!("GET /1/matches gave no list: {listing}"))?
        .iter()
        .filter_map(|v| v.as_str());
    let date = match latest_date(ids, sample) {
        Some(latest) => next_day(latest).unwrap_or(sample.start_date),
        None => sample.start_date,
    };
    create_from(client, sample, date)
}

/// The latest date among `ids` of matches between the sample's two teams.
fn latest_date<'a>(ids: impl IntoIterator<Item = &'a str>, sample: &NewMatch) -> Option<Date> {
    let prefix = format!("{}-{}-", sample.home, sample.visit);
    ids.into_iter()
        .filter_map(|id| Date::parse(id.strip_prefix(&prefix)?).ok())
        .max()
}

/// Creates the sample's match on `date`, or on the first later date still free.
fn create_from(client: &mut HttpClient, sample: &NewMatch, date: Date) -> anyhow::Result<MatchId> {
    let mut new = sample.clone();
    new.start_date = date;
    for _ in 0..MAX_SKIPPED_DATES {
        if let Some(id) = client.create_match(&new)? {
            return Ok(id);
        }
        new.start_date = next_day(new.start_date)
            .ok_or_else(|| anyhow!("no free date left after {}", new.start_date))?;
    }
    bail!("{MAX_SKIPPED_DATES} dates from {date} on are all taken")
}

/// The date of a match id (`elp-tig-2011-09-10` → 2011-09-10).
fn date_of(id: &MatchId) -> anyhow::Result<Date> {
    let s = id.as_str();
    let text = s.get(s.len().saturating_sub(10)..).unwrap_or(s);
    Date::parse(text).map_err(|e| anyhow!("match id {id}: {e}"))
}

/// The day after `d`, or `None` after 9999-12-31.
pub fn next_day(d: Date) -> Option<Date> {
    let leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
    let days = match d.month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let next = if d.day < days {
        Date {
            day: d.day + 1,
            ..d
        }
    } else if d.month < 12 {
        Date {
            month: d.month + 1,
            day: 1,
            ..d
        }
    } else if d.year < 9999 {
        Date {
            year: d.year + 1,
            month: 1,
            day: 1,
        }
    } else {
        return None;
    };
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        Date::parse(s).expect("date")
    }

    #[test]
    fn days_advance() {
        let cases = [
            ("2011-09-10", "2011-09-11"),
            ("2011-09-30", "2011-10-01"),
            ("2011-08-31", "2011-09-01"),
            ("2011-12-31", "2012-01-01"),
            ("2011-02-28", "2011-03-01"),
            ("2012-02-28", "2012-02-29"),
            ("2012-02-29", "2012-03-01"),
            ("1900-02-28", "1900-03-01"),
            ("2000-02-28", "2000-02-29"),
        ];
        for (from, to) in cases {
            assert_eq!(next_day(date(from)), Some(date(to)), "{from}");
        }
        assert_eq!(next_day(date("9999-12-31")), None);
    }

    #[test]
    fn every_day_of_a_leap_cycle_is_a_valid_date() {
        let mut d = date("2000-01-01");
        let mut count = 0;
        while d < date("2004-01-01") {
            d = next_day(d).expect("next");
            assert_eq!(Date::parse(&d.to_string()), Ok(d));
            count += 1;
        }
        assert_eq!(count, 366 + 365 * 3);
    }

    #[test]
    fn the_first_round_follows_the_latest_match_of_the_sample_teams() {
        let sample = parse_script(SAMPLE).expect("sample").new_match;
        assert_eq!(latest_date([], &sample), None);
        let ids = [
            "elp-tig-2011-09-10",
            "elp-tig-2011-09-12",
            "tig-elp-2030-01-01",
            "elp-tigre-2030-01-01",
            "elp-tig-2011-09-11",
        ];
        assert_eq!(latest_date(ids, &sample), Some(date("2011-09-12")));
        let id = MatchId::parse("elp-tig-2011-09-12").expect("id");
        assert_eq!(date_of(&id).expect("date"), date("2011-09-12"));
    }

    #[test]
    fn loopback_for_unspecified_addresses() {
        let cases = [
            ("0.0.0.0:8888", "127.0.0.1:8888"),
            ("[::]:80", "[::1]:80"),
            ("10.1.2.3:9", "10.1.2.3:9"),
        ];
        for (bound, shown) in cases {
            let bound: SocketAddr = bound.parse().expect("addr");
            assert_eq!(reachable(bound).to_string(), shown);
        }
    }

    #[test]
    fn stop_wakes_a_pause() {
        let stop = Arc::new(Stop::default());
        assert!(stop.sleep(Duration::from_millis(1)));
        let waker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || stop.set())
        };
        // A minute's pause: only the wake can end it in time.
        let started = std::time::Instant::now();
        assert!(!stop.sleep(Duration::from_secs(60)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken after {:?}",
            started.elapsed()
        );
        waker.join().expect("waker");
        let started = std::time::Instant::now();
        assert!(!stop.sleep(Duration::from_secs(60)), "stays stopped");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no wait once stopped"
        );
    }

    #[test]
    fn the_banner_says_how_to_watch() {
        let first = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let text = banner(&Banner {
            program: "matchstream",
            base: "http://127.0.0.1:8888",
            host: "127.0.0.1",
            port: 9100,
            first: &first,
            token: "secret",
            speed: 4.0,
            round: Duration::from_millis(30_500 / 4),
            store: "memory",
        });
        for want in [
            "  in a browser: http://127.0.0.1:8888/match/elp-tig-2011-09-10 ",
            "operations: http://127.0.0.1:8888/ops)\n",
            "  nc 127.0.0.1 9100\n",
            "then type: VERSION:1:CONNECT:me:MATCH:elp-tig-2011-09-10\n",
            "  matchstream watch elp-tig-2011-09-10 --url http://127.0.0.1:8888\n",
            "  curl -N http://127.0.0.1:8888/1/match/elp-tig-2011-09-10/stream ",
            "curl http://127.0.0.1:8888/1/checkin\n",
            "curl http://127.0.0.1:8888/1/match/elp-tig-2011-09-10/history\n",
            "token:    secret\n",
            "at 4× speed (a round takes about 7.6 s)",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }
}
