//! A small pool of read-only connections. In WAL mode readers never wait for the writer, so API
//! reads stay fast while a batch commits.

use std::path::PathBuf;
use std::sync::Mutex;

use reward_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::connection::open_reader;
use crate::errors::from_sqlite;

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection the pool may hold, so no more reads run than connections exist.
    permits: Semaphore,
}

impl Readers {
    pub fn new(path: PathBuf, size: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
        }
    }

    /// Runs `work` on a reading connection, on a blocking thread.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the reader pool is closed".into()))?;
        let idle = self.take_idle();
        let path = self.path.clone();
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let connection = match idle {
                Some(connection) => connection,
                None => match open_reader(&path) {
                    Ok(connection) => connection,
                    Err(error) => return (None, Err(from_sqlite(error))),
                },
            };
            let result = work(&connection);
            (Some(connection), result)
        })
        .await
        .map_err(|error| StoreError::Internal(format!("a read task failed: {error}")))?;
        if let Some(connection) = connection {
            self.idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(connection);
        }
        result
    }

    /// Runs a point lookup through an index (microseconds) on the calling thread when a
    /// connection is idle, else like [`Self::read`]. For the lookup every request makes (its API
    /// key): handing it to a blocking thread cost more than the query itself. In WAL mode a
    /// reader does not wait for the writer, so this does not stall the async thread.
    pub async fn read_point<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let Ok(permit) = self.permits.try_acquire() else {
            return self.read(work).await;
        };
        let Some(connection) = self.take_idle() else {
            drop(permit);
            return self.read(work).await;
        };
        let result = work(&connection);
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(connection);
        drop(permit);
        result
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }
}
