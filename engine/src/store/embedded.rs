//! The embedded backend, the default: a [`Catalog`] made durable in one redb file on local disk.
//!
//! Layout of `<dir>/matchstream.redb`, values encoded with the protocol's lossless codec:
//! - `matches`: match id → encoded [`Match`] (the current state);
//! - `events`: (match id, seq) → encoded [`Event`], so one match's history is one key range;
//! - `visits`: user id → visit count.
//!
//! Group commit: [`Store::execute`] runs a whole batch in the catalog, then writes every change
//! in one write transaction committed with [`Durability::Immediate`] (one fsync), so nothing
//! is acknowledged before it is on disk and a burst of events costs few fsyncs.
//!
//! Failure policy, enforced in [`EmbeddedStore::execute`]: if a commit fails, the catalog is
//! rolled back, every write of the batch fails with [`StoreError::Unavailable`], and the
//! database is closed. The next batch at least [`REOPEN_INTERVAL`] later reopens it and reloads
//! the catalog from disk, which is then the truth; until then writes fail and reads are served
//! from the catalog.

use std::fmt::Display;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use matchstream_protocol::codec::{decode_event, decode_match, encode_event, encode_match};
use matchstream_protocol::{Event, Match};
use redb::{
    Database, DatabaseError, Durability, ReadOnlyTable, ReadableTable, TableDefinition,
};

use super::catalog::{Catalog, Change};
use super::{MatchRecord, Op, Outcome, Store, StoreError, Visits};

/// The log target of the store.
const LOG_TARGET: &str = "matchstream::store";

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "matchstream.redb";

/// How long writes keep failing after a failed commit or reopen before the next reopen.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// Match id → encoded match state.
const MATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("matches");
/// (match id, seq) → encoded event.
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
/// User id → visit count.
const VISITS: TableDefinition<&str, u64> = TableDefinition::new("visits");

/// Opens (or creates) the database file; a seam so tests can inject storage faults.
type Opener = Box<dyn Fn() -> Result<Database, DatabaseError> + Send>;

/// The database, or why it is closed.
enum Db {
    /// Open and healthy.
    Open(Database),
    /// Closed after a failure.
    Down {
        /// The failure, reported in every refused write.
        error: String,
        /// No reopen before this instant.
        retry_at: Instant,
    },
}

/// A durable store in one redb file, with the whole catalog held in memory.
pub struct EmbeddedStore {
    /// The directory given at open.
    dir: PathBuf,
    /// `<dir>/matchstream.redb`.
    path: PathBuf,
    /// Opens the database file (again, after a failure).
    opener: Opener,
    /// The database.
    db: Db,
    /// Every match, history and visit count, as last committed.
    catalog: Catalog,
}

impl EmbeddedStore {
    /// Opens the store in `dir` (creating the directory and the database file if needed) and
    /// reads every match, event and visit count into memory. Errors name the path.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        fs::create_dir_all(dir).map_err(|e| unavailable(dir, e))?;
        let path = dir.join(FILE_NAME);
        let file = path.clone();
        EmbeddedStore::open_with(dir, Box::new(move || Database::create(&file)))
    }

    /// Opens the store in `dir` through `opener`.
    fn open_with(dir: &Path, opener: Opener) -> Result<EmbeddedStore, StoreError> {
        let path = dir.join(FILE_NAME);
        let (db, catalog) = connect(&path, &opener).map_err(StoreError::Unavailable)?;
        info!(
            target: LOG_TARGET,
            "embedded store {} opened: {} matches, {} events, {} users",
            path.display(),
            catalog.match_count(),
            catalog.event_count(),
            catalog.visits().len()
        );
        Ok(EmbeddedStore {
            dir: dir.to_path_buf(),
            path,
            opener,
            db: Db::Open(db),
            catalog,
        })
    }

    /// Writes `changes` in one transaction; on failure closes the database and says why.
    fn persist(&mut self, changes: &[Change]) -> Result<(), String> {
        let db = match &self.db {
            Db::Open(db) => db,
            Db::Down { error, .. } => return Err(error.clone()),
        };
        let Err(e) = write(db, changes) else {
            return Ok(());
        };
        let error = format!("embedded store {}: commit failed: {e}", self.path.display());
        warn!(
            target: LOG_TARGET,
            "{error}; {} changes refused, closing the database to reopen it",
            changes.len()
        );
        self.db = Db::Down {
            error: error.clone(),
            retry_at: Instant::now() + REOPEN_INTERVAL,
        };
        Err(error)
    }

    /// Reopens a closed database once its retry time has come, reloading the catalog.
    fn reopen_if_due(&mut self) {
        let Db::Down { retry_at, .. } = &self.db else {
            return;
        };
        if Instant::now() < *retry_at {
            return;
        }
        match connect(&self.path, &self.opener) {
            Ok((db, catalog)) => {
                info!(
                    target: LOG_TARGET,
                    "embedded store {} reopened: {} matches, {} events",
                    self.path.display(),
                    catalog.match_count(),
                    catalog.event_count()
                );
                self.catalog = catalog;
                self.db = Db::Open(db);
            }
            Err(error) => {
                debug!(target: LOG_TARGET, "reopen failed: {error}");
                self.db = Db::Down {
                    error,
                    retry_at: Instant::now() + REOPEN_INTERVAL,
                };
            }
        }
    }
}

impl Store for EmbeddedStore {
    /// The records read at open (or at the last reopen), with every batch since applied.
    fn load(&mut self) -> Result<Vec<MatchRecord>, StoreError> {
        Ok(self.catalog.records())
    }

