//! The shared metadata backend: one PostgreSQL database that many nodes use at once.
//!
//! Write transactions run at SERIALIZABLE: every [`Meta`](crate::Meta) operation reads
//! rows, checks POSIX rules on them and writes, and only serializable isolation keeps
//! those checks true across nodes. PostgreSQL reports a transaction that would break
//! that as a serialization failure (SQLSTATE 40001, or 40P01 for a deadlock); this
//! backend turns it into [`MetaError::Conflict`] and `Meta` runs the operation again.
//! Read transactions are `REPEATABLE READ READ ONLY`: one consistent snapshot, never
//! a conflict. See docs/adr/0011-postgresql-metadata.md.
//!
//! Thread model: `MetaStore` is synchronous and is called from plain threads and from
//! inside Tokio runtimes alike, where blocking clients (and `Runtime::block_on`)
//! panic. So the connections live on a runtime of this store's own
//! ([`pool::Pool`]): a caller hands each statement to it as a task and waits for the
//! answer on a standard channel, which works from any thread.

mod pool;
mod schema;
mod tls;
mod txn;

use crate::store::{MetaStore, MetaTxn, TxnMode};
use crate::url::OpenError;
use crate::{MetaError, Result};
pub(crate) use pool::redact;
use pool::Pool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::error::SqlState;

pub use schema::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;

/// Connections kept per store: enough for a node's concurrent operations, few enough
/// that dozens of nodes stay under PostgreSQL's default `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 8;

/// Metadata in a PostgreSQL database (in the schema its `search_path` names).
pub struct PostgresStore {
    pool: Pool,
    /// Serialization failures seen, for `floe status` and tests.
    conflicts: AtomicU64,
}

impl PostgresStore {
    /// Connects with a libpq-style URL or key=value string, creates or upgrades the
    /// schema (under an advisory lock, so that nodes starting together take turns) and
    /// refuses a database that holds a newer floe's schema or tables of another program.
    pub fn connect(url: &str, pool_size: usize) -> Result<Arc<PostgresStore>, OpenError> {
        let pool = Pool::new(url, pool_size.max(1))?;
        let mut conn = pool.checkout().map_err(|e| pool.open_error(e))?;
        let migrated = schema::migrate(&pool, &mut conn);
        pool.give_back(conn, migrated.is_ok());
        migrated?;
        Ok(Arc::new(PostgresStore { pool, conflicts: AtomicU64::new(0) }))
    }

    /// How many serialization failures this store reported (and `Meta` retried).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Whether this store's connections run over TLS, as the server sees it (for
    /// `floe status` and tests).
    pub fn tls_in_use(&self) -> Result<bool> {
        let conn = self.pool.checkout().map_err(|e| MetaError::Backend(e.to_string()))?;
        let client = conn.client.clone();
        let row = futures_executor::block_on(
            client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]),
        );
        self.pool.give_back(conn, row.is_ok());
        row.and_then(|r| r.try_get(0)).map_err(|e| backend(&e))
    }

    fn note_conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }
}

impl MetaStore for PostgresStore {
    fn begin(&self, mode: TxnMode) -> Result<Box<dyn MetaTxn + '_>> {
        let conn = self.pool.checkout().map_err(|e| MetaError::Backend(e.to_string()))?;
        Ok(Box::new(txn::PgTxn::new(self, conn, mode)))
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn sync(&self) -> Result<()> {
        // With synchronous_commit on (PostgreSQL's default) a COMMIT returns once its
        // WAL is flushed on the server: every committed transaction is durable already.
        Ok(())
    }
}

/// Maps a failed statement to the metadata error `Meta` acts on.
fn backend(e: &tokio_postgres::Error) -> MetaError {
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            MetaError::Conflict
        }
        // `Meta` looks a key up before inserting it, so a duplicate can only come from
        // a concurrent transaction that inserted it since: a conflict like any other.
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => MetaError::Conflict,
        Some(c) if *c == SqlState::DISK_FULL => MetaError::NoSpace,
        _ => MetaError::Backend(describe(e)),
    }
}

/// One line saying what went wrong: the server's message when it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None if e.is_closed() => "the connection to PostgreSQL was closed".to_string(),
            None => e.to_string(),
        },
    };
    text.replace('\n', " ")
}
