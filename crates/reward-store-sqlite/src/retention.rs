//! Clearing the response bodies of old attempts (`REWARD_ATTEMPT_BODY_RETENTION`): the attempt's
//! status, timing and error stay. Attempts are walked in the order they were recorded (the
//! table's own row ids: no index of their start time on the hot path, migration 0014), in chunks
//! of [`CHUNK`], each its own short write, so the writer is never held for long however much
//! there is to clear. The walk ends at the first attempt still within retention.
//!
//! An attempt is recorded once it ends, at most a lease after it started, so row ids follow start
//! times closely: an attempt recorded after one still kept is practically always kept too. One
//! that started earlier (a long attempt, or a clock gone back) waits for a later run, once the
//! attempt that ended the walk has expired as well: its body is cleared late, never early.

use reward_core::time::Timestamp;
use reward_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;

/// Attempts looked at per chunk (kept short: API writes wait behind each, see events.rs).
pub const CHUNK: i64 = 500;

/// Where the next walk resumes: the attempt that ended the last one (the first still within
/// retention, or the last there was), so it does not re-read every attempt already cleared. The
/// attempt's id is kept beside its row id: once that row is gone (its event purged, its webhook
/// deleted), SQLite may give its row id, or ids below it, to new attempts, and the next walk then
/// starts from the beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodiesCursor {
    rowid: i64,
    attempt_id: String,
}

/// The row id the next walk starts from: `resume`'s, while that attempt is still there; else the
/// beginning.
pub fn walk_start(connection: &Connection, resume: Option<&BodiesCursor>) -> StoreResult<i64> {
    let Some(resume) = resume else {
        return Ok(0);
    };
    let id: Option<String> = connection
        .prepare_cached("SELECT id FROM attempts WHERE rowid = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([resume.rowid], |row| row.get(0))
                .optional()
        })
        .map_err(from_sqlite)?;
    Ok(if id.as_deref() == Some(resume.attempt_id.as_str()) {
        resume.rowid
    } else {
        0
    })
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkCleared {
    /// Bodies cleared.
    pub cleared: usize,
    /// Where the next chunk starts; `None` once the walk has ended.
    pub next: Option<i64>,
    /// Where the next walk resumes, once this one has ended here: the attempt that ended it, or
    /// the last one there was. `None` while the walk goes on, or when this chunk found none.
    pub resume_at: Option<BodiesCursor>,
}

