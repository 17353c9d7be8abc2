//! The embedded backend, the default: a [`Catalog`] made durable in one redb file on local disk.
//!
//! Layout of `<dir>/matchstream.redb`, values encoded with the protocol's lossless codec:
//! - `matches`: match id → encoded [`Match`] (the current state);
//! - `events`: (match id, seq) → encoded [`Event`], so one match's history is one key range;
//! - `visits`: user id → visit count.
//!
//! Group commit: [`Store::execute`] runs a whole batch in the catalog, then writes every change
//! in one write transaction committed with [`Durability::Immediate`] (one fsync), so nothing
//! is acknowledged before it is on disk and a burst of events costs few fsyncs. So the store
//! never loses an acknowledged write, and a match's history never goes back under its
//! incarnation (docs/protocol.md, "Incarnations"), short of the file being replaced by an
//! older copy, which nothing here can tell.
//!
//! What the file holds is decoded with the checks the API applies (the protocol's codec) and
//! checked for consistency (ids, seqs); this node is its only writer, so anything that fails
//! is a corrupted file, which [`EmbeddedStore::open`] refuses naming the file and the match.
//! A match stored before incarnations existed is given one at open, written back at once.
//!
//! Failure policy, enforced in [`EmbeddedStore::execute`]: if a commit fails, the catalog is
//! rolled back, every write of the batch fails with [`StoreError::Unavailable`], and the
//! database is closed; the catalog stays the truth, as it holds exactly what was acknowledged.
//! A failed commit may still have reached the disk (an fsync error says nothing either way), so
//! the keys it touched are remembered. The first batch at least [`REOPEN_INTERVAL`] later
//! reopens the database and rewrites those keys from the catalog in one transaction; until that
//! succeeds writes fail and reads are served from the catalog.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use matchstream_protocol::codec::{decode_event, decode_match, encode_event, encode_match};
use matchstream_protocol::{Event, Match, MatchId};
use redb::{
    Database, DatabaseError, Durability, ReadOnlyTable, ReadableTable, Table, TableDefinition,
};

use super::catalog::{Catalog, Change};
use super::{Op, Outcome, Store, StoreError, Visits};
use crate::bus::MatchRecord;

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

/// What failed commits may have left on disk differently from the catalog.
#[derive(Debug, Default)]
struct Dirty {
    /// Matches whose state or history a failed commit wrote.
    matches: HashSet<MatchId>,
    /// Users whose visit count a failed commit wrote.
    users: HashSet<String>,
}

