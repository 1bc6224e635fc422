//! The metadata conformance suite (`floe_meta::conformance`) against the SQLite backend:
//! one test per check, each on a fresh database in a temporary directory
//! (`tests/postgres.rs` runs the same list against PostgreSQL).

use floe_meta::{Meta, SqliteStore};
use tempfile::TempDir;

/// A fresh SQLite metadata engine; the directory must outlive it.
fn open() -> Option<(TempDir, Meta)> {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = SqliteStore::open(&dir.path().join("meta.db")).expect("open the SQLite store");
    Some((dir, Meta::new(store)))
}

floe_meta::conformance_tests!(open);