/// Clears the bodies of up to [`CHUNK`] attempts from row id `from` on, in the order they were
/// recorded, that started before `before`; the first attempt that started at or after it ends
/// the walk.
pub fn clear_bodies_chunk(
    connection: &Connection,
    from: i64,
    before: Timestamp,
) -> StoreResult<ChunkCleared> {
    let attempts: Vec<(i64, i64, String)> = connection
        .prepare_cached(
            "SELECT rowid, started_at, id FROM attempts WHERE rowid >= ?1 ORDER BY rowid LIMIT ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![from, CHUNK], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?
                .collect()
        })
        .map_err(from_sqlite)?;
    let kept = attempts
        .iter()
        .position(|(_, started_at, _)| *started_at >= before.as_millis());
    let full_chunk = attempts.len() as i64 == CHUNK;
    let (until, next, resume) = match (kept, attempts.last()) {
        (Some(index), _) => (attempts[index].0, None, Some(&attempts[index])),
        (None, Some(last)) if full_chunk => (last.0 + 1, Some(last.0 + 1), None),
        (None, Some(last)) => (last.0 + 1, None, Some(last)),
        (None, None) => (from, None, None),
    };
    let cleared = connection
        .prepare_cached(
            "UPDATE attempts SET response_body = NULL
             WHERE rowid >= ?1 AND rowid < ?2 AND response_body IS NOT NULL",
        )
        .and_then(|mut statement| statement.execute(params![from, until]))
        .map_err(from_sqlite)?;
    Ok(ChunkCleared {
        cleared,
        next,
        resume_at: resume.map(|(rowid, _, id)| BodiesCursor {
            rowid: *rowid,
            attempt_id: id.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated in-memory database with one attempt per start time, recorded in that order,
    /// each with a body.
    fn database(started: &[i64]) -> Connection {
        let mut connection = Connection::open_in_memory().expect("open");
        crate::migrations::migrate(&mut connection).expect("migrate");
        for (number, started_at) in started.iter().enumerate() {
            record(&connection, &format!("at_{number:04}"), *started_at);
        }
        connection
    }

    fn record(connection: &Connection, id: &str, started_at: i64) {
        connection
            .execute(
                "INSERT INTO attempts (account_id, delivery_id, id, number, started_at,
                 duration_ms, status_code, response_body) VALUES ('acct', 'dl', ?1, 1, ?2, 5, 200,
                 'thanks')",
                params![id, started_at],
            )
            .expect("attempt");
    }

    /// The ids of the attempts that still have their bodies, in the order recorded.
    fn with_bodies(connection: &Connection) -> Vec<String> {
        connection
            .prepare("SELECT id FROM attempts WHERE response_body IS NOT NULL ORDER BY rowid")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .expect("attempts")
    }

    /// One walk as the store runs it: from where the last one ended, chunk after chunk. Returns
    /// the bodies cleared and the chunks it took.
    fn walk(
        connection: &Connection,
        resume: &mut Option<BodiesCursor>,
        before: i64,
    ) -> (usize, usize) {
        let mut next = Some(walk_start(connection, resume.as_ref()).expect("start"));
        let (mut cleared, mut chunks) = (0, 0);
        while let Some(from) = next {
            let chunk = clear_bodies_chunk(connection, from, Timestamp::from_millis(before))
                .expect("clear");
            cleared += chunk.cleared;
            chunks += 1;
            if chunk.resume_at.is_some() {
                *resume = chunk.resume_at;
            }
            next = chunk.next;
        }
        (cleared, chunks)
    }

    #[test]
    fn bodies_are_cleared_in_recorded_order_up_to_the_first_attempt_kept() {
        // 1,200 attempts started before 5,000, then one at 5,000 and one recorded late, which
        // started earlier.
        let mut started: Vec<i64> = (0..1200).collect();
        started.extend([5_000, 100]);
        let connection = database(&started);
        let mut resume = None;
        assert_eq!(walk(&connection, &mut resume, 5_000), (1200, 3));
        assert_eq!(with_bodies(&connection), ["at_1200", "at_1201"]);
        // Once the attempt that ended the walk has expired too, the late one goes.
        assert_eq!(walk(&connection, &mut resume, 6_000), (2, 1));
        assert!(with_bodies(&connection).is_empty());
    }

    #[test]
    fn the_next_walk_resumes_where_the_last_ended_and_from_the_start_once_that_row_is_gone() {
        let connection = database(&(0..1000).collect::<Vec<i64>>());
        let mut resume = None;
        assert_eq!(walk(&connection, &mut resume, 600), (600, 2));
        // New attempts: the next walk starts at the first one kept, not at the beginning.
        record(&connection, "at_new", 2_000);
        assert_eq!(walk(&connection, &mut resume, 900), (300, 1));
        // Everything is deleted (a purge, a webhook deleted), and new attempts reuse the row ids,
        // the one where the walk ended among them: the next walk starts from the beginning.
        connection
            .execute("DELETE FROM attempts", [])
            .expect("delete");
        for number in 0..950 {
            record(&connection, &format!("again_{number:04}"), 50);
        }
        assert_eq!(walk(&connection, &mut resume, 900), (950, 2));
        assert!(with_bodies(&connection).is_empty());
        // Nothing left to clear: a walk ends at once.
        assert_eq!(walk(&connection, &mut resume, 900), (0, 1));
    }
}
