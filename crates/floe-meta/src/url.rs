//! Opening the metadata engine a URL names, with start-up errors that say what to fix.
//!
//! `sqlite:///var/lib/floe/meta.db` (or a plain path) opens the embedded backend;
//! `postgres://user:password@host:port/database` (or `postgresql://`, with libpq's
//! query parameters such as `?host=/run/postgresql` or
//! `?options=-csearch_path%3Dfloe`) the shared one. Every problem a wrong URL, server
//! or database can cause is found here, at start-up, and reported on one line.
//!
//! TLS to PostgreSQL takes libpq's parameters (docs/adr/0011-postgresql-metadata.md):
//! - `sslmode=disable`: plaintext.
//! - `sslmode=prefer` (the default; `allow` is the same here): TLS when the server
//!   offers it, else plaintext; the certificate is not checked (unless `sslrootcert`).
//! - `sslmode=require`: TLS or no connection; the certificate is not checked, except
//!   that with `sslrootcert` its chain is, as in verify-ca.
//! - `sslmode=verify-ca`: TLS, the certificate signed by a CA of `sslrootcert` (else the
//!   system's CA certificates); any host name.
//! - `sslmode=verify-full`: as verify-ca, and the certificate names the host floe
//!   connects to. The one to use across a network.
//! - `sslrootcert=/path/ca.pem`: the PEM file of the CA certificates to trust;
//!   `sslrootcert=system`: the system's, with verify-full.
//!
//! E.g. `postgres://floe:secret@db.example/floe?sslmode=verify-full&sslrootcert=/etc/floe/pg-ca.pem`.

use crate::postgres::{PostgresStore, DEFAULT_POOL_SIZE};
use crate::{Meta, MetaError, SqliteStore};
use std::path::Path;
use thiserror::Error;

/// Why the metadata engine could not be opened. Each message is one line that names
/// the problem and what to change; none shows a password.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OpenError {
    #[error("bad metadata URL {url:?}: {reason}; expected sqlite:///path/to/meta.db or postgres://user:password@host:port/database")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach PostgreSQL at {server} ({reason}); check the host and port in the metadata URL and that the server is running")]
    Unreachable { server: String, reason: String },
    #[error(
        "PostgreSQL at {server} refused user {user:?}: {reason}; check the user name and password in the metadata URL"
    )]
    Credentials { server: String, user: String, reason: String },
    #[error("PostgreSQL at {server} has no database {database:?}; create it (createdb {database}) or fix the database name in the metadata URL")]
    NoDatabase { server: String, database: String },
    #[error("the metadata schema in {place} is version {found}, newer than this floe supports ({supported}); run a newer floe")]
    SchemaTooNew { place: String, found: i64, supported: i64 },
    #[error("{place} holds tables that are not floe's ({tables}); give floe an empty database or schema of its own")]
    ForeignTables { place: String, tables: String },
    #[error("PostgreSQL at {server}: {reason}")]
    Postgres { server: String, reason: String },
    #[error("PostgreSQL at {server} does not offer TLS, which sslmode={mode} requires; turn ssl on in the server's postgresql.conf, or lower sslmode in the metadata URL")]
    NoTls { server: String, mode: String },
    #[error("the certificate of PostgreSQL at {server} does not verify against {roots} ({reason}); set sslrootcert in the metadata URL to the PEM file of the CA that signed it")]
    Untrusted { server: String, roots: String, reason: String },
    #[error("the certificate of PostgreSQL at {server} is not for the host name floe connected to ({reason}); connect with a host name the certificate lists, or use sslmode=verify-ca to check only who signed it")]
    WrongHost { server: String, reason: String },
    #[error("cannot use sslrootcert {path}: {reason}; name a readable PEM file with the certificate of the CA that signed the server's")]
    RootCert { path: String, reason: String },
    #[error("no system CA certificates to verify PostgreSQL's certificate with ({reason}); install them (ca-certificates) or set sslrootcert in the metadata URL to a PEM file")]
    NoSystemRoots { reason: String },
    #[error("TLS with PostgreSQL at {server} failed: {reason}")]
    Tls { server: String, reason: String },
    #[error("cannot open the SQLite metadata database {path}: {reason}")]
    Sqlite { path: String, reason: String },
}

/// The metadata URL with any password masked, for messages and `floe status`; a path
/// or a SQLite URL comes back as it is.
pub fn redact_url(url: &str) -> String {
    crate::postgres::redact(url.trim())
}

/// Opens the metadata engine at `url`, creating or upgrading its schema.
pub fn open_url(url: &str) -> Result<Meta, OpenError> {
    let url = url.trim();
    match url.split_once("://") {
        Some(("postgres" | "postgresql", _)) => {
            let store = PostgresStore::connect(url, DEFAULT_POOL_SIZE)?;
            Ok(Meta::new(store))
        }
        Some(("sqlite", path)) => open_sqlite(url, path),
        Some((scheme, _)) => {
            Err(OpenError::BadUrl { url: crate::postgres::redact(url), reason: format!("unknown scheme {scheme:?}") })
        }
        None => match url.strip_prefix("sqlite:") {
            Some(path) => open_sqlite(url, path),
            None => open_sqlite(url, url),
        },
    }
}

fn open_sqlite(url: &str, path: &str) -> Result<Meta, OpenError> {
    if path.is_empty() {
        return Err(OpenError::BadUrl { url: url.to_string(), reason: "no database path".into() });
    }
    let path = Path::new(path);
    let fail = |reason: String| OpenError::Sqlite { path: path.display().to_string(), reason };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(fail(format!("directory {} does not exist", dir.display())));
        }
    }
    if path.is_dir() {
        return Err(fail("it is a directory; name a file in it, such as meta.db".into()));
    }
    match SqliteStore::open(path) {
        Ok(store) => Ok(Meta::new(store)),
        Err(MetaError::SchemaTooNew { found, supported }) => {
            Err(OpenError::SchemaTooNew { place: path.display().to_string(), found, supported })
        }
        Err(e) => Err(fail(e.to_string().replace('\n', " "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_are_refused() {
        let e = open_url("mysql://root:hunter2@db/floe").err().expect("refused");
        assert!(matches!(e, OpenError::BadUrl { .. }), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn sqlite_paths_in_missing_directories_are_refused() {
        let e = open_url("sqlite:///nonexistent-floe-dir/meta.db").err().expect("refused");
        assert_eq!(
            e.to_string(),
            "cannot open the SQLite metadata database /nonexistent-floe-dir/meta.db: directory /nonexistent-floe-dir does not exist"
        );
    }

    #[test]
    fn sqlite_urls_and_plain_paths_open() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        assert_eq!(open_url(&url).expect("sqlite:// URL").backend_kind(), "sqlite");
        let plain = dir.path().join("b.db");
        assert_eq!(open_url(&plain.display().to_string()).expect("plain path").backend_kind(), "sqlite");
    }
}
