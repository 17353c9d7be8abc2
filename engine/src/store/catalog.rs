//! The in-memory write model both backends share: every match with its history, the visit
//! counts, and the rules that turn a batch of [`Op`]s into results and persistent [`Change`]s.
//!
//! A backend runs [`Catalog::execute`] on a batch, writes the returned changes in one commit
//! and, if that commit fails, calls [`Catalog::rollback`] so the catalog is again exactly what
//! was last made durable. The undo journal records one inverse step per change (an `Arc`, a
//! string, a moved record), so a rollback costs what the batch touched, not the catalog's size.

use std::collections::HashMap;
use std::sync::Arc;

use matchstream_protocol::state::{apply, validate};
use matchstream_protocol::{Event, Incarnation, Match, MatchId, NewMatch, PostedEvent};

use super::{Op, Outcome, StoreError, Visits};
use crate::bus::MatchRecord;

/// Most users whose visits are counted (docs/api.md): the visit map lives in memory (and, in
/// the embedded store, on disk), and user ids come from anonymous stream clients, so it is
/// bounded. Past it, known users' counts go on and new users' visits are not counted. At up
/// to 64 bytes per id, the map stays within a few tens of MiB.
pub const MAX_VISIT_USERS: usize = 200_000;

/// One persistent change a batch made, in the order it was made: what a backend must write.
#[derive(Debug, Clone)]
pub enum Change {
    /// Store this state for its match (a create, or the state after an event).
    PutMatch(Arc<Match>),
    /// Append this event to its match's history.
    AppendEvent(Arc<Event>),
    /// Remove the match and its whole history (a cancel).
    RemoveMatch(MatchId),
    /// Add `count` to `user`'s visit count.
    AddVisits {
        /// The user id.
        user: String,
        /// How many visits to add.
        count: u64,
    },
}

/// The inverse of one change, kept until the next batch in case its commit fails.
#[derive(Debug)]
enum Inverse {
    /// Undo a create: remove the match.
    Uncreate(MatchId),
    /// Undo an event: drop the last history entry and restore the state before it.
    Unapply {
        /// The match.
        id: MatchId,
        /// Its state before the event.
        before: Arc<Match>,
    },
    /// Undo a cancel: put the removed record back.
    Uncancel(MatchRecord),
    /// Undo visits: restore the previous count (`None`: the user was unknown).
    Unvisit {
        /// The user id.
        user: String,
        /// The count before the batch's visit.
        before: Option<u64>,
    },
}

/// Every match with its history, and every user's visit count, as of the last batch.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Matches by id.
    matches: HashMap<MatchId, MatchRecord>,
    /// Visit counts by user id.
    visits: Visits,
    /// Inverses of the last batch's changes, in the order they were made.
    journal: Vec<Inverse>,
}

impl Catalog {
    /// A catalog holding `records` (keyed by their state's id) and `visits`.
    pub fn new(records: Vec<MatchRecord>, visits: Visits) -> Catalog {
        let matches = records
            .into_iter()
            .map(|r| (r.state.id.clone(), r))
            .collect();
        Catalog {
            matches,
            visits,
            journal: Vec::new(),
        }
    }

    /// Every match with its history, sorted by id (cheap: the states and events are shared).
    pub fn records(&self) -> Vec<MatchRecord> {
        let mut records: Vec<MatchRecord> = self.matches.values().cloned().collect();
        records.sort_by(|a, b| a.state.id.cmp(&b.state.id));
        records
    }

    /// The match `id` with its history, if it exists.
    pub fn get(&self, id: &MatchId) -> Option<&MatchRecord> {
        self.matches.get(id)
    }

    /// Every user's visit count.
    pub fn visits(&self) -> &Visits {
        &self.visits
    }

    /// How many matches there are.
    pub fn match_count(&self) -> usize {
        self.matches.len()
    }

    /// How many events all histories hold together.
    pub fn event_count(&self) -> usize {
        self.matches.values().map(|r| r.history.len()).sum()
    }

    /// Carries out `ops` in order, each seeing the effects of the ones before, and returns one
    /// result per op plus the changes to persist, in order. Starts a new undo journal: a
    /// following [`Catalog::rollback`] undoes exactly this batch.
    pub fn execute(&mut self, ops: Vec<Op>) -> (Vec<Result<Outcome, StoreError>>, Vec<Change>) {
        self.journal.clear();
        let mut changes = Vec::new();
        let results = ops
            .into_iter()
            .map(|op| self.run(op, &mut changes))
            .collect();
        (results, changes)
    }

