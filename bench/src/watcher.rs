//! The bench as a watcher: unique match ids per run, match scripts renamed onto those ids,
//! and playing them through the API with [`matchstream_client::player`] (the original's
//! fake_watcher), split in two parts: up to the `start` event before the subscribers connect
//! (so that version 1 subscribers find the match live), the rest while they watch; and the
//! plain started matches that `fanout` and `soak` publish into, deleted at their end.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use matchstream_client::match_id;
use matchstream_client::player::play_steps;
use matchstream_client::HttpClient;
use matchstream_protocol::script::{Script, Step};
use matchstream_protocol::{Date, EventKind, MatchId, NewMatch, PostedEvent, TeamCode};

/// The date of every match the bench creates (the seed's sample session); ids stay unique
/// through the team codes, which carry the run id.
pub const DATE: &str = "2011-09-13";

/// A short id for this run (8 hex digits from the clock and the pid), used in team codes and
/// user ids so that runs against the same server never collide.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ (nanos >> 64) as u64;
    // A splitmix step so that runs a nanosecond apart still differ in every digit.
    let mut z = mixed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:08x}", (z ^ (z >> 31)) as u32)
}

/// A team code from `text` (lowercased; must fit `[a-z0-9_]{1,32}`).
pub fn team(text: &str) -> anyhow::Result<TeamCode> {
    TeamCode::parse(&text.to_ascii_lowercase()).with_context(|| format!("team code {text:?}"))
}

/// `script` with its teams renamed to `home` and `visit` and its date set to [`DATE`].
pub fn rename(script: &Script, home: &TeamCode, visit: &TeamCode) -> anyhow::Result<Script> {
    let mut s = script.clone();
    let old_home = s.new_match.home.clone();
    let map = |t: &mut Option<TeamCode>| {
        if let Some(code) = t {
            *code = if *code == old_home {
                home.clone()
            } else {
                visit.clone()
            };
        }
    };
    for step in &mut s.steps {
        if let Step::Event(e) = step {
            map(&mut e.team);
            map(&mut e.player_team);
        }
    }
    s.new_match.home = home.clone();
    s.new_match.visit = visit.clone();
    s.new_match.start_date = Date::parse(DATE).context("bench date")?;
    Ok(s)
}

/// A created match and the part of its script still to play.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The match id.
    pub id: MatchId,
    /// Steps after the first `start`.
    pub rest: Vec<Step>,
}

/// Creates the script's match and posts its events up to and including the first `start`
/// (pauses skipped).
pub fn prepare(api: &mut HttpClient, script: &Script) -> anyhow::Result<Prepared> {
    let id = api
        .create_match(&script.new_match)?
        .ok_or_else(|| anyhow!("creating a match: it exists already"))?;
    let steps = &script.steps;
    let start = steps
        .iter()
        .position(|s| matches!(s, Step::Event(e) if e.kind == EventKind::Start))
        .map_or(steps.len(), |i| i + 1);
    play_steps(api, &id, &steps[..start], 0.0, |_| true, |_| {})?;
    Ok(Prepared {
        id,
        rest: steps[start..].to_vec(),
    })
}

/// Creates `count` matches with ids unique to `run` (teams `b<run>` and `m<i>`, dated
/// [`DATE`], no players) and starts each (`fanout`, `soak`).
pub fn create_started(
    client: &mut HttpClient,
    run: &str,
    count: u64,
) -> anyhow::Result<Vec<MatchId>> {
    let home = team(&format!("b{run}"))?;
    let start_date = Date::parse(DATE).context("date")?;
    let mut ids = Vec::new();
    for i in 0..count {
        let m = NewMatch {
            home: home.clone(),
            visit: team(&format!("m{i}"))?,
            start_date,
            stadium: None,
            home_players: Vec::new(),
            visit_players: Vec::new(),
        };
        let id = client
            .create_match(&m)?
            .with_context(|| format!("creating the match {}: it exists already", match_id(&m)))?;
        client.post_event(&id, &PostedEvent::new(EventKind::Start))?;
        ids.push(id);
    }
    Ok(ids)
}

/// `DELETE /1/match/<id>` for each (so `/1/matches` does not grow run after run).
pub fn cancel_all(client: &mut HttpClient, ids: &[MatchId]) -> anyhow::Result<()> {
    for id in ids {
        client.cancel_match(id)?;
    }
    Ok(())
}

/// What playing cost.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Played {
    /// Events posted.
    pub events: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Plays `steps` on match `id`, pauses divided by `speed` (0 = no pauses).
pub fn play(
    api: &mut HttpClient,
    id: &MatchId,
    steps: &[Step],
    speed: f64,
) -> anyhow::Result<Played> {
    let started = Instant::now();
    let mut events = 0;
    let sleep = |pause| {
        std::thread::sleep(pause);
        true
    };
    play_steps(api, id, steps, speed, sleep, |_| events += 1)?;
    Ok(Played {
        events,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_team_code_safe_and_differ() {
        let a = run_id();
        assert_eq!(a.len(), 8);
        assert!(team(&format!("b{a}")).is_ok());
        assert_ne!(a, run_id());
    }

    #[test]
    fn renaming_moves_every_team_reference() {
        let s = matchstream_client::player::load_script("sample").expect("sample");
        let r = rename(&s, &team("bx").expect("t"), &team("sy").expect("t")).expect("rename");
        assert_eq!(r.new_match.home.as_str(), "bx");
        for step in &r.steps {
            if let Step::Event(e) = step {
                for t in [&e.team, &e.player_team].into_iter().flatten() {
                    assert!(["bx", "sy"].contains(&t.as_str()), "{t:?}");
                }
            }
        }
    }
}