    fn execute(&mut self, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
        self.reopen_if_due();
        let (mut results, changes) = self.catalog.execute(ops);
        if changes.is_empty() {
            return results;
        }
        if let Err(error) = self.persist(&changes) {
            self.catalog.rollback();
            refuse_writes(&mut results, &error);
        }
        results
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.dir.display())
    }
}

/// A [`StoreError::Unavailable`] naming `path`.
fn unavailable(path: &Path, error: impl Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store {}: {error}", path.display()))
}

/// Turns the result of every write op into `Unavailable` (a `GetVisits` keeps its answer).
fn refuse_writes(results: &mut [Result<Outcome, StoreError>], error: &str) {
    for result in results.iter_mut() {
        if !matches!(result, Ok(Outcome::Visits(_))) {
            *result = Err(StoreError::Unavailable(error.to_owned()));
        }
    }
}

/// Opens the database, makes sure the tables exist and reads the catalog. A corrupted file
/// can make redb panic rather than fail; that too becomes an error naming the path.
fn connect(path: &Path, opener: &Opener) -> Result<(Database, Catalog), String> {
    let attempt = panic::catch_unwind(AssertUnwindSafe(|| -> Result<_, redb::Error> {
        let db = opener()?;
        create_tables(&db)?;
        let catalog = read_catalog(&db)?;
        Ok((db, catalog))
    }));
    let named = |e: &dyn Display| format!("embedded store {}: {e}", path.display());
    match attempt {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(named(&e)),
        Err(_) => Err(named(&"corrupted file (the storage engine panicked reading it)")),
    }
}

/// Creates the tables of a new database (a no-op on an existing one).
fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(MATCHES)?;
    txn.open_table(EVENTS)?;
    txn.open_table(VISITS)?;
    txn.commit()?;
    Ok(())
}

/// Reads every match with its history, and every visit count.
fn read_catalog(db: &Database) -> Result<Catalog, redb::Error> {
    let txn = db.begin_read()?;
    let matches = txn.open_table(MATCHES)?;
    let events = txn.open_table(EVENTS)?;
    let mut records = Vec::new();
    for entry in matches.iter()? {
        let (key, value) = entry?;
        let state = decode_match(value.value())
            .map_err(|e| corrupted(key.value(), format!("undecodable state: {e}")))?;
        if state.id.as_str() != key.value() {
            return Err(corrupted(key.value(), format!("state of {}", state.id)));
        }
        let history = read_history(&events, &state)?;
        records.push(MatchRecord {
            state: Arc::new(state),
            history,
        });
    }
    let visits = read_visits(&txn.open_table(VISITS)?)?;
    Ok(Catalog::new(records, visits))
}

/// Reads events 1..=last_seq of `state`'s match, checking none is missing or misplaced.
fn read_history(
    events: &ReadOnlyTable<(&str, u64), &[u8]>,
    state: &Match,
) -> Result<Vec<Arc<Event>>, redb::Error> {
    let id = state.id.as_str();
    let mut history = Vec::new();
    if state.last_seq == 0 {
        return Ok(history);
    }
    for entry in events.range((id, 1)..=(id, state.last_seq))? {
        let (key, value) = entry?;
        let expected = history.len() as u64 + 1;
        let seq = key.value().1;
        let event = decode_event(value.value())
            .map_err(|e| corrupted(id, format!("undecodable event {seq}: {e}")))?;
        if seq != expected || event.seq != seq || event.match_id != state.id {
            return Err(corrupted(id, format!("event {expected} missing")));
        }
        history.push(Arc::new(event));
    }
    if history.len() as u64 != state.last_seq {
        let found = history.len();
        let wanted = state.last_seq;
        return Err(corrupted(id, format!("{found} of {wanted} events found")));
    }
    Ok(history)
}

/// Reads every visit count.
fn read_visits(table: &ReadOnlyTable<&str, u64>) -> Result<Visits, redb::Error> {
    let mut visits = Visits::new();
    for entry in table.iter()? {
        let (user, count) = entry?;
        visits.insert(user.value().to_owned(), count.value());
    }
    Ok(visits)
}

/// A corruption found in match `id`'s data.
fn corrupted(id: &str, what: String) -> redb::Error {
    redb::Error::Corrupted(format!("match {id}: {what}"))
}

/// Writes `changes` in one write transaction and commits it with an fsync. Only the last state
/// of a match in the batch is written: a batch of a thousand events writes one state.
fn write(db: &Database, changes: &[Change]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut matches = txn.open_table(MATCHES)?;
        let mut events = txn.open_table(EVENTS)?;
        let mut visits = txn.open_table(VISITS)?;
        let last_puts = last_puts(changes);
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::PutMatch(state) => {
                    if last_puts.get(state.id.as_str()) == Some(&i) {
                        matches.insert(state.id.as_str(), encode_match(state).as_slice())?;
                    }
                }
                Change::AppendEvent(event) => {
                    let key = (event.match_id.as_str(), event.seq);
                    events.insert(key, encode_event(event).as_slice())?;
                }
                Change::RemoveMatch(id) => {
                    let id = id.as_str();
                    matches.remove(id)?;
                    events.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
                }
                Change::AddVisits { user, count } => {
                    let before = visits.get(user.as_str())?.map_or(0, |n| n.value());
                    visits.insert(user.as_str(), before.saturating_add(*count))?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// The index of each match's last `PutMatch` in `changes`.
fn last_puts(changes: &[Change]) -> std::collections::HashMap<&str, usize> {
    changes
        .iter()
        .enumerate()
        .filter_map(|(i, change)| match change {
            Change::PutMatch(state) => Some((state.id.as_str(), i)),
            _ => None,
        })
        .collect()
}
