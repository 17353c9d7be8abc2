//! `matchstream top`: a live terminal view of a node or, with Redis, of every node of the
//! cluster (SPEC §9), refreshed every second from each node's `GET /1/stats`: per node and
//! core the subscribers, deliveries/s, the bus depth's peak since about the last refresh,
//! queued outbox bytes, slow cut-offs, CPU % and publish→flush p99; per node its memory and
//! open files, its store thread (queue, batches, commit latency) and its Redis feed (events,
//! lag, gap fills); the busiest matches of the cluster.
//!
//! The other nodes are the ones the `--url` node's `cluster` list names with an API address
//! (their heartbeats carry it), asked from the next refresh on. Rates are the differences of
//! the nodes' counters over the time between two answers; CPU % comes from the CPU seconds
//! the node reads from its own /proc (`process.cpu_seconds`, each core's thread), so it is
//! right for a node on another host too.
//!
//! Drawn with ratatui on crossterm (`view.rs`); q, Esc or Ctrl-C quits and gives the terminal
//! back as it was (raw mode off, the main screen, the cursor shown), also after a panic.
//! `--once` prints one frame as plain text and exits 0: the figures of two answers a second
//! apart, so that it has rates.

mod frame;
mod sample;
mod view;

#[cfg(test)]
mod tests;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::config::TopArgs;
use frame::Frame;
use sample::{Poller, Sample};

/// Time between two refreshes.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Runs `matchstream top`.
pub fn run(args: TopArgs) -> anyhow::Result<()> {
    let mut poller = Poller::new(&args.url);
    if args.once {
        print!("{}", once(&mut poller, &args.url)?);
        return Ok(());
    }
    live(poller, &args.url)
}

/// The title line's start.
fn title(url: &str) -> String {
    format!("matchstream top {url}")
}

/// One frame as text: two rounds a second apart.
fn once(poller: &mut Poller, url: &str) -> anyhow::Result<String> {
    let first = poller.round();
    if first.iter().all(|s| s.stats.is_err()) {
        let why = first
            .first()
            .and_then(|s| s.stats.as_ref().err().cloned())
            .unwrap_or_default();
        bail!("{url}: {why}");
    }
    std::thread::sleep(REFRESH);
    let second = poller.round();
    let frame = Frame::between(&first, &second);
    Ok(view::text(&frame, &title(url)))
}

/// The live view: a poller thread sends a round every [`REFRESH`]; this thread draws the
/// latest and reads keys in between.
fn live(mut poller: Poller, url: &str) -> anyhow::Result<()> {
    let (tx, rounds) = mpsc::sync_channel::<Vec<Sample>>(1);
    std::thread::Builder::new()
        .name("matchstream-top-poll".into())
        .spawn(move || loop {
            let started = Instant::now();
            if tx.send(poller.round()).is_err() {
                return; // the view has quit
            }
            std::thread::sleep(REFRESH.saturating_sub(started.elapsed()));
        })
        .context("starting the poller")?;
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            // Whatever of raw mode and the alternate screen was set up is undone.
            let _ = ratatui::try_restore();
            return Err(e)
                .context("opening the terminal (not a terminal? --once prints one frame as text)");
        }
    };
    let result = show(&mut terminal, &rounds, &title(url));
    let _ = terminal.show_cursor();
    ratatui::restore();
    result
}

/// Draws every round as it comes and on resizes, until a quitting key.
fn show(
    terminal: &mut ratatui::DefaultTerminal,
    rounds: &Receiver<Vec<Sample>>,
    title: &str,
) -> anyhow::Result<()> {
    let mut previous: Vec<Sample> = Vec::new();
    let mut frame = Frame::default();
    let mut waiting = true;
    loop {
        let live_title = if waiting {
            format!("{title} · connecting")
        } else {
            format!("{title} · every {} s · q quits", REFRESH.as_secs())
        };
        terminal.draw(|f| view::draw(f, &frame, &live_title))?;
        // Keys first, for at most a tenth of a second; then whatever round came.
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(key) if quits(&key) => return Ok(()),
                _ => continue,
            }
        }
        match rounds.recv_timeout(Duration::ZERO) {
            Ok(round) => {
                frame = Frame::between(&previous, &round);
                previous = round;
                waiting = false;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("the poller stopped"),
        }
    }
}

/// q, Esc and Ctrl-C quit (Ctrl-C is a key in raw mode, not a signal).
fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}