    /// Undoes the last [`Catalog::execute`], so the catalog is as before that batch. Calling it
    /// again, or before any batch, does nothing.
    pub fn rollback(&mut self) {
        while let Some(inverse) = self.journal.pop() {
            self.undo(inverse);
        }
    }

    /// Carries out one op.
    fn run(&mut self, op: Op, changes: &mut Vec<Change>) -> Result<Outcome, StoreError> {
        match op {
            Op::Create {
                new,
                now_ms,
                incarnation,
            } => self.create(new, now_ms, incarnation, changes),
            Op::Apply { id, event, now_ms } => self.apply(&id, &event, now_ms, changes),
            Op::Cancel { id } => self.cancel(id, changes),
            Op::Visit { user, count } => Ok(self.visit(user, count, changes)),
            Op::GetVisits { user } => Ok(Outcome::Visits(
                self.visits.get(&user).copied().unwrap_or(0),
            )),
        }
    }

    /// Creates a match unless its id is taken.
    fn create(
        &mut self,
        new: NewMatch,
        now_ms: u64,
        incarnation: Incarnation,
        changes: &mut Vec<Change>,
    ) -> Result<Outcome, StoreError> {
        let id = MatchId::new(&new.home, &new.visit, new.start_date);
        if self.matches.contains_key(&id) {
            return Err(StoreError::Exists(id));
        }
        let state = Arc::new(Match::create(new, now_ms, incarnation));
        let record = MatchRecord {
            state: Arc::clone(&state),
            history: Vec::new(),
        };
        self.matches.insert(id.clone(), record);
        self.journal.push(Inverse::Uncreate(id));
        changes.push(Change::PutMatch(Arc::clone(&state)));
        Ok(Outcome::Created(state))
    }

    /// Validates `posted` against the match, numbers and timestamps it, applies it. The
    /// timestamp never goes below the match's `updated_ms` (its last event, or its creation),
    /// so a history's timestamps never go backwards even if the clock does.
    fn apply(
        &mut self,
        id: &MatchId,
        posted: &PostedEvent,
        now_ms: u64,
        changes: &mut Vec<Change>,
    ) -> Result<Outcome, StoreError> {
        let record = self
            .matches
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let data = validate(&record.state, posted).map_err(StoreError::Invalid)?;
        let event = Arc::new(Event {
            match_id: record.state.id.clone(),
            seq: record.state.last_seq + 1,
            timestamp_ms: now_ms.max(record.state.updated_ms),
            kind: posted.kind,
            data,
        });
        let mut next = Match::clone(&record.state);
        apply(&mut next, &event);
        let state = Arc::new(next);
        let before = std::mem::replace(&mut record.state, Arc::clone(&state));
        record.history.push(Arc::clone(&event));
        self.journal.push(Inverse::Unapply {
            id: id.clone(),
            before,
        });
        changes.push(Change::AppendEvent(Arc::clone(&event)));
        changes.push(Change::PutMatch(Arc::clone(&state)));
        Ok(Outcome::Applied { event, state })
    }

    /// Removes a match and its history.
    fn cancel(&mut self, id: MatchId, changes: &mut Vec<Change>) -> Result<Outcome, StoreError> {
        let Some(record) = self.matches.remove(&id) else {
            return Err(StoreError::NotFound(id));
        };
        self.journal.push(Inverse::Uncancel(record));
        changes.push(Change::RemoveMatch(id.clone()));
        Ok(Outcome::Cancelled(id))
    }

    /// Adds `count` visits to `user` (saturating: a counter never wraps). Once
    /// [`MAX_VISIT_USERS`] users are counted, a new user's visits are not.
    fn visit(&mut self, user: String, count: u64, changes: &mut Vec<Change>) -> Outcome {
        let before = self.visits.get(&user).copied();
        if before.is_none() && self.visits.len() >= MAX_VISIT_USERS {
            return Outcome::Visited;
        }
        let after = before.unwrap_or(0).saturating_add(count);
        self.visits.insert(user.clone(), after);
        self.journal.push(Inverse::Unvisit {
            user: user.clone(),
            before,
        });
        changes.push(Change::AddVisits { user, count });
        Outcome::Visited
    }

