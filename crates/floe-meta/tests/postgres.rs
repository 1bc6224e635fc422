//! The metadata conformance suite (`floe_meta::conformance`) against the PostgreSQL
//! backend, each test in a fresh schema of the database `FLOE_TEST_POSTGRES` names
//! (`eval "$(scripts/postgres)"` starts a throwaway server and sets it), plus what only
//! a shared server has: racing writers, start-up errors, concurrent start-ups.
//!
//! Without `FLOE_TEST_POSTGRES` the tests say they are skipped and pass, except under
//! `CI=true`, where a missing server is a failure.

use floe_meta::{open_url, Attr, Caller, FileKind, Meta, MetaError, NewNode, OpenError, PostgresStore};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's URL, or `None` (after saying so) when there is none to test against.
fn server_url() -> Option<String> {
    match std::env::var("FLOE_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("FLOE_TEST_POSTGRES is not set, and CI must run the PostgreSQL tests (eval \"$(scripts/postgres)\")")
        }
        _ => {
            eprintln!("skipped: FLOE_TEST_POSTGRES is not set (scripts/postgres starts one)");
            None
        }
    }
}

/// A schema of its own for one test, dropped with everything in it at the end.
struct Schema {
    server: String,
    name: String,
}

impl Schema {
    fn new() -> Option<Schema> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = server_url()?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("floe_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let schema = Schema { server, name };
        schema.admin(&format!("CREATE SCHEMA {}", schema.name));
        Some(schema)
    }

    /// A URL whose connections work in this schema.
    fn url(&self) -> String {
        let sep = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.server, self.name)
    }

    /// Runs SQL on a connection of its own, in this schema.
    fn admin(&self, sql: &str) {
        let mut client =
            postgres::Client::connect(&self.server, postgres::NoTls).expect("connect to FLOE_TEST_POSTGRES");
        client
            .batch_execute(&format!("SET search_path = {}; {sql}", self.name))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A fresh PostgreSQL metadata engine in a schema of its own.
fn open() -> Option<(Schema, Meta)> {
    let schema = Schema::new()?;
    let meta = open_url(&schema.url()).unwrap_or_else(|e| panic!("open {}: {e}", schema.url()));
    assert_eq!(meta.backend_kind(), "postgres");
    Some((schema, meta))
}

floe_meta::conformance_tests!(open);

fn node(kind: FileKind, perm: u32) -> NewNode<'static> {
    NewNode { kind, perm, umask: 0, rdev: 0, target: None }
}

/// Many writers creating in one directory at once, more than the pool has connections:
/// every create lands exactly once and no update of the shared rows (the directory's
/// nlink and times, the file system's counters) is lost to a retried conflict.
#[test]
fn racing_writers_in_one_directory() {
    let Some(schema) = Schema::new() else { return };
    let store = PostgresStore::connect(&schema.url(), 4).expect("connect");
    let meta = Meta::new(store.clone());
    let fs = meta.create_fs("race", "uuid-race").expect("create_fs").id;
    let root = Caller::root();
    let dir =
        meta.mknod(fs, &root, floe_meta::InodeId::ROOT, b"d", &node(FileKind::Directory, 0o777)).expect("mkdir").ino;
    let before = meta.statfs(fs).expect("statfs").used_inodes;
    const THREADS: u32 = 8;
    const EACH: u32 = 25;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let meta = meta.clone();
            s.spawn(move || {
                let me = Caller { uid: 1000 + t, gid: 1000, groups: Vec::new() };
                for i in 0..EACH {
                    let kind = if i % 5 == 0 { FileKind::Directory } else { FileKind::File };
                    let name = format!("w{t}-{i}");
                    meta.mknod(fs, &me, dir, name.as_bytes(), &node(kind, 0o755))
                        .unwrap_or_else(|e| panic!("mknod {name}: {e}"));
                }
            });
        }
    });
    let mut names = Vec::new();
    let mut cookie = 0;
    loop {
        let page = meta.readdir(fs, dir, cookie, 100, false).expect("readdir");
        let Some(last) = page.last() else { break };
        cookie = last.cookie;
        names.extend(page.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()));
    }
    names.retain(|n| n != "." && n != "..");
    let total = (THREADS * EACH) as usize;
    assert_eq!(names.len(), total, "every create is listed");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "and listed once");
    let subdirs = THREADS * EACH.div_ceil(5);
    assert_eq!(meta.getattr(fs, dir).expect("getattr").nlink, 2 + subdirs, "no lost update of the directory's nlink");
    assert_eq!(meta.statfs(fs).expect("statfs").used_inodes, before + total as u64, "no lost update of used_inodes");
    eprintln!("{} serialization conflicts retried", store.conflicts());
}

