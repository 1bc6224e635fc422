//! The tables, their version, and the migrations that bring an older schema up to date.
//!
//! The same tables as the SQLite backend's, with PostgreSQL types: integers are BIGINT
//! (u64 values travel bit for bit as i64, as in SQLite: lock owners and `LOCK_END`
//! come out negative and back unchanged), bytes are BYTEA, names TEXT with the "C"
//! collation so that listings sort by bytes as on SQLite. Migrations only ever add:
//! a schema is never dropped or rewritten at start-up.

use super::pool::{Conn, Pool};
use crate::url::OpenError;

/// The schema this build writes. A database at a higher version was written by a
/// newer floe and is refused; a lower one is migrated.
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[v]` brings a schema at version `v` to `v + 1`; version 0 is no schema.
const MIGRATIONS: &[&str] = &[V1];

/// The tables whose rows belong to one file system (column `fs`): what deleting a
/// file system empties.
pub(super) const PER_FS_TABLES: &[&str] = &[
    "inodes",
    "dentries",
    "symlinks",
    "xattrs",
    "chunk_refs",
    "slices",
    "sustained",
    "sessions",
    "locks",
    "access_points",
    "fs_policies",
];

/// Whether floe creates `table`; any other table in the schema is another program's.
fn is_floe_table(table: &str) -> bool {
    PER_FS_TABLES.contains(&table) || ["schema_version", "file_systems", "records"].contains(&table)
}

const V1: &str = r#"
CREATE TABLE schema_version(version BIGINT NOT NULL);
CREATE TABLE file_systems(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE,
    uuid TEXT NOT NULL, created BIGINT NOT NULL, next_inode BIGINT NOT NULL, next_slice BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL DEFAULT 0, used_inodes BIGINT NOT NULL DEFAULT 0);
CREATE TABLE inodes(
    fs BIGINT NOT NULL, ino BIGINT NOT NULL, kind BIGINT NOT NULL, perm BIGINT NOT NULL,
    uid BIGINT NOT NULL, gid BIGINT NOT NULL, nlink BIGINT NOT NULL, size BIGINT NOT NULL,
    rdev BIGINT NOT NULL, atime BIGINT NOT NULL, mtime BIGINT NOT NULL, ctime BIGINT NOT NULL,
    parent BIGINT NOT NULL, PRIMARY KEY(fs, ino));
CREATE INDEX inodes_unlinked ON inodes(fs, ino) WHERE nlink = 0;
CREATE TABLE dentries(
    cookie BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, fs BIGINT NOT NULL, parent BIGINT NOT NULL,
    name BYTEA NOT NULL, ino BIGINT NOT NULL, kind BIGINT NOT NULL);
CREATE UNIQUE INDEX dentries_name ON dentries(fs, parent, name);
CREATE INDEX dentries_order ON dentries(fs, parent, cookie);
CREATE TABLE symlinks(
    fs BIGINT NOT NULL, ino BIGINT NOT NULL, target BYTEA NOT NULL, PRIMARY KEY(fs, ino));
CREATE TABLE xattrs(
    fs BIGINT NOT NULL, ino BIGINT NOT NULL, name BYTEA NOT NULL, value BYTEA NOT NULL,
    PRIMARY KEY(fs, ino, name));
CREATE TABLE chunk_refs(
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, fs BIGINT NOT NULL, ino BIGINT NOT NULL,
    chunk BIGINT NOT NULL, slice BIGINT NOT NULL, size BIGINT NOT NULL, off BIGINT NOT NULL,
    len BIGINT NOT NULL, pos BIGINT NOT NULL);
CREATE INDEX chunk_refs_file ON chunk_refs(fs, ino, chunk, seq);
CREATE TABLE slices(
    fs BIGINT NOT NULL, id BIGINT NOT NULL, size BIGINT NOT NULL, refs BIGINT NOT NULL DEFAULT 0,
    inline BYTEA, owner BIGINT, PRIMARY KEY(fs, id));
CREATE INDEX slices_garbage ON slices(fs, id) WHERE refs = 0;
CREATE TABLE sessions(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, fs BIGINT NOT NULL, info TEXT NOT NULL,
    started BIGINT NOT NULL, heartbeat BIGINT NOT NULL);
CREATE TABLE sustained(
    session BIGINT NOT NULL, fs BIGINT NOT NULL, ino BIGINT NOT NULL, PRIMARY KEY(session, fs, ino));
CREATE INDEX sustained_ino ON sustained(fs, ino);
CREATE TABLE access_points(
    id TEXT COLLATE "C" PRIMARY KEY, fs BIGINT NOT NULL, path TEXT NOT NULL, uid BIGINT NOT NULL,
    gid BIGINT NOT NULL, groups TEXT NOT NULL, owner_uid BIGINT, owner_gid BIGINT, mode BIGINT,
    created BIGINT NOT NULL);
CREATE INDEX access_points_fs ON access_points(fs, id);
CREATE TABLE fs_policies(
    fs BIGINT PRIMARY KEY, read_only BOOLEAN NOT NULL, root_squash BOOLEAN NOT NULL);
CREATE TABLE locks(
    fs BIGINT NOT NULL, ino BIGINT NOT NULL, session BIGINT NOT NULL, owner BIGINT NOT NULL,
    typ BIGINT NOT NULL, range_start BIGINT NOT NULL, range_end BIGINT NOT NULL, pid BIGINT NOT NULL,
    PRIMARY KEY(fs, ino, session, owner, range_start));
CREATE INDEX locks_session ON locks(session);
CREATE TABLE records(
    kind TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, body TEXT NOT NULL,
    revision BIGINT NOT NULL, PRIMARY KEY(kind, name));
INSERT INTO schema_version(version) VALUES (0);
"#;

/// Creates or upgrades the schema, in one transaction holding an advisory lock keyed
/// by the schema's name, so that nodes starting together migrate once.
pub(super) fn migrate(pool: &Pool, conn: &mut Conn) -> Result<(), OpenError> {
    let server = pool.server();
    let client = conn.client.clone();
    let outcome = pool.on_runtime(async move {
        // READ COMMITTED: after waiting for the lock, the next statement sees what the
        // node that held it committed.
        client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        let result = migrate_locked(&client).await;
        let end = if matches!(result, Ok(Ok(_))) { "COMMIT" } else { "ROLLBACK" };
        client.batch_execute(end).await?;
        result
    });
    let fail = |reason: String| OpenError::Postgres { server: server.clone(), reason };
    match outcome {
        None => Err(fail("the PostgreSQL store is shutting down".into())),
        Some(Err(e)) => Err(fail(format!("preparing floe's tables: {}", super::describe(&e)))),
        Some(Ok(Err(refusal))) => Err(refusal.into_open_error(server)),
        Some(Ok(Ok(from))) => {
            if from < SCHEMA_VERSION {
                tracing::info!(from, to = SCHEMA_VERSION, %server, "migrated the PostgreSQL metadata schema");
            }
            Ok(())
        }
    }
}

/// Why a database is not floe's to use.
enum Refusal {
    NoSchema,
    TooNew(i64),
    Foreign { place: String, tables: Vec<String> },
}

impl Refusal {
    fn into_open_error(self, server: String) -> OpenError {
        match self {
            Refusal::NoSchema => OpenError::Postgres {
                server,
                reason: "the search_path names no existing schema; create the schema or fix the search_path".into(),
            },
            Refusal::TooNew(found) => {
                OpenError::SchemaTooNew { place: format!("PostgreSQL at {server}"), found, supported: SCHEMA_VERSION }
            }
            Refusal::Foreign { place, tables } => OpenError::ForeignTables {
                place: format!("{place} on PostgreSQL at {server}"),
                tables: tables.join(", "),
            },
        }
    }
}

/// Returns the version found before migrating.
async fn migrate_locked(client: &tokio_postgres::Client) -> Result<Result<i64, Refusal>, tokio_postgres::Error> {
    let row = client.query_one("SELECT current_schema(), current_database()", &[]).await?;
    let (Some(schema), database) = (row.get::<_, Option<String>>(0), row.get::<_, String>(1)) else {
        return Ok(Err(Refusal::NoSchema));
    };
    client.execute("SELECT pg_advisory_xact_lock(hashtext('floe-meta:' || $1))", &[&schema]).await?;
    let tables: Vec<String> = client
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", &[&schema])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let found: i64 = if tables.iter().any(|t| t == "schema_version") {
        let row = client.query_opt("SELECT max(version) FROM schema_version", &[]).await?;
        row.and_then(|r| r.get::<_, Option<i64>>(0)).unwrap_or(0)
    } else {
        0
    };
    if found > SCHEMA_VERSION {
        return Ok(Err(Refusal::TooNew(found)));
    }
    let foreign: Vec<String> = tables.into_iter().filter(|t| !is_floe_table(t)).collect();
    if !foreign.is_empty() {
        let place = format!("schema {schema:?} of database {database:?}");
        return Ok(Err(Refusal::Foreign { place, tables: foreign }));
    }
    for step in &MIGRATIONS[found.max(0) as usize..] {
        client.batch_execute(step).await?;
    }
    if found < SCHEMA_VERSION {
        client.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION]).await?;
    }
    Ok(Ok(found))
}
