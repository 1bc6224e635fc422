//! The shared backends for the tests that run floe as several nodes (or its file
//! system suites a second time): a PostgreSQL schema of the test's own in the server
//! `FLOE_TEST_POSTGRES` names (`scripts/postgres`) and a key prefix of its own in the
//! S3 bucket `FLOE_TEST_S3` names (`scripts/s3-server`).
//!
//! `FLOE_TEST_BACKENDS=shared` makes every [`Floe`](super::Floe) of a test binary use
//! them instead of the embedded SQLite and objects directory: `scripts/test` runs the
//! file system suites that way once more.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A schema and a prefix, dropped (the schema) at the end of the test.
pub struct Backends {
    server: String,
    schema: String,
    pub meta_url: String,
    pub store_url: String,
}

/// Whether this test binary runs its `Floe`s on the shared backends.
pub fn shared_by_default() -> bool {
    std::env::var("FLOE_TEST_BACKENDS").is_ok_and(|v| v == "shared")
}

impl Backends {
    /// Fresh backends, or `None` (with the reason) when the servers are not set up;
    /// under CI they must be.
    pub fn new() -> Result<Backends, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (Some(server), Some(s3)) = (var("FLOE_TEST_POSTGRES"), var("FLOE_TEST_S3")) else {
            let reason = "FLOE_TEST_POSTGRES and FLOE_TEST_S3 are not set (eval \"$(scripts/postgres)\" \
                          and eval \"$(scripts/s3-server env)\" set them)";
            assert!(!super::in_ci() && !shared_by_default(), "{reason}");
            return Err(reason.to_string());
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let schema = format!("floe_e2e_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut client = postgres::Client::connect(&server, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to FLOE_TEST_POSTGRES: {e}"));
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("create a schema for the test");
        let sep = if server.contains('?') { '&' } else { '?' };
        let meta_url = format!("{server}{sep}options=-csearch_path%3D{schema}");
        // s3://bucket?query -> s3://bucket/<schema>?query: a prefix of the test's own.
        let (head, query) = s3.split_once('?').unwrap_or((&s3, ""));
        let store_url = format!("{}/{schema}?{query}", head.trim_end_matches('/'));
        Ok(Backends { server, schema, meta_url, store_url })
    }

    /// The environment that points a floe process at these backends (the S3
    /// credentials come from the test's own environment).
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [("FLOE_META", self.meta_url.as_str()), ("FLOE_STORE", self.store_url.as_str())]
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}