/// A transaction that read a row another one changed and committed since gets a
/// serialization failure on writing it; `Meta` runs it again, on fresh rows.
#[test]
fn a_serialization_failure_is_retried() {
    let Some(schema) = Schema::new() else { return };
    let store = PostgresStore::connect(&schema.url(), 2).expect("connect");
    let meta = Meta::new(store.clone());
    let fs = meta.create_fs("retry", "uuid-retry").expect("create_fs").id;
    let root_ino = floe_meta::InodeId::ROOT;
    let attempts = AtomicUsize::new(0);
    let conflicts_before = store.conflicts();
    let size = meta
        .write_txn(|t| {
            let attr: Attr = t.get_inode(fs, root_ino)?.ok_or(MetaError::NotFound)?;
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                // Another writer changes the root directory and commits meanwhile.
                std::thread::scope(|s| {
                    s.spawn(|| {
                        meta.mknod(fs, &Caller::root(), root_ino, b"other", &node(FileKind::File, 0o644))
                            .expect("mknod")
                    })
                    .join()
                    .expect("the other writer");
                });
            }
            t.put_inode(fs, &Attr { size: attr.size + 1, ..attr })?;
            Ok(attr.size + 1)
        })
        .expect("the write succeeds on its second attempt");
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert!(store.conflicts() > conflicts_before);
    let root = meta.getattr(fs, root_ino).expect("getattr");
    assert_eq!(root.size, size);
    meta.lookup(fs, &Caller::root(), root_ino, b"other").expect("the other writer's file is kept");
}

/// Nodes starting together against an empty schema: one creates the tables, the
/// others wait for it and find them.
#[test]
fn concurrent_start_ups_create_the_schema_once() {
    let Some(schema) = Schema::new() else { return };
    let url = schema.url();
    std::thread::scope(|s| {
        let opens: Vec<_> = (0..4).map(|_| s.spawn(|| open_url(&url).map(|m| m.list_fs()))).collect();
        for open in opens {
            let listed = open.join().expect("thread").expect("open_url");
            assert_eq!(listed.expect("list_fs"), vec![]);
        }
    });
}

fn assert_one_line(e: &OpenError, wants: &[&str]) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    for want in wants {
        assert!(text.contains(want), "{text:?} should mention {want:?}");
    }
}

/// `scheme://user:password@authority/database` split at the password and database.
fn parts(url: &str) -> (String, String, String) {
    let (front, rest) = url.split_once('@').expect("FLOE_TEST_POSTGRES has user:password@");
    let (user_part, _password) = front.rsplit_once(':').expect("FLOE_TEST_POSTGRES has a password");
    let (host, database) = rest.split_once('/').expect("FLOE_TEST_POSTGRES names a database");
    (user_part.to_string(), host.to_string(), database.to_string())
}

#[test]
fn a_bad_url_is_refused() {
    let e = open_url("postgres://floe:s3cret@127.0.0.1:notaport/floe").err().expect("refused");
    assert!(matches!(e, OpenError::BadUrl { .. }), "{e:?}");
    assert_one_line(&e, &["postgres://floe:***@127.0.0.1:notaport/floe", "expected"]);
    assert!(!e.to_string().contains("s3cret"));
}

#[test]
fn an_unreachable_server_is_refused() {
    // Port 1 on loopback: nothing listens there.
    let e = open_url("postgres://floe:floe@127.0.0.1:1/floe").err().expect("refused");
    assert!(matches!(e, OpenError::Unreachable { .. }), "{e:?}");
    assert_one_line(&e, &["127.0.0.1:1", "server is running"]);
}