    /// Applies one inverse step.
    fn undo(&mut self, inverse: Inverse) {
        match inverse {
            Inverse::Uncreate(id) => {
                self.matches.remove(&id);
            }
            Inverse::Unapply { id, before } => {
                if let Some(record) = self.matches.get_mut(&id) {
                    record.history.pop();
                    record.state = before;
                }
            }
            Inverse::Uncancel(record) => {
                self.matches.insert(record.state.id.clone(), record);
            }
            Inverse::Unvisit { user, before } => match before {
                Some(n) => {
                    self.visits.insert(user, n);
                }
                None => {
                    self.visits.remove(&user);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::state::EventError;
    use matchstream_protocol::{Date, EventKind, Period, Player, PlayerRef, TeamCode};

    const T0: u64 = 1_315_921_728_000;

    fn team(s: &str) -> TeamCode {
        TeamCode::parse(s).expect("team")
    }

    fn new_match(home: &str, visit: &str) -> NewMatch {
        NewMatch {
            home: team(home),
            visit: team(visit),
            start_date: Date::parse("2011-09-10").expect("date"),
            stadium: None,
            home_players: vec![Player::new(7, "Luna").expect("player")],
            visit_players: vec![Player::new(9, "Sol").expect("player")],
        }
    }

    fn id(home: &str, visit: &str) -> MatchId {
        MatchId::parse(&format!("{home}-{visit}-2011-09-10")).expect("id")
    }

    fn create(home: &str, visit: &str) -> Op {
        Op::Create {
            new: new_match(home, visit),
            now_ms: T0,
            incarnation: crate::incarnation::draw(),
        }
    }

    fn post(id: &MatchId, event: PostedEvent, now_ms: u64) -> Op {
        Op::Apply {
            id: id.clone(),
            event,
            now_ms,
        }
    }

    fn start(id: &MatchId) -> Op {
        post(id, PostedEvent::new(EventKind::Start), T0 + 1)
    }

    fn goal(id: &MatchId, by: &str, number: u8) -> Op {
        let mut event = PostedEvent::new(EventKind::Goal);
        event.team = Some(team(by));
        event.player = Some(PlayerRef::Number(number));
        post(id, event, T0 + 2)
    }

    fn comment(id: &MatchId, now_ms: u64) -> Op {
        let mut event = PostedEvent::new(EventKind::Comment);
        event.comment = Some("what a match".to_owned());
        post(id, event, now_ms)
    }

    fn run(catalog: &mut Catalog, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
        catalog.execute(ops).0
    }

    fn applied(result: &Result<Outcome, StoreError>) -> (Arc<Event>, Arc<Match>) {
        match result {
            Ok(Outcome::Applied { event, state }) => (Arc::clone(event), Arc::clone(state)),
            other => panic!("expected Applied, got {other:?}"),
        }
    }

    /// Every match and its history, and every visit count, by value.
    type Snapshot = (Vec<(Match, Vec<Event>)>, Vec<(String, u64)>);

    /// The catalog's content by value, for before/after comparisons.
    fn snapshot(catalog: &Catalog) -> Snapshot {
        let records = catalog
            .records()
            .into_iter()
            .map(|r| {
                let history = r.history.iter().map(|e| Event::clone(e)).collect();
                (Match::clone(&r.state), history)
            })
            .collect();
        let mut visits: Vec<(String, u64)> = catalog
            .visits()
            .iter()
            .map(|(u, n)| (u.clone(), *n))
            .collect();
        visits.sort();
        (records, visits)
    }

    fn change_names(changes: &[Change]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                Change::PutMatch(_) => "put",
                Change::AppendEvent(_) => "append",
                Change::RemoveMatch(_) => "remove",
                Change::AddVisits { .. } => "visits",
            })
            .collect()
    }

    #[test]
    fn create_makes_a_fresh_match() {
        let mut catalog = Catalog::default();
        let (results, changes) = catalog.execute(vec![create("elp", "tig")]);
        let Ok(Outcome::Created(state)) = &results[0] else {
            panic!("expected Created, got {results:?}");
        };
        assert_eq!(state.id, id("elp", "tig"));
        assert_eq!(
            (state.period, state.last_seq, state.updated_ms),
            (Period::NotStarted, 0, T0)
        );
        assert_eq!(change_names(&changes), ["put"]);
        let record = catalog.get(&id("elp", "tig")).expect("stored");
        assert!(record.history.is_empty());
    }

    #[test]
    fn create_twice_is_exists() {
        let mut catalog = Catalog::default();
        run(&mut catalog, vec![create("elp", "tig")]);
        let (results, changes) = catalog.execute(vec![create("elp", "tig")]);
        assert_eq!(
            results[0].as_ref().err(),
            Some(&StoreError::Exists(id("elp", "tig")))
        );
        assert!(changes.is_empty());
    }

    #[test]
    fn apply_numbers_events_one_to_n_without_gaps() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let mut ops = vec![create("elp", "tig"), start(&m)];
        ops.extend((0..8).map(|i| comment(&m, T0 + 10 + i)));
        let results = run(&mut catalog, ops);
        let seqs: Vec<u64> = results[1..].iter().map(|r| applied(r).0.seq).collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<u64>>());
        let record = catalog.get(&m).expect("stored");
        assert_eq!(record.state.last_seq, 9);
        let history: Vec<u64> = record.history.iter().map(|e| e.seq).collect();
        assert_eq!(history, seqs);
    }