impl Dirty {
    /// Remembers every key `changes` write.
    fn add(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::PutMatch(state) => self.matches.insert(state.id.clone()),
                Change::AppendEvent(event) => self.matches.insert(event.match_id.clone()),
                Change::RemoveMatch(id) => self.matches.insert(id.clone()),
                Change::AddVisits { user, .. } => self.users.insert(user.clone()),
            };
        }
    }
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
    /// Every match, history and visit count, as last acknowledged.
    catalog: Catalog,
    /// Keys to rewrite from the catalog when the database is reopened.
    dirty: Dirty,
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
        let (db, catalog, upgraded) = guarded(&path, || {
            let db = open_db(&opener)?;
            let (catalog, upgraded) = read_catalog(&db)?;
            if !upgraded.is_empty() {
                write(&db, &upgraded)?;
            }
            Ok((db, catalog, upgraded.len()))
        })
        .map_err(StoreError::Unavailable)?;
        if upgraded > 0 {
            info!(
                target: LOG_TARGET,
                "embedded store {}: {upgraded} matches stored before incarnations were given one",
                path.display()
            );
        }
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
            dirty: Dirty::default(),
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
        self.dirty.add(changes);
        self.db = Db::Down {
            error: error.clone(),
            retry_at: Instant::now() + REOPEN_INTERVAL,
        };
        Err(error)
    }

    /// Reopens a closed database once its retry time has come, and rewrites what failed
    /// commits touched from the catalog.
    fn reopen_if_due(&mut self) {
        let Db::Down { retry_at, .. } = &self.db else {
            return;
        };
        if Instant::now() < *retry_at {
            return;
        }
        let (dirty, catalog) = (&self.dirty, &self.catalog);
        let reopened = guarded(&self.path, || {
            let db = open_db(&self.opener)?;
            repair(&db, dirty, catalog)?;
            Ok(db)
        });
        match reopened {
            Ok(db) => {
                info!(
                    target: LOG_TARGET,
                    "embedded store {} reopened: {} matches and {} users rewritten",
                    self.path.display(),
                    self.dirty.matches.len(),
                    self.dirty.users.len()
                );
                self.dirty = Dirty::default();
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
    /// The records read at open, with every acknowledged batch since applied.
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

/// A redb failure, or a corruption found in the data, as text: redb's own error is 160 bytes,
/// too large to return on every path, and is only ever reported.
#[derive(Debug)]
struct Fault(String);

impl<E: Into<redb::Error>> From<E> for Fault {
    fn from(e: E) -> Fault {
        Fault(e.into().to_string())
    }
}

impl Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `f` (which opens the database at `path`), turning its error into text naming the
/// path. A corrupted file can make redb panic rather than fail; that too becomes an error.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, Fault>) -> Result<T, String> {
    let named = |e: &dyn Display| format!("embedded store {}: {e}", path.display());
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(named(&e)),
        Err(_) => Err(named(
            &"corrupted file (the storage engine panicked reading it)",
        )),
    }
}

/// Opens the database file and makes sure its tables exist.
fn open_db(opener: &Opener) -> Result<Database, Fault> {
    let db = opener()?;
    create_tables(&db)?;
    Ok(db)
}

/// Creates the tables of a new database (a no-op on an existing one).
fn create_tables(db: &Database) -> Result<(), Fault> {
    let txn = db.begin_write()?;
    txn.open_table(MATCHES)?;
    txn.open_table(EVENTS)?;
    txn.open_table(VISITS)?;
    txn.commit()?;
    Ok(())
}

/// Reads every match with its history, and every visit count; gives a match stored before
/// incarnations existed a new one, returned as the change to write back.
fn read_catalog(db: &Database) -> Result<(Catalog, Vec<Change>), Fault> {
    let txn = db.begin_read()?;
    let matches = txn.open_table(MATCHES)?;
    let events = txn.open_table(EVENTS)?;
    let mut records = Vec::new();
    let mut upgraded = Vec::new();
    for entry in matches.iter()? {
        let (key, value) = entry?;
        let mut state = decode_match(value.value())
            .map_err(|e| corrupted(key.value(), format!("undecodable state: {e}")))?;
        if !state.incarnation.is_set() {
            state.incarnation = crate::incarnation::draw();
            upgraded.push(Change::PutMatch(Arc::new(state.clone())));
        }
        if state.id.as_str() != key.value() {
            let found = format!("holds the state of {}", state.id);
            return Err(corrupted(key.value(), found));
        }
        let history = read_history(&events, &state)?;
        records.push(MatchRecord {
            state: Arc::new(state),
            history,
        });
    }
    let visits = read_visits(&txn.open_table(VISITS)?)?;
    Ok((Catalog::new(records, visits), upgraded))
}

/// Reads events 1..=last_seq of `state`'s match, checking none is missing or misplaced.
fn read_history(
    events: &ReadOnlyTable<(&str, u64), &[u8]>,
    state: &Match,
) -> Result<Vec<Arc<Event>>, Fault> {
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
fn read_visits(table: &ReadOnlyTable<&str, u64>) -> Result<Visits, Fault> {
    let mut visits = Visits::new();
    for entry in table.iter()? {
        let (user, count) = entry?;
        visits.insert(user.value().to_owned(), count.value());
    }
    Ok(visits)
}

/// A corruption found in match `id`'s data.
fn corrupted(id: &str, what: String) -> Fault {
    Fault(format!("corrupted data: match {id}: {what}"))
}

/// Writes `changes` in one write transaction and commits it with an fsync. Only the last state
/// of a match in the batch is written: a batch of a thousand events writes one state.
fn write(db: &Database, changes: &[Change]) -> Result<(), Fault> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut matches = txn.open_table(MATCHES)?;
        let mut events = txn.open_table(EVENTS)?;
        let mut visits = txn.open_table(VISITS)?;
        let final_puts = final_puts(changes);
        for (i, change) in changes.iter().enumerate() {
            match change {
                Change::PutMatch(state) => {
                    if final_puts.get(state.id.as_str()) == Some(&i) {
                        matches.insert(state.id.as_str(), encode_match(state).as_slice())?;
                    }
                }
                Change::AppendEvent(event) => {
                    let key = (event.match_id.as_str(), event.seq);
                    events.insert(key, encode_event(event).as_slice())?;
                }
                Change::RemoveMatch(id) => remove_match(&mut matches, &mut events, id.as_str())?,
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

/// Rewrites the `dirty` keys from `catalog` in one transaction, whatever failed commits left.
fn repair(db: &Database, dirty: &Dirty, catalog: &Catalog) -> Result<(), Fault> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut matches = txn.open_table(MATCHES)?;
        let mut events = txn.open_table(EVENTS)?;
        let mut visits = txn.open_table(VISITS)?;
        for id in &dirty.matches {
            remove_match(&mut matches, &mut events, id.as_str())?;
            let Some(record) = catalog.get(id) else {
                continue;
            };
            matches.insert(id.as_str(), encode_match(&record.state).as_slice())?;
            for event in &record.history {
                events.insert((id.as_str(), event.seq), encode_event(event).as_slice())?;
            }
        }
        for user in &dirty.users {
            match catalog.visits().get(user) {
                Some(count) => visits.insert(user.as_str(), *count)?,
                None => visits.remove(user.as_str())?,
            };
        }
    }
    txn.commit()?;
    Ok(())
}

/// Deletes match `id`'s state and its whole history.
fn remove_match(
    matches: &mut Table<&str, &[u8]>,
    events: &mut Table<(&str, u64), &[u8]>,
    id: &str,
) -> Result<(), Fault> {
    matches.remove(id)?;
    events.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    Ok(())
}

/// The index of each match's last `PutMatch` in `changes`.
fn final_puts(changes: &[Change]) -> HashMap<&str, usize> {
    changes
        .iter()
        .enumerate()
        .filter_map(|(i, change)| match change {
            Change::PutMatch(state) => Some((state.id.as_str(), i)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use matchstream_protocol::{
        Card, Date, EventData, EventKind, Incarnation, MatchId, NewMatch, Player, PlayerRef,
        PostedEvent, TeamCode,
    };
    use redb::backends::FileBackend;
    use redb::StorageBackend;

    use super::*;

    const T0: u64 = 1_315_921_728_000;

    /// A file backend that counts fsyncs and fails them on demand.
    #[derive(Debug)]
    struct Faulty {
        file: FileBackend,
        fail: Arc<AtomicBool>,
        syncs: Arc<AtomicUsize>,
    }

    impl StorageBackend for Faulty {
        fn len(&self) -> Result<u64, io::Error> {
            self.file.len()
        }

        fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
            self.file.read(offset, len)
        }

        fn set_len(&self, len: u64) -> Result<(), io::Error> {
            self.file.set_len(len)
        }

        fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected fsync failure"));
            }
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.file.sync_data(eventual)
        }

        fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
            self.file.write(offset, data)
        }
    }

    /// Switches for a store opened on a [`Faulty`] backend.
    #[derive(Default)]
    struct Faults {
        fail: Arc<AtomicBool>,
        syncs: Arc<AtomicUsize>,
    }

    impl Faults {
        fn open(&self, dir: &Path) -> EmbeddedStore {
            let path = dir.join(FILE_NAME);
            let (fail, syncs) = (Arc::clone(&self.fail), Arc::clone(&self.syncs));
            let opener: Opener = Box::new(move || {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(redb::StorageError::from)?;
                let backend = Faulty {
                    file: FileBackend::new(file)?,
                    fail: Arc::clone(&fail),
                    syncs: Arc::clone(&syncs),
                };
                Database::builder().create_with_backend(backend)
            });
            EmbeddedStore::open_with(dir, opener).expect("open faulty store")
        }

        fn syncs(&self) -> usize {
            self.syncs.load(Ordering::SeqCst)
        }
    }

    fn team(s: &str) -> TeamCode {
        TeamCode::parse(s).expect("team")
    }

    fn player(number: u8, name: &str) -> Player {
        Player::new(number, name).expect("player")
    }

    fn id(home: &str, visit: &str) -> MatchId {
        MatchId::parse(&format!("{home}-{visit}-2011-09-10")).expect("id")
    }

    fn create(home: &str, visit: &str) -> Op {
        Op::Create {
            new: NewMatch {
                home: team(home),
                visit: team(visit),
                start_date: Date::parse("2011-09-10").expect("date"),
                stadium: Some("Estadio \"Azul\"".to_owned()),
                home_players: vec![player(7, "Luna"), player(10, "Río")],
                visit_players: vec![player(9, "Sol")],
            },
            now_ms: T0,
            incarnation: crate::incarnation::draw(),
        }
    }

    fn post(id: &MatchId, event: PostedEvent) -> Op {
        Op::Apply {
            id: id.clone(),
            event,
            now_ms: T0 + 1000,
        }
    }

    fn kind(id: &MatchId, kind: EventKind) -> Op {
        post(id, PostedEvent::new(kind))
    }

    fn goal(id: &MatchId, by: &str, number: u8) -> Op {
        let mut event = PostedEvent::new(EventKind::Goal);
        event.team = Some(team(by));
        event.player = Some(PlayerRef::Number(number));
        post(id, event)
    }

    fn comment(id: &MatchId, text: &str) -> Op {
        let mut event = PostedEvent::new(EventKind::Comment);
        event.comment = Some(text.to_owned());
        post(id, event)
    }

    fn visit(user: &str, count: u64) -> Op {
        Op::Visit {
            user: user.to_owned(),
            count,
        }
    }

    fn get_visits(user: &str) -> Op {
        Op::GetVisits {
            user: user.to_owned(),
        }
    }

    /// Runs `ops` and checks every one succeeded.
    fn run_ok(store: &mut EmbeddedStore, ops: Vec<Op>) -> Vec<Outcome> {
        store
            .execute(ops)
            .into_iter()
            .map(|r| r.expect("op succeeds"))
            .collect()
    }

    /// Every record by value.
    fn contents(store: &mut EmbeddedStore) -> Vec<(Match, Vec<Event>)> {
        let records = store.load().expect("load");
        records
            .into_iter()
            .map(|r| {
                let history = r.history.iter().map(|e| Event::clone(e)).collect();
                (Match::clone(&r.state), history)
            })
            .collect()
    }

    fn visits_of(store: &mut EmbeddedStore, user: &str) -> u64 {
        match store.execute(vec![get_visits(user)]).pop() {
            Some(Ok(Outcome::Visits(n))) => n,
            other => panic!("expected Visits, got {other:?}"),
        }
    }

    fn error_text(result: Result<EmbeddedStore, StoreError>) -> String {
        match result {
            Err(StoreError::Unavailable(text)) => text,
            Err(other) => panic!("expected Unavailable, got {other:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    /// A full match: rosters, goals, an own goal, a card, a substitution, comments.
    fn play(store: &mut EmbeddedStore, m: &MatchId) {
        let mut red = PostedEvent::new(EventKind::Card);
        red.team = Some(team("tig"));
        red.player = Some(PlayerRef::Number(9));
        red.card = Some(Card::Red);
        let mut sub = PostedEvent::new(EventKind::Substitution);
        sub.team = Some(team("elp"));
        sub.player_out = Some(PlayerRef::Number(10));
        sub.player_in = Some(PlayerRef::Full(player(11, "Nube")));
        let mut own = PostedEvent::new(EventKind::Goal);
        own.team = Some(team("tig"));
        own.player_team = Some(team("elp"));
        own.player = Some(PlayerRef::Number(7));
        run_ok(
            store,
            vec![
                kind(m, EventKind::Start),
                goal(m, "elp", 7),
                comment(m, "¡qué golazo! \"Luna\" \\o/"),
                post(m, red),
                kind(m, EventKind::HalftimeStart),
                kind(m, EventKind::HalftimeStop),
                post(m, sub),
                post(m, own),
            ],
        );
    }

    #[test]
    fn open_creates_the_directory_and_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a").join("b");
        let mut store = EmbeddedStore::open(&dir).expect("open");
        assert!(dir.join(FILE_NAME).is_file());
        assert!(store.load().expect("load").is_empty());
        assert_eq!(store.describe(), format!("embedded:{}", dir.display()));
    }

    #[test]
    fn what_was_stored_is_loaded_again_after_reopening() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (m, other) = (id("elp", "tig"), id("abc", "zed"));
        let mut store = EmbeddedStore::open(tmp.path()).expect("open");
        run_ok(&mut store, vec![create("elp", "tig"), create("abc", "zed")]);
        play(&mut store, &m);
        run_ok(&mut store, vec![comment(&other, "later"), visit("ana", 2)]);
        run_ok(&mut store, vec![visit("ana", 3), visit("bob", 1)]);
        let before = contents(&mut store);
        assert_eq!(before[1].0.last_seq, 8);
        drop(store);

        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(contents(&mut store), before);
        assert_eq!(visits_of(&mut store, "ana"), 5);
        assert_eq!(visits_of(&mut store, "bob"), 1);
        assert_eq!(visits_of(&mut store, "cid"), 0);
        let results = run_ok(&mut store, vec![comment(&m, "after restart")]);
        assert!(matches!(&results[0], Outcome::Applied { event, .. } if event.seq == 9));
    }

    #[test]
    fn a_batch_of_a_thousand_events_is_one_commit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let m = id("elp", "tig");
        let start = faults.syncs();
        run_ok(&mut store, vec![create("elp", "tig")]);
        let one_commit = faults.syncs() - start;
        assert!(one_commit > 0);

        let start = faults.syncs();
        let ops = (0..1000)
            .map(|i| comment(&m, &format!("minute {i}")))
            .collect();
        let results = run_ok(&mut store, ops);
        assert_eq!(faults.syncs() - start, one_commit);
        assert!(matches!(&results[999], Outcome::Applied { state, .. } if state.last_seq == 1000));
        let before = contents(&mut store);
        drop(store);
        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(contents(&mut store), before);
    }

    #[test]
    fn cancel_removes_the_history_on_disk() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (m, other) = (id("elp", "tig"), id("elp", "tigre"));
        let mut store = EmbeddedStore::open(tmp.path()).expect("open");
        run_ok(
            &mut store,
            vec![create("elp", "tig"), create("elp", "tigre")],
        );
        play(&mut store, &m);
        run_ok(&mut store, vec![comment(&other, "stays")]);
        run_ok(&mut store, vec![Op::Cancel { id: m.clone() }]);
        drop(store);

        let db = Database::create(tmp.path().join(FILE_NAME)).expect("raw open");
        let txn = db.begin_read().expect("read");
        let events = txn.open_table(EVENTS).expect("events");
        let left: Vec<(String, u64)> = events
            .iter()
            .expect("iter")
            .map(|e| {
                let (key, _) = e.expect("entry");
                (key.value().0.to_owned(), key.value().1)
            })
            .collect();
        assert_eq!(left, [(other.to_string(), 1)]);
        let matches = txn.open_table(MATCHES).expect("matches");
        assert!(matches.get(m.as_str()).expect("get").is_none());
        drop((events, matches, txn, db));

        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        let records = contents(&mut store);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0.id, other);
    }

    #[test]
    fn create_cancel_create_in_one_batch_keeps_the_last_match() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let m = id("elp", "tig");
        let mut store = EmbeddedStore::open(tmp.path()).expect("open");
        run_ok(&mut store, vec![create("elp", "tig")]);
        play(&mut store, &m);
        run_ok(
            &mut store,
            vec![
                Op::Cancel { id: m.clone() },
                create("elp", "tig"),
                comment(&m, "again"),
                Op::Cancel { id: m.clone() },
                create("elp", "tig"),
                kind(&m, EventKind::Start),
            ],
        );
        let before = contents(&mut store);
        assert_eq!(before[0].1.len(), 1);
        drop(store);
        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(contents(&mut store), before);
    }

    #[test]
    fn a_failed_commit_refuses_the_batch_and_keeps_the_store_as_before() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let m = id("elp", "tig");
        run_ok(&mut store, vec![create("elp", "tig"), visit("ana", 1)]);
        let before = contents(&mut store);

        faults.fail.store(true, Ordering::SeqCst);
        let results = store.execute(vec![
            kind(&m, EventKind::Start),
            visit("ana", 5),
            get_visits("ana"),
            create("abc", "zed"),
            comment(&id("no", "match"), "refused too"),
        ]);
        for (i, result) in results.iter().enumerate() {
            match (i, result) {
                (2, Ok(Outcome::Visits(_))) => {}
                (_, Err(StoreError::Unavailable(text))) => {
                    assert!(text.contains("commit failed"), "{text}");
                    assert!(text.contains(&tmp.path().display().to_string()), "{text}");
                }
                other => panic!("unexpected result {other:?}"),
            }
        }
        assert_eq!(contents(&mut store), before);
        assert_eq!(visits_of(&mut store, "ana"), 1);

        // Closed until the retry time, even once the disk is healthy again.
        faults.fail.store(false, Ordering::SeqCst);
        let results = store.execute(vec![kind(&m, EventKind::Start)]);
        assert!(matches!(results[0], Err(StoreError::Unavailable(_))));

        // Reopened at the retry time: the same seq is given again.
        if let Db::Down { retry_at, .. } = &mut store.db {
            *retry_at = Instant::now();
        }
        let results = run_ok(&mut store, vec![kind(&m, EventKind::Start)]);
        assert!(matches!(&results[0], Outcome::Applied { event, .. } if event.seq == 1));
        let after = contents(&mut store);
        drop(store);
        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(contents(&mut store), after);
        assert_eq!(visits_of(&mut store, "ana"), 1);
    }

    /// REOPEN_INTERVAL is how long writes keep failing after a failed commit *or reopen*, even
    /// once the disk is healthy: a disk that fails is not tried again at every batch.
    #[test]
    fn a_failed_reopen_waits_its_interval_before_the_next() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let m = id("elp", "tig");
        run_ok(&mut store, vec![create("elp", "tig")]);
        faults.fail.store(true, Ordering::SeqCst);
        let results = store.execute(vec![kind(&m, EventKind::Start)]);
        assert!(matches!(results[0], Err(StoreError::Unavailable(_))));
        // Healthy again at once: still closed until its retry time.
        faults.fail.store(false, Ordering::SeqCst);
        let results = store.execute(vec![kind(&m, EventKind::Start)]);
        assert!(matches!(results[0], Err(StoreError::Unavailable(_))));
        faults.fail.store(true, Ordering::SeqCst);
        let due = |store: &mut EmbeddedStore| {
            if let Db::Down { retry_at, .. } = &mut store.db {
                *retry_at = Instant::now();
            }
        };
        // The retry time comes while the disk still fails: the reopen fails too.
        due(&mut store);
        let results = store.execute(vec![kind(&m, EventKind::Start)]);
        assert!(matches!(results[0], Err(StoreError::Unavailable(_))));
        assert!(
            matches!(&store.db, Db::Down { retry_at, .. } if *retry_at > Instant::now() + REOPEN_INTERVAL / 2),
            "the next reopen waits its interval again"
        );
        // Healthy again at once, but still within the interval: refused, not reopened.
        faults.fail.store(false, Ordering::SeqCst);
        let results = store.execute(vec![kind(&m, EventKind::Start)]);
        assert!(matches!(results[0], Err(StoreError::Unavailable(_))));
        // At the retry time: open, and the same seq is given.
        due(&mut store);
        let results = run_ok(&mut store, vec![kind(&m, EventKind::Start)]);
        assert!(matches!(&results[0], Outcome::Applied { event, .. } if event.seq == 1));
    }

    #[test]
    fn reopening_rewrites_what_a_failed_commit_touched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let m = id("elp", "tig");
        run_ok(&mut store, vec![create("elp", "tig"), visit("ana", 1)]);
        play(&mut store, &m);
        let before = contents(&mut store);
        faults.fail.store(true, Ordering::SeqCst);
        let results = store.execute(vec![
            comment(&m, "lost"),
            visit("ana", 5),
            create("abc", "zed"),
        ]);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable(_)))));
        faults.fail.store(false, Ordering::SeqCst);

        // Whatever reached the disk, make it worse: the database is closed, the file free.
        let ghost = id("abc", "zed");
        write_raw(tmp.path(), &[(ghost.as_str(), b"junk".to_vec())], &[]);
        let db = Database::create(tmp.path().join(FILE_NAME)).expect("raw open");
        let txn = db.begin_write().expect("write");
        txn.open_table(EVENTS)
            .expect("events")
            .remove((m.as_str(), 1))
            .expect("remove");
        txn.open_table(VISITS)
            .expect("visits")
            .insert("ana", 99)
            .expect("insert");
        txn.commit().expect("commit");
        drop(db);

        if let Db::Down { retry_at, .. } = &mut store.db {
            *retry_at = Instant::now();
        }
        assert_eq!(visits_of(&mut store, "ana"), 1);
        assert!(matches!(store.db, Db::Open(_)));
        drop(store);
        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(contents(&mut store), before);
        assert_eq!(visits_of(&mut store, "ana"), 1);
    }

    /// A node that stops (or crashes) while its database is closed after a failed commit,
    /// before any repair: the next start must open the file, find it consistent, and hold
    /// everything that was acknowledged; the refused batch is there whole or not at all (an
    /// fsync error says nothing of what reached the disk).
    #[test]
    fn a_restart_after_a_failed_commit_finds_every_acknowledged_write() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let m = id("elp", "tig");
        run_ok(&mut store, vec![create("elp", "tig"), visit("ana", 1)]);
        play(&mut store, &m);
        let before = contents(&mut store);
        faults.fail.store(true, Ordering::SeqCst);
        let refused = store.execute(vec![comment(&m, "refused"), create("abc", "zed")]);
        assert!(refused
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable(_)))));
        faults.fail.store(false, Ordering::SeqCst);
        drop(store);

        let mut store = EmbeddedStore::open(tmp.path()).expect("a restart opens the file");
        let after = contents(&mut store);
        let whole_batch = after.len() == before.len() + 1
            && after
                .iter()
                .any(|(state, _)| state.id.as_str() == "abc-zed-2011-09-10");
        if whole_batch {
            let (state, history) = after
                .iter()
                .find(|(state, _)| state.id == m)
                .expect("the match");
            let (_, had) = before.iter().find(|(s, _)| s.id == m).expect("before");
            assert_eq!(&history[..had.len()], &had[..], "the acknowledged history");
            assert_eq!(history.len(), had.len() + 1);
            assert_eq!(state.last_seq, history.len() as u64);
        } else {
            assert_eq!(
                after, before,
                "nothing of the refused batch, all of the rest"
            );
        }
        assert_eq!(visits_of(&mut store, "ana"), 1);
        // And it takes writes again, from the seq it found.
        let next = before
            .iter()
            .find(|(s, _)| s.id == m)
            .map(|(s, _)| s.last_seq)
            .expect("state")
            + u64::from(whole_batch)
            + 1;
        let results = run_ok(&mut store, vec![comment(&m, "after the restart")]);
        assert!(
            matches!(&results[0], Outcome::Applied { event, .. } if event.seq == next),
            "{results:?}"
        );
    }

    #[test]
    fn reads_and_refused_ops_need_no_commit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let faults = Faults::default();
        let mut store = faults.open(tmp.path());
        let start = faults.syncs();
        let results = store.execute(vec![get_visits("ana"), Op::Cancel { id: id("a", "b") }]);
        assert!(matches!(results[0], Ok(Outcome::Visits(0))));
        assert_eq!(
            results[1].as_ref().err(),
            Some(&StoreError::NotFound(id("a", "b")))
        );
        assert_eq!(faults.syncs(), start);
    }

    #[test]
    fn a_corrupted_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(FILE_NAME);
        fs::write(&path, vec![b'x'; 8192]).expect("write garbage");
        let text = error_text(EmbeddedStore::open(tmp.path()));
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn an_unusable_path_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"not a directory").expect("write");
        let text = error_text(EmbeddedStore::open(&file));
        assert!(text.contains(&file.display().to_string()), "{text}");

        fs::create_dir(tmp.path().join("d")).expect("mkdir");
        fs::create_dir(tmp.path().join("d").join(FILE_NAME)).expect("mkdir");
        let text = error_text(EmbeddedStore::open(&tmp.path().join("d")));
        assert!(text.contains(FILE_NAME), "{text}");
    }

    #[test]
    fn a_store_already_open_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let _first = EmbeddedStore::open(tmp.path()).expect("open");
        let text = error_text(EmbeddedStore::open(tmp.path()));
        assert!(text.contains(FILE_NAME), "{text}");
    }

    /// Raw event rows: match id, seq, bytes.
    type RawEvents<'a> = Vec<(&'a str, u64, Vec<u8>)>;

    /// Writes raw rows into the database file in `dir`.
    fn write_raw(dir: &Path, matches: &[(&str, Vec<u8>)], events: &[(&str, u64, Vec<u8>)]) {
        let db = Database::create(dir.join(FILE_NAME)).expect("raw create");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(MATCHES).expect("matches");
            for (id, bytes) in matches {
                table.insert(*id, bytes.as_slice()).expect("insert");
            }
            let mut table = txn.open_table(EVENTS).expect("events");
            for (id, seq, bytes) in events {
                table.insert((*id, *seq), bytes.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    /// Match elp-tig, without rosters, created at `created_ms`, of a known incarnation.
    fn bare_match(created_ms: u64) -> Match {
        Match::create(
            NewMatch {
                home: team("elp"),
                visit: team("tig"),
                start_date: Date::parse("2011-09-10").expect("date"),
                stadium: None,
                home_players: Vec::new(),
                visit_players: Vec::new(),
            },
            created_ms,
            Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero"),
        )
    }

    #[test]
    fn a_match_stored_before_incarnations_gets_one_at_open_and_keeps_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let m = id("elp", "tig");
        let mut old = bare_match(T0);
        old.incarnation = Incarnation::UNSET;
        old.last_seq = 1;
        old.updated_ms = T0 + 1;
        let start = Event {
            match_id: m.clone(),
            seq: 1,
            timestamp_ms: T0 + 1,
            kind: EventKind::Start,
            data: EventData::default(),
        };
        // What an older version wrote: a state without an incarnation.
        let bytes = encode_match(&old);
        assert!(!String::from_utf8_lossy(&bytes).contains("incarnation"));
        write_raw(
            tmp.path(),
            &[(m.as_str(), bytes)],
            &[(m.as_str(), 1, encode_event(&start))],
        );

        let mut store = EmbeddedStore::open(tmp.path()).expect("an old file opens");
        let loaded = contents(&mut store);
        let given = loaded[0].0.incarnation;
        assert!(given.is_set());
        assert_eq!(loaded[0].1, [start]);
        drop(store);
        let mut store = EmbeddedStore::open(tmp.path()).expect("reopen");
        assert_eq!(
            contents(&mut store)[0].0.incarnation,
            given,
            "written back at once"
        );
        let results = run_ok(&mut store, vec![comment(&m, "after the upgrade")]);
        assert!(
            matches!(&results[0], Outcome::Applied { state, .. } if state.incarnation == given)
        );
    }

    #[test]
    fn undecodable_or_missing_data_is_an_error_naming_file_and_match() {
        let m = id("elp", "tig");
        let mut state = bare_match(T0);
        state.last_seq = 2;
        let event = Event {
            match_id: m.clone(),
            seq: 1,
            timestamp_ms: T0,
            kind: EventKind::Start,
            data: Default::default(),
        };
        // A state of one event, its event a comment carrying a frame of its own.
        let mut one = state.clone();
        one.last_seq = 1;
        let forged = Event {
            kind: EventKind::Comment,
            data: EventData {
                comment: Some("x\r\n\r\n2011-01-01 00:00:00: goal:\n".into()),
                ..EventData::default()
            },
            ..event.clone()
        };
        // Event 2, and event 2 of another match, for the rows that hold the wrong event.
        let second = Event {
            seq: 2,
            kind: EventKind::Comment,
            data: EventData {
                comment: Some("second".into()),
                ..EventData::default()
            },
            ..event.clone()
        };
        let elsewhere = Event {
            match_id: id("abc", "zed"),
            ..second.clone()
        };
        let cases: [(&str, Vec<u8>, RawEvents); 7] = [
            ("garbage state", b"not json".to_vec(), Vec::new()),
            (
                "garbage event",
                encode_match(&state),
                vec![(m.as_str(), 1, b"{".to_vec())],
            ),
            (
                "missing event",
                encode_match(&state),
                vec![(m.as_str(), 1, encode_event(&event))],
            ),
            (
                "a comment forging a frame",
                encode_match(&one),
                vec![(m.as_str(), 1, encode_event(&forged))],
            ),
            (
                "event 2 stored as event 1",
                encode_match(&state),
                vec![
                    (m.as_str(), 1, encode_event(&second)),
                    (m.as_str(), 2, encode_event(&second)),
                ],
            ),
            (
                "event 1 stored as event 2",
                encode_match(&state),
                vec![
                    (m.as_str(), 1, encode_event(&event)),
                    (m.as_str(), 2, encode_event(&event)),
                ],
            ),
            (
                "another match's event in the history",
                encode_match(&state),
                vec![
                    (m.as_str(), 1, encode_event(&event)),
                    (m.as_str(), 2, encode_event(&elsewhere)),
                ],
            ),
        ];
        for (name, state_bytes, events) in cases {
            let tmp = tempfile::tempdir().expect("tempdir");
            write_raw(tmp.path(), &[(m.as_str(), state_bytes)], &events);
            let text = error_text(EmbeddedStore::open(tmp.path()));
            assert!(text.contains(FILE_NAME), "{name}: {text}");
            assert!(text.contains(m.as_str()), "{name}: {text}");
        }
    }
}