#[test]
fn a_wrong_password_is_refused() {
    let Some(url) = server_url() else { return };
    let (user, host, database) = parts(&url);
    let e = open_url(&format!("{user}:wrong-password@{host}/{database}")).err().expect("refused");
    assert!(matches!(e, OpenError::Credentials { .. }), "{e:?}");
    assert_one_line(&e, &[&host, "password"]);
    assert!(!e.to_string().contains("wrong-password"));
}

#[test]
fn a_missing_database_is_refused() {
    let Some(url) = server_url() else { return };
    let (user, host, _) = parts(&url);
    let password = url.split_once('@').and_then(|(f, _)| f.rsplit_once(':')).map(|(_, p)| p.to_string());
    let url = format!("{user}:{}@{host}/floe_no_such_database", password.unwrap_or_default());
    let e = open_url(&url).err().expect("refused");
    assert_eq!(e, OpenError::NoDatabase { server: host.clone(), database: "floe_no_such_database".into() });
    assert_one_line(&e, &["floe_no_such_database", "createdb"]);
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(schema) = Schema::new() else { return };
    drop(open_url(&schema.url()).expect("first start-up creates the schema"));
    schema.admin("UPDATE schema_version SET version = 99");
    let e = open_url(&schema.url()).err().expect("refused");
    assert!(matches!(e, OpenError::SchemaTooNew { found: 99, supported: 1, .. }), "{e:?}");
    assert_one_line(&e, &["version 99", "newer floe"]);
}

#[test]
fn another_programs_tables_are_refused() {
    let Some(schema) = Schema::new() else { return };
    schema.admin("CREATE TABLE users(id BIGINT)");
    let e = open_url(&schema.url()).err().expect("refused");
    assert!(matches!(e, OpenError::ForeignTables { .. }), "{e:?}");
    assert_one_line(&e, &["users", &schema.name, "of its own"]);
}

#[test]
fn a_search_path_without_a_schema_is_refused() {
    let Some(url) = server_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let e = open_url(&format!("{url}{sep}options=-csearch_path%3Dfloe_no_such_schema")).err().expect("refused");
    assert_one_line(&e, &["search_path"]);
}

/// What one node wrote, another node (another store on the same schema) reads.
#[test]
fn a_second_node_sees_the_first_ones_writes() {
    let Some(schema) = Schema::new() else { return };
    let first = open_url(&schema.url()).expect("first node");
    let second = open_url(&schema.url()).expect("second node");
    let fs = first.create_fs("shared", "uuid-shared").expect("create_fs");
    first.mknod(fs.id, &Caller::root(), floe_meta::InodeId::ROOT, b"f", &node(FileKind::File, 0o600)).expect("mknod");
    assert_eq!(second.fs_by_name("shared").expect("fs_by_name").id, fs.id);
    second.lookup(fs.id, &Caller::root(), floe_meta::InodeId::ROOT, b"f").expect("lookup on the second node");
}

/// The node's async handlers call `Meta` directly: opening, using and dropping the
/// store on a Tokio runtime's threads (both kinds) must neither panic nor hang.
#[test]
fn works_on_a_tokio_runtime() {
    let Some(schema) = Schema::new() else { return };
    let url = schema.url();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    let current = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for (i, runtime) in [multi, current].iter().enumerate() {
        let url = url.clone();
        runtime.block_on(async move {
            let meta = open_url(&url).expect("open_url inside a runtime");
            let name = format!("in-runtime-{i}");
            let fs = meta.create_fs(&name, &name).expect("create_fs").id;
            meta.mknod(fs, &Caller::root(), floe_meta::InodeId::ROOT, b"f", &node(FileKind::File, 0o644))
                .expect("mknod");
            meta.lookup(fs, &Caller::root(), floe_meta::InodeId::ROOT, b"f").expect("lookup");
            // The last handle goes here, on the runtime's thread.
            drop(meta);
        });
    }
}

