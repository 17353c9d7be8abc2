//! The memory backend: a [`Catalog`] and nothing else. Nothing survives a restart; for tests
//! and benchmarks, where it measures the server without the cost of a disk.

use super::catalog::Catalog;
use super::{Op, Outcome, Store, StoreError};
use crate::bus::MatchRecord;

/// A store that keeps everything in memory and never fails.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// All matches, histories and visit counts.
    catalog: Catalog,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<MatchRecord>, StoreError> {
        Ok(self.catalog.records())
    }

    /// Nothing to commit: every result stands as the catalog computed it.
    fn execute(&mut self, ops: Vec<Op>) -> Vec<Result<Outcome, StoreError>> {
        self.catalog.execute(ops).0
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::{Date, EventKind, MatchId, NewMatch, PostedEvent, TeamCode};

    fn create() -> Op {
        let team = |s| TeamCode::parse(s).expect("team");
        Op::Create {
            new: NewMatch {
                home: team("elp"),
                visit: team("tig"),
                start_date: Date::parse("2011-09-10").expect("date"),
                stadium: Some("Estadio".to_owned()),
                home_players: Vec::new(),
                visit_players: Vec::new(),
            },
            now_ms: 1,
            incarnation: crate::incarnation::draw(),
        }
    }

    #[test]
    fn starts_empty_and_describes_itself() {
        let mut store = MemoryStore::new();
        assert!(store.load().expect("load").is_empty());
        assert_eq!(store.describe(), "memory");
    }

    #[test]
    fn executes_batches_and_loads_what_they_made() {
        let mut store = MemoryStore::new();
        let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
        let start = Op::Apply {
            id: id.clone(),
            event: PostedEvent::new(EventKind::Start),
            now_ms: 2,
        };
        let results = store.execute(vec![create(), start, create()]);
        assert!(matches!(results[0], Ok(Outcome::Created(_))));
        assert!(matches!(&results[1], Ok(Outcome::Applied { event, .. }) if event.seq == 1));
        assert_eq!(
            results[2].as_ref().err(),
            Some(&StoreError::Exists(id.clone()))
        );
        let records = store.load().expect("load");
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].state.last_seq, records[0].history.len()),
            (1, 1)
        );
        let results = store.execute(vec![Op::Cancel { id }]);
        assert!(matches!(results[0], Ok(Outcome::Cancelled(_))));
        assert!(store.load().expect("load").is_empty());
    }

    #[test]
    fn counts_visits_of_a_bounded_number_of_users() {
        use crate::store::catalog::MAX_VISIT_USERS;
        let mut store = MemoryStore::new();
        let visit = |user: String| Op::Visit { user, count: 1 };
        let ops = (0..=MAX_VISIT_USERS)
            .map(|i| visit(format!("u{i}")))
            .collect();
        assert!(store
            .execute(ops)
            .iter()
            .all(|r| matches!(r, Ok(Outcome::Visited))));
        let get = |user: &str| Op::GetVisits {
            user: user.to_owned(),
        };
        let last = format!("u{MAX_VISIT_USERS}");
        let results = store.execute(vec![visit("u0".to_owned()), get("u0"), get(&last)]);
        assert!(
            matches!(results[1], Ok(Outcome::Visits(2))),
            "known users go on"
        );
        assert!(
            matches!(results[2], Ok(Outcome::Visits(0))),
            "one past the bound is not counted"
        );
    }
}