    #[test]
    fn apply_updates_state_and_resolves_players() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let results = run(
            &mut catalog,
            vec![create("elp", "tig"), start(&m), goal(&m, "tig", 9)],
        );
        let (event, state) = applied(&results[2]);
        assert_eq!(event.kind, EventKind::Goal);
        assert_eq!(event.match_id, m);
        assert_eq!(event.timestamp_ms, T0 + 2);
        assert_eq!(
            event.data.player,
            Some(Player::new(9, "Sol").expect("player"))
        );
        assert_eq!((state.home_score, state.visit_score), (0, 1));
        assert_eq!((state.last_seq, state.updated_ms), (2, T0 + 2));
        let stored = catalog.get(&m).expect("stored");
        assert!(Arc::ptr_eq(&stored.state, &state));
        assert!(Arc::ptr_eq(&stored.history[1], &event));
    }

    #[test]
    fn apply_changes_are_event_then_state() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(&mut catalog, vec![create("elp", "tig")]);
        let (_, changes) = catalog.execute(vec![start(&m)]);
        assert_eq!(change_names(&changes), ["append", "put"]);
    }

    #[test]
    fn apply_to_unknown_match_is_not_found() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let (results, changes) = catalog.execute(vec![start(&m)]);
        assert_eq!(results[0].as_ref().err(), Some(&StoreError::NotFound(m)));
        assert!(changes.is_empty());
    }

    #[test]
    fn invalid_event_is_refused_whole_and_uses_no_seq() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(&mut catalog, vec![create("elp", "tig"), start(&m)]);
        let (results, changes) = catalog.execute(vec![goal(&m, "xyz", 9), goal(&m, "tig", 44)]);
        let unknown = StoreError::Invalid(EventError::UnknownTeam("xyz".to_owned()));
        assert_eq!(results[0].as_ref().err(), Some(&unknown));
        assert!(matches!(
            results[1],
            Err(StoreError::Invalid(EventError::PlayerNotOnRoster {
                number: 44,
                ..
            }))
        ));
        assert!(changes.is_empty());
        let results = run(&mut catalog, vec![goal(&m, "tig", 9)]);
        assert_eq!(applied(&results[0]).0.seq, 2);
        assert_eq!(catalog.get(&m).expect("stored").history.len(), 2);
    }

    #[test]
    fn nothing_is_accepted_after_stop() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let stop = post(&m, PostedEvent::new(EventKind::Stop), T0 + 3);
        run(&mut catalog, vec![create("elp", "tig"), start(&m), stop]);
        let results = run(&mut catalog, vec![comment(&m, T0 + 4)]);
        assert_eq!(
            results[0].as_ref().err(),
            Some(&StoreError::Invalid(EventError::MatchEnded))
        );
    }

    #[test]
    fn timestamps_never_go_backwards() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let results = run(
            &mut catalog,
            vec![
                create("elp", "tig"),
                comment(&m, T0 - 50),
                comment(&m, T0 + 100),
                comment(&m, T0 + 40),
            ],
        );
        let stamps: Vec<u64> = results[1..]
            .iter()
            .map(|r| applied(r).0.timestamp_ms)
            .collect();
        assert_eq!(stamps, [T0, T0 + 100, T0 + 100]);
    }

    #[test]
    fn cancel_removes_match_and_history() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(&mut catalog, vec![create("elp", "tig"), start(&m)]);
        let (results, changes) = catalog.execute(vec![Op::Cancel { id: m.clone() }]);
        assert!(matches!(&results[0], Ok(Outcome::Cancelled(c)) if *c == m));
        assert!(matches!(&changes[..], [Change::RemoveMatch(c)] if *c == m));
        assert!(catalog.get(&m).is_none());
        let results = run(&mut catalog, vec![Op::Cancel { id: m.clone() }, start(&m)]);
        assert_eq!(
            results[0].as_ref().err(),
            Some(&StoreError::NotFound(m.clone()))
        );
        assert_eq!(
            results[1].as_ref().err(),
            Some(&StoreError::NotFound(m.clone()))
        );
    }

    #[test]
    fn recreated_match_starts_again_at_seq_one() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(
            &mut catalog,
            vec![
                create("elp", "tig"),
                start(&m),
                Op::Cancel { id: m.clone() },
            ],
        );
        let results = run(&mut catalog, vec![create("elp", "tig"), start(&m)]);
        assert_eq!(applied(&results[1]).0.seq, 1);
        assert_eq!(catalog.get(&m).expect("stored").history.len(), 1);
    }

    #[test]
    fn visits_add_up_and_unknown_users_have_none() {
        let mut catalog = Catalog::default();
        let visit = |count| Op::Visit {
            user: "ana".to_owned(),
            count,
        };
        let (results, changes) = catalog.execute(vec![
            visit(2),
            visit(3),
            Op::GetVisits {
                user: "ana".to_owned(),
            },
            Op::GetVisits {
                user: "bob".to_owned(),
            },
        ]);
        assert!(matches!(results[0], Ok(Outcome::Visited)));
        assert!(matches!(results[2], Ok(Outcome::Visits(5))));
        assert!(matches!(results[3], Ok(Outcome::Visits(0))));
        assert_eq!(change_names(&changes), ["visits", "visits"]);
        assert!(matches!(&changes[1], Change::AddVisits { user, count: 3 } if user == "ana"));
    }

    #[test]
    fn later_ops_of_a_batch_see_earlier_ones() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let (results, changes) = catalog.execute(vec![
            create("elp", "tig"),
            start(&m),
            goal(&m, "elp", 7),
            Op::Cancel { id: m.clone() },
            comment(&m, T0 + 5),
        ]);
        assert!(matches!(results[0], Ok(Outcome::Created(_))));
        assert_eq!(applied(&results[1]).0.seq, 1);
        assert_eq!(applied(&results[2]).1.home_score, 1);
        assert!(matches!(results[3], Ok(Outcome::Cancelled(_))));
        assert_eq!(results[4].as_ref().err(), Some(&StoreError::NotFound(m)));
        let names = change_names(&changes);
        assert_eq!(names, ["put", "append", "put", "append", "put", "remove"]);
    }

    #[test]
    fn records_are_sorted_and_new_continues_their_seqs() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(
            &mut catalog,
            vec![
                create("zed", "abc"),
                create("elp", "tig"),
                start(&m),
                create("abc", "zed"),
            ],
        );
        let records = catalog.records();
        let ids: Vec<&str> = records.iter().map(|r| r.state.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "abc-zed-2011-09-10",
                "elp-tig-2011-09-10",
                "zed-abc-2011-09-10"
            ]
        );
        let visits = Visits::from([("ana".to_owned(), 4)]);
        let mut reloaded = Catalog::new(records, visits);
        assert_eq!((reloaded.match_count(), reloaded.event_count()), (3, 1));
        let results = run(&mut reloaded, vec![comment(&m, T0 + 9)]);
        assert_eq!(applied(&results[0]).0.seq, 2);
        let results = run(
            &mut reloaded,
            vec![Op::GetVisits {
                user: "ana".to_owned(),
            }],
        );
        assert!(matches!(results[0], Ok(Outcome::Visits(4))));
    }

    #[test]
    fn rollback_restores_the_catalog_before_the_batch() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        let visit = |user: &str, count| Op::Visit {
            user: user.to_owned(),
            count,
        };
        run(
            &mut catalog,
            vec![
                create("elp", "tig"),
                start(&m),
                create("abc", "zed"),
                visit("ana", 2),
            ],
        );
        let before = snapshot(&catalog);
        let (results, changes) = catalog.execute(vec![
            goal(&m, "elp", 7),
            create("new", "one"),
            comment(&id("new", "one"), T0),
            Op::Cancel { id: m.clone() },
            Op::Cancel {
                id: id("abc", "zed"),
            },
            create("elp", "tig"),
            visit("ana", 3),
            visit("bob", 1),
            visit("bob", 1),
        ]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(changes.len(), 11);
        assert_ne!(snapshot(&catalog), before);
        catalog.rollback();
        assert_eq!(snapshot(&catalog), before);
        catalog.rollback();
        assert_eq!(snapshot(&catalog), before);
        let results = run(&mut catalog, vec![comment(&m, T0 + 9)]);
        assert_eq!(applied(&results[0]).0.seq, 2);
    }

    #[test]
    fn rollback_only_undoes_the_last_batch() {
        let mut catalog = Catalog::default();
        let m = id("elp", "tig");
        run(&mut catalog, vec![create("elp", "tig")]);
        run(&mut catalog, vec![start(&m)]);
        catalog.rollback();
        let record = catalog.get(&m).expect("first batch kept");
        assert_eq!((record.state.last_seq, record.history.len()), (0, 0));
        assert_eq!(record.state.period, Period::NotStarted);
    }
}