/// A connection the server drops (a restart, an administrator, a failover) costs a
/// retry on a new connection, not an error.
#[test]
fn a_dropped_connection_is_replaced() {
    let Some(schema) = Schema::new() else { return };
    let app = format!("{}_app", schema.name);
    let store = PostgresStore::connect(&format!("{}&application_name={app}", schema.url()), 1).expect("connect");
    let meta = Meta::new(store);
    let fs = meta.create_fs("dropped", "uuid-dropped").expect("create_fs").id;
    let kill = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'");
    for i in 0..3 {
        schema.admin(&kill);
        let name = format!("after-kill-{i}");
        meta.mknod(fs, &Caller::root(), floe_meta::InodeId::ROOT, name.as_bytes(), &node(FileKind::File, 0o644))
            .unwrap_or_else(|e| panic!("mknod after the connection was killed: {e}"));
        schema.admin(&kill);
        meta.lookup(fs, &Caller::root(), floe_meta::InodeId::ROOT, name.as_bytes()).expect("lookup after a kill");
    }
}

/// Two owners racing for a write lock on one range: each reads the file's locks, finds
/// none in its way and inserts its own row. Only serializable isolation makes the
/// second one to commit see the first one's lock (a write skew under REPEATABLE READ).
#[test]
fn racing_lockers_never_both_win() {
    use floe_meta::{Lock, LockOwner, LockType, SetLock};
    let Some((_schema, meta)) = open() else { return };
    let fs = meta.create_fs("locks", "uuid-locks").expect("create_fs").id;
    let f = meta
        .mknod(fs, &Caller::root(), floe_meta::InodeId::ROOT, b"f", &node(FileKind::File, 0o644))
        .expect("mknod")
        .ino;
    let session = meta.open_session(fs, "racing lockers").expect("open_session");
    let lock = |owner: u64, typ: LockType| Lock {
        owner: LockOwner { session, owner },
        typ,
        start: 0,
        end: 99,
        pid: owner as u32,
    };
    for round in 0..30 {
        let barrier = std::sync::Barrier::new(2);
        let won: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = [1, 2]
                .map(|owner| {
                    let (meta, barrier) = (&meta, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        matches!(meta.set_lock(fs, f, &lock(owner, LockType::Write)).expect("set_lock"), SetLock::Done)
                    })
                })
                .into_iter()
                .collect();
            racers.into_iter().map(|r| r.join().expect("racer")).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: exactly one owner gets the lock: {won:?}");
        for owner in [1, 2] {
            meta.set_lock(fs, f, &lock(owner, LockType::Unlock)).expect("unlock");
        }
    }
}

// ---- TLS: sslmode and sslrootcert (scripts/postgres's server takes TLS with a
// certificate for 127.0.0.1 and localhost, signed by the CA in FLOE_TEST_POSTGRES_CA).

/// A schema of its own and the CA that signed the server's certificate, or `None`
/// (after saying so) without a TLS server to test against.
fn tls_schema() -> Option<(Schema, String)> {
    let ca = match std::env::var("FLOE_TEST_POSTGRES_CA") {
        Ok(ca) if !ca.trim().is_empty() => ca.trim().to_string(),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("FLOE_TEST_POSTGRES_CA is not set, and CI must run the TLS tests (eval \"$(scripts/postgres)\")")
        }
        _ => {
            eprintln!("skipped: FLOE_TEST_POSTGRES_CA is not set (scripts/postgres sets it)");
            return None;
        }
    };
    Some((Schema::new()?, ca))
}

/// The schema's URL with the host name replaced by `host`, still reaching the server
/// at its address (`hostaddr`): the certificate is checked against `host`.
fn as_host(schema: &Schema, host: &str) -> String {
    let url = schema.url();
    let (front, rest) = url.split_once('@').expect("user:password@");
    let (address, after_host) = rest.split_once(':').expect("host:port");
    format!("{front}@{host}:{after_host}&hostaddr={address}")
}

/// A CA certificate (made with openssl for these tests) that signed nothing.
const FOREIGN_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBxTCCAWugAwIBAgIUZOWVXX/96ETEtQ2OwMjWt3dYvrIwCgYIKoZIzj0EAwIw
LzEtMCsGA1UEAwwkZmxvZSB0ZXN0czogYSBDQSB0aGF0IHNpZ25lZCBub3RoaW5n
MCAXDTI2MTIwMzEzNTk0NloYDzIxMjYxMTA5MTM1OTQ2WjAvMS0wKwYDVQQDDCRm
bG9lIHRlc3RzOiBhIENBIHRoYXQgc2lnbmVkIG5vdGhpbmcwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQGBjhTrA0ItjuFA9HEhn0/b2SEMKdKZKwVYAZuGTYwy+QE
p1Ka/Q61Q6BNVXapQQ3jXOfugYspVd+u0m4BiVIko2MwYTAdBgNVHQ4EFgQURGnN
PaeKYsjsyta9rCQkYyImoTcwHwYDVR0jBBgwFoAURGnNPaeKYsjsyta9rCQkYyIm
oTcwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwCgYIKoZIzj0EAwID
SAAwRQIgRDxMYLi8j6E55CowZdouDJYIt1+tchhWmtOt4OZ7G6gCIQCegzKyas4Q
lbliiF0rDhuTVnU7xXR/Fmfil1MpsWKQPQ==
-----END CERTIFICATE-----
";

/// Connects with `url` and says whether the server sees the session encrypted.
fn tls_in_use(url: &str) -> bool {
    let store = PostgresStore::connect(url, 1).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    store.tls_in_use().expect("pg_stat_ssl")
}

fn refusal(url: &str) -> OpenError {
    match PostgresStore::connect(url, 1) {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e,
    }
}

#[test]
fn tls_modes_decide_whether_the_session_is_encrypted() {
    let Some((schema, _)) = tls_schema() else { return };
    let url = schema.url();
    assert!(tls_in_use(&format!("{url}&sslmode=require")), "require: encrypted");
    // libpq's default, prefer: TLS when the server offers it.
    assert!(tls_in_use(&url), "prefer: encrypted");
    assert!(!tls_in_use(&format!("{url}&sslmode=disable")), "disable: plaintext");
    // The key=value form as well.
    let (user, host, database) = parts(&schema.server);
    let (address, port) = host.split_once(':').expect("host:port");
    let user = user.rsplit('/').next().expect("user");
    let password = schema.server.split_once('@').and_then(|(f, _)| f.rsplit_once(':')).map(|(_, p)| p).unwrap_or("");
    let kv = format!(
        "host={address} port={port} user={user} password={password} dbname={database} sslmode = 'require' options='-csearch_path={}'",
        schema.name
    );
    assert!(tls_in_use(&kv), "key=value sslmode=require: encrypted");
}

#[test]
fn verify_full_connects_to_the_names_the_certificate_lists() {
    let Some((schema, ca)) = tls_schema() else { return };
    let ca = ca.replace('/', "%2F");
    // 127.0.0.1 is one of its IP addresses, localhost one of its DNS names.
    assert!(tls_in_use(&format!("{}&sslmode=verify-full&sslrootcert={ca}", schema.url())));
    assert!(tls_in_use(&format!("{}&sslmode=verify-full&sslrootcert={ca}", as_host(&schema, "localhost"))));
    // SCRAM bound to the TLS session (tls-server-end-point): a wrong hash fails the login.
    assert!(tls_in_use(&format!("{}&sslmode=verify-full&sslrootcert={ca}&channel_binding=require", schema.url())));
    // And floe works over it.
    let meta = open_url(&format!("{}&sslmode=verify-full&sslrootcert={ca}", schema.url())).expect("open_url");
    meta.create_fs("over-tls", "uuid-over-tls").expect("create_fs");
}

#[test]
fn a_certificate_for_another_name_is_refused_by_verify_full_only() {
    let Some((schema, ca)) = tls_schema() else { return };
    let url = as_host(&schema, "wrong.example");
    let e = refusal(&format!("{url}&sslmode=verify-full&sslrootcert={ca}"));
    assert!(matches!(e, OpenError::WrongHost { .. }), "{e:?}");
    assert_one_line(&e, &["wrong.example", "localhost", "verify-ca"]);
    // verify-ca checks who signed it, not the name; require with a CA does the same.
    assert!(tls_in_use(&format!("{url}&sslmode=verify-ca&sslrootcert={ca}")));
    assert!(tls_in_use(&format!("{url}&sslmode=require&sslrootcert={ca}")));
}

#[test]
fn a_certificate_no_trusted_ca_signed_is_refused() {
    let Some((schema, _)) = tls_schema() else { return };
    let url = schema.url();
    // The test CA is in no system's store.
    let e = refusal(&format!("{url}&sslmode=verify-full"));
    assert!(matches!(e, OpenError::Untrusted { .. } | OpenError::NoSystemRoots { .. }), "{e:?}");
    assert_one_line(&e, &["sslrootcert"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let foreign = dir.path().join("foreign.pem");
    std::fs::write(&foreign, FOREIGN_CA).expect("write");
    for mode in ["verify-ca", "require", "prefer"] {
        let e = refusal(&format!("{url}&sslmode={mode}&sslrootcert={}", foreign.display()));
        assert!(matches!(e, OpenError::Untrusted { .. }), "{mode}: {e:?}");
        assert_one_line(&e, &[&foreign.display().to_string(), "UnknownIssuer", "127.0.0.1"]);
        assert!(!e.to_string().contains(":floe@"), "no password: {e}");
    }
}

#[test]
fn an_unusable_sslrootcert_is_refused_before_connecting() {
    // Port 1: nothing listens, so only the file can be what is refused.
    let e = refusal("postgres://floe:s3cret@127.0.0.1:1/floe?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    assert!(matches!(e, OpenError::RootCert { .. }), "{e:?}");
    assert_one_line(&e, &["/nonexistent/ca.pem", "No such file", "PEM"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let e =
        refusal(&format!("postgres://floe:s3cret@127.0.0.1:1/floe?sslmode=require&sslrootcert={}", garbage.display()));
    assert_one_line(&e, &[&garbage.display().to_string(), "no PEM certificate"]);
    let e = refusal("postgres://floe:s3cret@127.0.0.1:1/floe?sslmode=verify");
    assert!(matches!(e, OpenError::BadUrl { .. }), "{e:?}");
    assert_one_line(&e, &["verify-full", "floe:***@"]);
    assert!(!e.to_string().contains("s3cret"));
}

/// A server that answers the TLS request with no, as PostgreSQL with `ssl = off` does
/// (the test server has it on, so this answers in its place and hangs up).
#[test]
fn a_server_without_tls_is_refused_when_tls_is_required() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut socket, _) = listener.accept().expect("accept");
        let mut request = [0u8; 8]; // length 8, code 80877103
        socket.read_exact(&mut request).expect("SSLRequest");
        assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
        socket.write_all(b"N").expect("answer");
    });
    let e = refusal(&format!("postgres://floe:s3cret@127.0.0.1:{port}/floe?sslmode=require"));
    server.join().expect("server");
    assert!(matches!(e, OpenError::NoTls { .. }), "{e:?}");
    assert_one_line(&e, &[&format!("127.0.0.1:{port}"), "sslmode=require", "ssl on"]);
}

/// Waits until some backend is blocked by backend `pid`, and returns the first such
/// one's pid; `None` once `done` says there is no need to wait any more.
fn blocked_by(client: &mut postgres::Client, pid: i32, done: &dyn Fn() -> bool) -> Option<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let rows = client
            .query("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", &[&pid])
            .expect("pg_stat_activity");
        if let Some(row) = rows.first() {
            return Some(row.get(0));
        }
        if done() {
            return None;
        }
        assert!(std::time::Instant::now() < deadline, "nothing got blocked by backend {pid} in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A write committed beside a compaction of the same chunk ends on top of it: in
/// any serial order the write is newer than every byte the compactor merged. Row
/// order by an identity column alone follows the order ids were drawn, not the
/// order transactions committed, so the compaction must conflict with the write.
///
/// The losing interleaving is forced: the compaction reads the chunk, then waits to
/// insert its merged slice (this test holds an uncommitted row with that id) while
/// the write runs; only then may the compaction go on. Without the conflict, the
/// write commits at once and the merged bytes land on top of it.
#[test]
fn a_write_beside_a_compaction_stays_on_top() {
    use floe_meta::{NewSlice, Placement, SliceRef};
    let Some(schema) = Schema::new() else { return };
    let meta = Meta::new(PostgresStore::connect(&schema.url(), 4).expect("connect"));
    let fs = meta.create_fs("compact", "uuid-compact").expect("create_fs").id;
    let root = Caller::root();
    let ino = meta.mknod(fs, &root, floe_meta::InodeId::ROOT, b"f", &node(FileKind::File, 0o644)).expect("mknod").ino;
    let inline_write = |byte: u8| {
        let id = meta.next_slice_ids(fs, 1).expect("slice id");
        let data = vec![byte; 8];
        let r = SliceRef { id, size: 8, off: 0, len: 8, pos: 0, inline: None };
        meta.commit_write(fs, ino, &[NewSlice { id, size: 8, inline: Some(&data) }], &[Placement { chunk: 0, r }], 8)
            .expect("commit_write");
        id
    };
    for byte in 0..4 {
        inline_write(byte);
    }
    let old = meta.read_chunk(fs, ino, 0).expect("read_chunk");
    let merged = meta.next_slice_ids(fs, 1).expect("slice id");
    let data = vec![200u8; 8];
    let mut blocker = postgres::Client::connect(&schema.url(), postgres::NoTls).expect("connect");
    // Slices between the merged one and the write's, so that their index entries are
    // pages apart: PostgreSQL takes predicate locks on index pages, and a shared page
    // would abort one of the two for a reason that has nothing to do with the chunk.
    let fillers = meta.next_slice_ids(fs, 2000).expect("slice ids");
    blocker
        .execute(
            "INSERT INTO slices(fs, id, size, refs) SELECT $1, g, 8, 1 FROM generate_series($2::BIGINT, $3::BIGINT) g",
            &[&(fs.0 as i64), &(fillers.0 as i64), &(fillers.0 as i64 + 1999)],
        )
        .expect("filler slices");

    let mut watcher = postgres::Client::connect(&schema.url(), postgres::NoTls).expect("connect");
    let mut hold = blocker.transaction().expect("begin");
    let holder: i32 = hold.query_one("SELECT pg_backend_pid()", &[]).expect("pid").get(0);
    hold.execute("INSERT INTO slices(fs, id, size) VALUES ($1, $2, 8)", &[&(fs.0 as i64), &(merged.0 as i64)])
        .expect("hold the merged slice's id");
    let written_done = std::sync::atomic::AtomicBool::new(false);
    let (compacted, written) = std::thread::scope(|s| {
        let compaction = s.spawn(|| {
            let new = SliceRef { id: merged, size: 8, off: 0, len: 8, pos: 0, inline: None };
            let merged_slice = NewSlice { id: merged, size: 8, inline: Some(&data) };
            meta.replace_chunk_prefix(fs, ino, 0, &old, &merged_slice, &[new]).expect("replace_chunk_prefix")
        });
        let compactor = blocked_by(&mut watcher, holder, &|| false).expect("the compaction waits");
        let writer = s.spawn(|| {
            let id = inline_write(99);
            written_done.store(true, std::sync::atomic::Ordering::SeqCst);
            id
        });
        // Either the write waits for the compaction, or it committed meanwhile.
        blocked_by(&mut watcher, compactor, &|| written_done.load(std::sync::atomic::Ordering::SeqCst));
        hold.rollback().expect("let the compaction go on");
        (compaction.join().expect("compaction"), writer.join().expect("writer"))
    });
    assert!(compacted, "the compaction found the chunk it read");
    let refs = meta.read_chunk(fs, ino, 0).expect("read_chunk");
    assert_eq!(refs.last().map(|r| r.id), Some(written), "the write is not on top: {refs:?}");
}
