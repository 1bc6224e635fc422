//! The embedded metadata backend: one SQLite database in WAL mode.
//!
//! One connection writes (`BEGIN IMMEDIATE`, so writers queue instead of failing at
//! commit); a small pool of connections serves read transactions concurrently. Several
//! processes may open the same file: SQLite's file locks serialize their writers and
//! `busy_timeout` makes them wait.

use crate::ops::access_point::{AccessPoint, AccessPointId, FsPolicy, RootCreation};
use crate::ops::records::Record;
use crate::ops::{FileSystemInfo, Lock, LockOwner, LockType, SessionInfo, SliceInfo};
use crate::store::{Counter, Dentry, MetaStore, MetaTxn, TxnMode};
use crate::{Attr, Caller, FileKind, FileSystemId, InodeId, MetaError, Result, SessionId, SliceId, SliceRef, TimeSpec};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

const SCHEMA_VERSION: i64 = 1;
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS file_systems(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uuid TEXT NOT NULL,
    created INTEGER NOT NULL, next_inode INTEGER NOT NULL, next_slice INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL DEFAULT 0, used_inodes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS inodes(
    fs INTEGER NOT NULL, ino INTEGER NOT NULL, kind INTEGER NOT NULL, perm INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL, size INTEGER NOT NULL,
    rdev INTEGER NOT NULL, atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
    parent INTEGER NOT NULL, PRIMARY KEY(fs, ino)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inodes_unlinked ON inodes(fs, ino) WHERE nlink = 0;
CREATE TABLE IF NOT EXISTS dentries(
    cookie INTEGER PRIMARY KEY AUTOINCREMENT, fs INTEGER NOT NULL, parent INTEGER NOT NULL,
    name BLOB NOT NULL, ino INTEGER NOT NULL, kind INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS dentries_name ON dentries(fs, parent, name);
CREATE INDEX IF NOT EXISTS dentries_order ON dentries(fs, parent, cookie);
CREATE TABLE IF NOT EXISTS symlinks(
    fs INTEGER NOT NULL, ino INTEGER NOT NULL, target BLOB NOT NULL, PRIMARY KEY(fs, ino)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xattrs(
    fs INTEGER NOT NULL, ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY(fs, ino, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk_refs(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, fs INTEGER NOT NULL, ino INTEGER NOT NULL,
    chunk INTEGER NOT NULL, slice INTEGER NOT NULL, size INTEGER NOT NULL, off INTEGER NOT NULL,
    len INTEGER NOT NULL, pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_refs_file ON chunk_refs(fs, ino, chunk, seq);
CREATE TABLE IF NOT EXISTS slices(
    fs INTEGER NOT NULL, id INTEGER NOT NULL, size INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0,
    inline BLOB, owner INTEGER, PRIMARY KEY(fs, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS slices_garbage ON slices(fs, id) WHERE refs = 0;
CREATE TABLE IF NOT EXISTS sessions(
    id INTEGER PRIMARY KEY AUTOINCREMENT, fs INTEGER NOT NULL, info TEXT NOT NULL,
    started INTEGER NOT NULL, heartbeat INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sustained(
    session INTEGER NOT NULL, fs INTEGER NOT NULL, ino INTEGER NOT NULL,
    PRIMARY KEY(session, fs, ino)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sustained_ino ON sustained(fs, ino);
CREATE TABLE IF NOT EXISTS access_points(
    id TEXT PRIMARY KEY, fs INTEGER NOT NULL, path TEXT NOT NULL, uid INTEGER NOT NULL,
    gid INTEGER NOT NULL, groups TEXT NOT NULL, owner_uid INTEGER, owner_gid INTEGER, mode INTEGER,
    created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS access_points_fs ON access_points(fs, id);
CREATE TABLE IF NOT EXISTS fs_policies(
    fs INTEGER PRIMARY KEY, read_only INTEGER NOT NULL, root_squash INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS locks(
    fs INTEGER NOT NULL, ino INTEGER NOT NULL, session INTEGER NOT NULL, owner INTEGER NOT NULL,
    typ INTEGER NOT NULL, range_start INTEGER NOT NULL, range_end INTEGER NOT NULL, pid INTEGER NOT NULL,
    PRIMARY KEY(fs, ino, session, owner, range_start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS locks_session ON locks(session);
CREATE TABLE IF NOT EXISTS records(
    kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, revision INTEGER NOT NULL,
    PRIMARY KEY(kind, name)) WITHOUT ROWID;
";

/// Metadata in one SQLite database file.
pub struct SqliteStore {
    /// Shared with the checkpointer, which holds it while it checkpoints.
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    commits: AtomicUsize,
    /// Wakes the checkpointer early; dropping it stops the checkpointer.
    checkpoint: Mutex<mpsc::Sender<()>>,
    /// The write-ahead log, kept open to sync it (`MetaStore::sync`).
    wal: Mutex<std::fs::File>,
}

/// Commits between checkpoints requested by writers (besides one every second).
const CHECKPOINT_EVERY: usize = 200;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Arc<SqliteStore>> {
        let writer = open_connection(path)?;
        migrate(&writer)?;
        let writer = Arc::new(Mutex::new(writer));
        let readers = (0..READERS).map(|_| open_connection(path).map(Mutex::new)).collect::<Result<_>>()?;
        let checkpoint = spawn_checkpointer(open_connection(path)?, Arc::clone(&writer));
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .open(&wal_path)
            .map_err(|e| MetaError::Backend(format!("opening {}: {e}", Path::new(&wal_path).display())))?;
        Ok(Arc::new(SqliteStore {
            wal: Mutex::new(wal),
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
            checkpoint: Mutex::new(checkpoint),
        }))
    }
}

/// Checkpoints the WAL on a thread of its own, every [`CHECKPOINT_EVERY`] commits or
/// every second, holding this process's writer meanwhile. A checkpoint only lets the
/// WAL start again from its beginning when it copied every frame and the next write
/// transaction begins before any other frame is appended; under a steady stream of
/// writes that never happened and the WAL grew by every commit (measured: 620 MB
/// after 20,000 creates, 31 KB each, and appending to a growing file costs the kernel
/// a zeroed page per frame). Holding the writer for the few milliseconds a checkpoint
/// takes bounds the WAL to about [`CHECKPOINT_EVERY`] commits.
fn spawn_checkpointer(conn: Connection, writer: Arc<Mutex<Connection>>) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("floe-sqlite-checkpoint".into()).spawn(move || loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                while rx.try_recv().is_ok() {}
                let _writes_wait = lock(&writer);
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
                return;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the SQLite checkpointer; the WAL will grow until restart");
    }
    tx
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    // NORMAL in WAL mode: a commit survives a crash of any process; a power cut may
    // lose the last commits but never corrupts the database.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-65536;")
        .map_err(backend)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
    let result = (|| {
        conn.execute_batch(SCHEMA).map_err(backend)?;
        let found: Option<i64> =
            conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).optional().map_err(backend)?;
        match found {
            None => {
                conn.execute("INSERT INTO schema_version(version) VALUES (?1)", [SCHEMA_VERSION]).map_err(backend)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(MetaError::SchemaTooNew { found: v, supported: SCHEMA_VERSION })
            }
            Some(_) => {}
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(backend),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn backend(e: rusqlite::Error) -> MetaError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
            return MetaError::Conflict;
        }
        if f.code == rusqlite::ErrorCode::DiskFull {
            return MetaError::NoSpace;
        }
    }
    MetaError::Backend(e.to_string())
}

impl MetaStore for SqliteStore {
    fn begin(&self, mode: TxnMode) -> Result<Box<dyn MetaTxn + '_>> {
        let conn = match mode {
            TxnMode::Write => lock(&self.writer),
            TxnMode::Read => {
                let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                lock(&self.readers[i])
            }
        };
        conn.execute_batch(if mode == TxnMode::Write { "BEGIN IMMEDIATE" } else { "BEGIN" }).map_err(backend)?;
        if mode == TxnMode::Write && self.commits.fetch_add(1, Ordering::Relaxed).is_multiple_of(CHECKPOINT_EVERY) {
            let _ = lock_sender(&self.checkpoint).send(());
        }
        Ok(Box::new(SqliteTxn { conn, open: true }))
    }

    fn sync(&self) -> Result<()> {
        // With synchronous=NORMAL a commit is in the WAL file, not yet on disk: syncing
        // the WAL makes it (and every earlier one) durable, as synchronous=FULL would
        // for every commit.
        let wal = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        wal.sync_data().map_err(|e| MetaError::Backend(format!("syncing the SQLite WAL: {e}")))
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

fn lock_sender(m: &Mutex<mpsc::Sender<()>>) -> MutexGuard<'_, mpsc::Sender<()>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection leaves no transaction open (the guard's drop
    // rolled it back), so the connection is still good.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SqliteTxn<'a> {
    conn: MutexGuard<'a, Connection>,
    open: bool,
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn row_to_attr(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attr> {
    let kind: i64 = r.get(1)?;
    Ok(Attr {
        ino: InodeId(r.get::<_, i64>(0)? as u64),
        kind: FileKind::from_code(kind).unwrap_or(FileKind::File),
        perm: r.get::<_, i64>(2)? as u16,
        uid: r.get::<_, i64>(3)? as u32,
        gid: r.get::<_, i64>(4)? as u32,
        nlink: r.get::<_, i64>(5)? as u32,
        size: r.get::<_, i64>(6)? as u64,
        rdev: r.get::<_, i64>(7)? as u32,
        atime: TimeSpec(r.get(8)?),
        mtime: TimeSpec(r.get(9)?),
        ctime: TimeSpec(r.get(10)?),
        parent: InodeId(r.get::<_, i64>(11)? as u64),
    })
}

fn row_to_fs(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileSystemInfo> {
    Ok(FileSystemInfo {
        id: FileSystemId(r.get::<_, i64>(0)? as u64),
        name: r.get(1)?,
        uuid: r.get(2)?,
        created: TimeSpec(r.get(3)?),
        used_bytes: r.get::<_, i64>(4)?.max(0) as u64,
        used_inodes: r.get::<_, i64>(5)?.max(0) as u64,
    })
}

fn row_to_dentry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Dentry> {
    Ok(Dentry {
        name: r.get(0)?,
        ino: InodeId(r.get::<_, i64>(1)? as u64),
        kind: FileKind::from_code(r.get(2)?).unwrap_or(FileKind::File),
        cookie: r.get::<_, i64>(3)? as u64,
    })
}

const SESSION_COLUMNS: &str = "id, fs, info, started, heartbeat";

fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        id: SessionId(r.get::<_, i64>(0)? as u64),
        fs: FileSystemId(r.get::<_, i64>(1)? as u64),
        info: r.get(2)?,
        started: TimeSpec(r.get(3)?),
        heartbeat: TimeSpec(r.get(4)?),
    })
}

fn row_to_slice_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<SliceInfo> {
    Ok(SliceInfo {
        id: SliceId(r.get::<_, i64>(0)? as u64),
        size: r.get::<_, i64>(1)? as u32,
        inline: r.get::<_, bool>(2)?,
    })
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record { name: r.get(0)?, body: r.get(1)?, revision: r.get::<_, i64>(2)? as u64 })
}

fn row_to_access_point(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessPoint> {
    let id: String = r.get(0)?;
    let groups: String = r.get(5)?;
    let creation = match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?, r.get::<_, Option<i64>>(8)?) {
        (Some(uid), Some(gid), Some(mode)) => {
            Some(RootCreation { uid: uid as u32, gid: gid as u32, mode: mode as u16 })
        }
        _ => None,
    };
    Ok(AccessPoint {
        // Ids are checked before they are stored.
        id: AccessPointId::parse(&id).map_err(|e| rusqlite::Error::InvalidColumnName(format!("{id}: {e}")))?,
        fs: FileSystemId(r.get::<_, i64>(1)? as u64),
        path: r.get(2)?,
        identity: Caller {
            uid: r.get::<_, i64>(3)? as u32,
            gid: r.get::<_, i64>(4)? as u32,
            groups: groups.split(',').filter_map(|g| g.parse().ok()).collect(),
        },
        creation,
        created: TimeSpec(r.get(9)?),
    })
}

const AP_COLUMNS: &str = "id, fs, path, uid, gid, groups, owner_uid, owner_gid, mode, created";

const FS_COLUMNS: &str = "id, name, uuid, created, used_bytes, used_inodes";

impl SqliteTxn<'_> {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.conn.prepare_cached(sql).and_then(|mut s| s.execute(params)).map_err(backend)
    }

    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        self.conn.prepare_cached(sql).and_then(|mut s| s.query_row(params, f).optional()).map_err(backend)
    }

    fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map(params, f)?.collect::<rusqlite::Result<Vec<T>>>())
            .map_err(backend)
    }

    /// Uncounts the references of the chunk rows matched by `filter` on their slices.
    fn uncount_refs(&self, fs: FileSystemId, ino: InodeId, filter: &str, arg: i64) -> Result<()> {
        let sql = format!(
            "UPDATE slices SET refs = refs - (SELECT count(*) FROM chunk_refs c WHERE c.fs = ?1 AND c.ino = ?2 AND {filter} AND c.slice = slices.id)
             WHERE fs = ?1 AND id IN (SELECT slice FROM chunk_refs c WHERE c.fs = ?1 AND c.ino = ?2 AND {filter})"
        );
        self.exec(&sql, params![fs.0 as i64, ino.0 as i64, arg])?;
        Ok(())
    }
}

impl MetaTxn for SqliteTxn<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(backend)?;
        self.open = false;
        Ok(())
    }

    fn insert_fs(&mut self, name: &str, uuid: &str, now: TimeSpec) -> Result<FileSystemId> {
        self.exec(
            "INSERT INTO file_systems(name, uuid, created, next_inode, next_slice) VALUES (?1, ?2, ?3, 2, 1)",
            params![name, uuid, now.0],
        )?;
        Ok(FileSystemId(self.conn.last_insert_rowid() as u64))
    }

    fn fs_by_name(&mut self, name: &str) -> Result<Option<FileSystemInfo>> {
        self.one(&format!("SELECT {FS_COLUMNS} FROM file_systems WHERE name = ?1"), [name], row_to_fs)
    }

    fn list_fs(&mut self) -> Result<Vec<FileSystemInfo>> {
        self.all(&format!("SELECT {FS_COLUMNS} FROM file_systems ORDER BY name"), [], row_to_fs)
    }

    fn delete_fs(&mut self, fs: FileSystemId) -> Result<()> {
        for table in
            ["inodes", "dentries", "symlinks", "xattrs", "chunk_refs", "slices", "sustained", "sessions", "locks"]
        {
            self.exec(&format!("DELETE FROM {table} WHERE fs = ?1"), [fs.0 as i64])?;
        }
        for table in ["access_points", "fs_policies"] {
            self.exec(&format!("DELETE FROM {table} WHERE fs = ?1"), [fs.0 as i64])?;
        }
        self.exec("DELETE FROM file_systems WHERE id = ?1", [fs.0 as i64])?;
        Ok(())
    }

    fn next_ids(&mut self, fs: FileSystemId, counter: Counter, n: u64) -> Result<u64> {
        let col = match counter {
            Counter::Inode => "next_inode",
            Counter::Slice => "next_slice",
        };
        let sql = format!("UPDATE file_systems SET {col} = {col} + ?2 WHERE id = ?1 RETURNING {col} - ?2");
        self.one(&sql, params![fs.0 as i64, n as i64], |r| r.get::<_, i64>(0))?
            .map(|v| v as u64)
            .ok_or(MetaError::NoFileSystem(fs.to_string()))
    }

    fn add_usage(&mut self, fs: FileSystemId, bytes: i64, inodes: i64) -> Result<()> {
        self.exec(
            "UPDATE file_systems SET used_bytes = used_bytes + ?2, used_inodes = used_inodes + ?3 WHERE id = ?1",
            params![fs.0 as i64, bytes, inodes],
        )?;
        Ok(())
    }

    fn get_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Attr>> {
        self.one(
            "SELECT ino, kind, perm, uid, gid, nlink, size, rdev, atime, mtime, ctime, parent FROM inodes WHERE fs = ?1 AND ino = ?2",
            params![fs.0 as i64, ino.0 as i64],
            row_to_attr,
        )
    }

    fn put_inode(&mut self, fs: FileSystemId, a: &Attr) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO inodes(fs, ino, kind, perm, uid, gid, nlink, size, rdev, atime, mtime, ctime, parent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                fs.0 as i64, a.ino.0 as i64, a.kind as i64, a.perm as i64, a.uid as i64, a.gid as i64,
                a.nlink as i64, a.size as i64, a.rdev as i64, a.atime.0, a.mtime.0, a.ctime.0, a.parent.0 as i64
            ],
        )?;
        Ok(())
    }

    fn delete_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec("DELETE FROM inodes WHERE fs = ?1 AND ino = ?2", params![fs.0 as i64, ino.0 as i64])?;
        Ok(())
    }

    fn unlinked_inodes(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<InodeId>> {
        self.all(
            "SELECT ino FROM inodes WHERE fs = ?1 AND nlink = 0 LIMIT ?2",
            params![fs.0 as i64, limit as i64],
            |r| Ok(InodeId(r.get::<_, i64>(0)? as u64)),
        )
    }

    fn all_inodes(&mut self, fs: FileSystemId) -> Result<Vec<Attr>> {
        self.all(
            "SELECT ino, kind, perm, uid, gid, nlink, size, rdev, atime, mtime, ctime, parent FROM inodes WHERE fs = ?1",
            [fs.0 as i64],
            row_to_attr,
        )
    }

    fn all_dentries(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, Dentry)>> {
        self.all("SELECT name, ino, kind, cookie, parent FROM dentries WHERE fs = ?1", [fs.0 as i64], |r| {
            Ok((InodeId(r.get::<_, i64>(4)? as u64), row_to_dentry(r)?))
        })
    }

    fn all_refs(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, SliceId)>> {
        self.all("SELECT ino, slice FROM chunk_refs WHERE fs = ?1 AND slice != 0", [fs.0 as i64], |r| {
            Ok((InodeId(r.get::<_, i64>(0)? as u64), SliceId(r.get::<_, i64>(1)? as u64)))
        })
    }

    fn slice_ref_counts(&mut self, fs: FileSystemId) -> Result<Vec<(SliceId, u64)>> {
        self.all("SELECT id, refs FROM slices WHERE fs = ?1", [fs.0 as i64], |r| {
            Ok((SliceId(r.get::<_, i64>(0)? as u64), r.get::<_, i64>(1)?.max(0) as u64))
        })
    }

    fn set_slice_refs(&mut self, fs: FileSystemId, id: SliceId, refs: u64) -> Result<()> {
        self.exec(
            "UPDATE slices SET refs = ?3 WHERE fs = ?1 AND id = ?2",
            params![fs.0 as i64, id.0 as i64, refs as i64],
        )?;
        Ok(())
    }

    fn get_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<Option<Dentry>> {
        self.one(
            "SELECT name, ino, kind, cookie FROM dentries WHERE fs = ?1 AND parent = ?2 AND name = ?3",
            params![fs.0 as i64, parent.0 as i64, name],
            row_to_dentry,
        )
    }

    fn insert_dentry(
        &mut self,
        fs: FileSystemId,
        parent: InodeId,
        name: &[u8],
        ino: InodeId,
        kind: FileKind,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO dentries(fs, parent, name, ino, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![fs.0 as i64, parent.0 as i64, name, ino.0 as i64, kind as i64],
        )?;
        Ok(())
    }

    fn delete_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<()> {
        self.exec(
            "DELETE FROM dentries WHERE fs = ?1 AND parent = ?2 AND name = ?3",
            params![fs.0 as i64, parent.0 as i64, name],
        )?;
        Ok(())
    }

    fn list_dentries(&mut self, fs: FileSystemId, parent: InodeId, after: u64, limit: usize) -> Result<Vec<Dentry>> {
        self.all(
            "SELECT name, ino, kind, cookie FROM dentries WHERE fs = ?1 AND parent = ?2 AND cookie > ?3 ORDER BY cookie LIMIT ?4",
            params![fs.0 as i64, parent.0 as i64, after as i64, limit as i64],
            row_to_dentry,
        )
    }

    fn has_dentries(&mut self, fs: FileSystemId, parent: InodeId) -> Result<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM dentries WHERE fs = ?1 AND parent = ?2 LIMIT 1",
                params![fs.0 as i64, parent.0 as i64],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn get_symlink(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Vec<u8>>> {
        self.one("SELECT target FROM symlinks WHERE fs = ?1 AND ino = ?2", params![fs.0 as i64, ino.0 as i64], |r| {
            r.get(0)
        })
    }

    fn put_symlink(&mut self, fs: FileSystemId, ino: InodeId, target: &[u8]) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO symlinks(fs, ino, target) VALUES (?1, ?2, ?3)",
            params![fs.0 as i64, ino.0 as i64, target],
        )?;
        Ok(())
    }

    fn get_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<Option<Vec<u8>>> {
        self.one(
            "SELECT value FROM xattrs WHERE fs = ?1 AND ino = ?2 AND name = ?3",
            params![fs.0 as i64, ino.0 as i64, name],
            |r| r.get(0),
        )
    }

    fn put_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8], value: &[u8]) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO xattrs(fs, ino, name, value) VALUES (?1, ?2, ?3, ?4)",
            params![fs.0 as i64, ino.0 as i64, name, value],
        )?;
        Ok(())
    }

    fn delete_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<bool> {
        Ok(self.exec(
            "DELETE FROM xattrs WHERE fs = ?1 AND ino = ?2 AND name = ?3",
            params![fs.0 as i64, ino.0 as i64, name],
        )? > 0)
    }

    fn list_xattrs(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Vec<u8>>> {
        self.all(
            "SELECT name FROM xattrs WHERE fs = ?1 AND ino = ?2 ORDER BY name",
            params![fs.0 as i64, ino.0 as i64],
            |r| r.get(0),
        )
    }

    fn delete_inode_extras(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec("DELETE FROM symlinks WHERE fs = ?1 AND ino = ?2", params![fs.0 as i64, ino.0 as i64])?;
        self.exec("DELETE FROM xattrs WHERE fs = ?1 AND ino = ?2", params![fs.0 as i64, ino.0 as i64])?;
        Ok(())
    }

    fn chunk_refs(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64) -> Result<Vec<SliceRef>> {
        self.all(
            "SELECT c.slice, c.size, c.off, c.len, c.pos, s.inline FROM chunk_refs c
             LEFT JOIN slices s ON s.fs = c.fs AND s.id = c.slice
             WHERE c.fs = ?1 AND c.ino = ?2 AND c.chunk = ?3 ORDER BY c.seq",
            params![fs.0 as i64, ino.0 as i64, chunk as i64],
            |r| {
                Ok(SliceRef {
                    id: SliceId(r.get::<_, i64>(0)? as u64),
                    size: r.get::<_, i64>(1)? as u32,
                    off: r.get::<_, i64>(2)? as u32,
                    len: r.get::<_, i64>(3)? as u32,
                    pos: r.get::<_, i64>(4)? as u32,
                    inline: r.get::<_, Option<Vec<u8>>>(5)?.map(Arc::from),
                })
            },
        )
    }

    fn append_ref(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, r: &SliceRef) -> Result<()> {
        self.exec(
            "INSERT INTO chunk_refs(fs, ino, chunk, slice, size, off, len, pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![fs.0 as i64, ino.0 as i64, chunk as i64, r.id.0 as i64, r.size as i64, r.off as i64, r.len as i64, r.pos as i64],
        )?;
        if r.id != SliceId::HOLE {
            self.exec(
                "UPDATE slices SET refs = refs + 1 WHERE fs = ?1 AND id = ?2",
                params![fs.0 as i64, r.id.0 as i64],
            )?;
        }
        Ok(())
    }

    fn delete_chunks_from(&mut self, fs: FileSystemId, ino: InodeId, first: u64) -> Result<()> {
        self.uncount_refs(fs, ino, "c.chunk >= ?3", first as i64)?;
        self.exec(
            "DELETE FROM slices WHERE fs = ?1 AND refs = 0 AND owner IS NULL AND inline IS NOT NULL
             AND id IN (SELECT slice FROM chunk_refs WHERE fs = ?1 AND ino = ?2 AND chunk >= ?3)",
            params![fs.0 as i64, ino.0 as i64, first as i64],
        )?;
        self.exec(
            "DELETE FROM chunk_refs WHERE fs = ?1 AND ino = ?2 AND chunk >= ?3",
            params![fs.0 as i64, ino.0 as i64, first as i64],
        )?;
        Ok(())
    }

    fn replace_chunk(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, refs: &[SliceRef]) -> Result<()> {
        self.uncount_refs(fs, ino, "c.chunk = ?3", chunk as i64)?;
        self.exec(
            "DELETE FROM chunk_refs WHERE fs = ?1 AND ino = ?2 AND chunk = ?3",
            params![fs.0 as i64, ino.0 as i64, chunk as i64],
        )?;
        for r in refs {
            self.append_ref(fs, ino, chunk, r)?;
        }
        Ok(())
    }

    fn fragmented_chunks(&mut self, fs: FileSystemId, min_refs: usize, limit: usize) -> Result<Vec<(InodeId, u64)>> {
        self.all(
            "SELECT ino, chunk FROM chunk_refs WHERE fs = ?1 GROUP BY ino, chunk HAVING count(*) >= ?2 LIMIT ?3",
            params![fs.0 as i64, min_refs as i64, limit as i64],
            |r| Ok((InodeId(r.get::<_, i64>(0)? as u64), r.get::<_, i64>(1)? as u64)),
        )
    }

    fn insert_slice(
        &mut self,
        fs: FileSystemId,
        id: SliceId,
        size: u32,
        inline: Option<&[u8]>,
        owner: Option<SessionId>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO slices(fs, id, size, inline, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![fs.0 as i64, id.0 as i64, size as i64, inline, owner.map(|s| s.0 as i64)],
        )?;
        Ok(())
    }

    fn finish_slice(&mut self, fs: FileSystemId, id: SliceId, size: u32) -> Result<()> {
        self.exec(
            "UPDATE slices SET size = ?3, owner = NULL WHERE fs = ?1 AND id = ?2",
            params![fs.0 as i64, id.0 as i64, size as i64],
        )?;
        Ok(())
    }

    fn garbage_slices(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<SliceInfo>> {
        self.all(
            "SELECT id, size, inline IS NOT NULL FROM slices WHERE fs = ?1 AND refs = 0 AND owner IS NULL LIMIT ?2",
            params![fs.0 as i64, limit as i64],
            row_to_slice_info,
        )
    }

    fn delete_slice(&mut self, fs: FileSystemId, id: SliceId) -> Result<()> {
        self.exec("DELETE FROM slices WHERE fs = ?1 AND id = ?2", params![fs.0 as i64, id.0 as i64])?;
        Ok(())
    }

    fn all_slices(&mut self, fs: FileSystemId) -> Result<Vec<SliceInfo>> {
        self.all(
            "SELECT id, size, inline IS NOT NULL FROM slices WHERE fs = ?1 ORDER BY id",
            [fs.0 as i64],
            row_to_slice_info,
        )
    }

    fn insert_session(&mut self, fs: FileSystemId, info: &str, now: TimeSpec) -> Result<SessionId> {
        self.exec(
            "INSERT INTO sessions(fs, info, started, heartbeat) VALUES (?1, ?2, ?3, ?3)",
            params![fs.0 as i64, info, now.0],
        )?;
        Ok(SessionId(self.conn.last_insert_rowid() as u64))
    }

    fn heartbeat(&mut self, session: SessionId, now: TimeSpec) -> Result<bool> {
        Ok(self.exec("UPDATE sessions SET heartbeat = ?2 WHERE id = ?1", params![session.0 as i64, now.0])? > 0)
    }

    fn stale_sessions(&mut self, fs: FileSystemId, before: TimeSpec) -> Result<Vec<SessionId>> {
        self.all("SELECT id FROM sessions WHERE fs = ?1 AND heartbeat < ?2", params![fs.0 as i64, before.0], |r| {
            Ok(SessionId(r.get::<_, i64>(0)? as u64))
        })
    }

    fn list_sessions(&mut self, fs: Option<FileSystemId>) -> Result<Vec<SessionInfo>> {
        match fs {
            Some(fs) => self.all(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE fs = ?1 ORDER BY id"),
                [fs.0 as i64],
                row_to_session,
            ),
            None => self.all(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id"), [], row_to_session),
        }
    }

    fn delete_session(&mut self, session: SessionId) -> Result<Vec<InodeId>> {
        let s = session.0 as i64;
        let inodes =
            self.all("SELECT ino FROM sustained WHERE session = ?1", [s], |r| Ok(InodeId(r.get::<_, i64>(0)? as u64)))?;
        self.exec("DELETE FROM sustained WHERE session = ?1", [s])?;
        self.exec("UPDATE slices SET owner = NULL WHERE owner = ?1", [s])?;
        self.exec("DELETE FROM sessions WHERE id = ?1", [s])?;
        Ok(inodes)
    }

    fn sustain(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec(
            "INSERT OR IGNORE INTO sustained(session, fs, ino) VALUES (?1, ?2, ?3)",
            params![session.0 as i64, fs.0 as i64, ino.0 as i64],
        )?;
        Ok(())
    }

    fn is_sustained(&mut self, fs: FileSystemId, ino: InodeId) -> Result<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM sustained WHERE fs = ?1 AND ino = ?2 LIMIT 1",
                params![fs.0 as i64, ino.0 as i64],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn release_sustained(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<bool> {
        self.exec(
            "DELETE FROM sustained WHERE session = ?1 AND fs = ?2 AND ino = ?3",
            params![session.0 as i64, fs.0 as i64, ino.0 as i64],
        )?;
        self.is_sustained(fs, ino)
    }

    fn insert_access_point(&mut self, ap: &AccessPoint) -> Result<()> {
        let groups: Vec<String> = ap.identity.groups.iter().map(u32::to_string).collect();
        let c = ap.creation;
        self.exec(
            &format!("INSERT INTO access_points({AP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                ap.id.as_str(),
                ap.fs.0 as i64,
                ap.path,
                ap.identity.uid as i64,
                ap.identity.gid as i64,
                groups.join(","),
                c.map(|c| c.uid as i64),
                c.map(|c| c.gid as i64),
                c.map(|c| c.mode as i64),
                ap.created.0
            ],
        )?;
        Ok(())
    }

    fn get_access_point(&mut self, id: &AccessPointId) -> Result<Option<AccessPoint>> {
        self.one(&format!("SELECT {AP_COLUMNS} FROM access_points WHERE id = ?1"), [id.as_str()], row_to_access_point)
    }

    fn list_access_points(&mut self, fs: Option<FileSystemId>) -> Result<Vec<AccessPoint>> {
        match fs {
            Some(fs) => self.all(
                &format!("SELECT {AP_COLUMNS} FROM access_points WHERE fs = ?1 ORDER BY id"),
                [fs.0 as i64],
                row_to_access_point,
            ),
            None => self.all(&format!("SELECT {AP_COLUMNS} FROM access_points ORDER BY id"), [], row_to_access_point),
        }
    }

    fn delete_access_point(&mut self, id: &AccessPointId) -> Result<()> {
        self.exec("DELETE FROM access_points WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    fn get_record(&mut self, kind: &str, name: &str) -> Result<Option<Record>> {
        self.one("SELECT name, body, revision FROM records WHERE kind = ?1 AND name = ?2", [kind, name], row_to_record)
    }

    fn put_record(&mut self, kind: &str, record: &Record) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO records(kind, name, body, revision) VALUES (?1, ?2, ?3, ?4)",
            params![kind, record.name, record.body, record.revision as i64],
        )?;
        Ok(())
    }

    fn delete_record(&mut self, kind: &str, name: &str) -> Result<()> {
        self.exec("DELETE FROM records WHERE kind = ?1 AND name = ?2", [kind, name])?;
        Ok(())
    }

    fn list_records(&mut self, kind: &str) -> Result<Vec<Record>> {
        self.all("SELECT name, body, revision FROM records WHERE kind = ?1 ORDER BY name", [kind], row_to_record)
    }

    fn get_policy(&mut self, fs: FileSystemId) -> Result<FsPolicy> {
        Ok(self
            .one("SELECT read_only, root_squash FROM fs_policies WHERE fs = ?1", [fs.0 as i64], |r| {
                Ok(FsPolicy { read_only: r.get(0)?, root_squash: r.get(1)? })
            })?
            .unwrap_or_default())
    }

    fn put_policy(&mut self, fs: FileSystemId, policy: &FsPolicy) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO fs_policies(fs, read_only, root_squash) VALUES (?1, ?2, ?3)",
            params![fs.0 as i64, policy.read_only, policy.root_squash],
        )?;
        Ok(())
    }

    fn dentry_name(&mut self, fs: FileSystemId, parent: InodeId, ino: InodeId) -> Result<Option<Vec<u8>>> {
        self.one(
            "SELECT name FROM dentries WHERE fs = ?1 AND parent = ?2 AND ino = ?3 LIMIT 1",
            params![fs.0 as i64, parent.0 as i64, ino.0 as i64],
            |r| r.get(0),
        )
    }

    fn inode_locks(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Lock>> {
        self.all(
            "SELECT session, owner, typ, range_start, range_end, pid FROM locks WHERE fs = ?1 AND ino = ?2
             ORDER BY range_start, session, owner",
            params![fs.0 as i64, ino.0 as i64],
            |r| {
                Ok(Lock {
                    // Owner numbers are any u64; they are stored bit for bit as i64.
                    owner: LockOwner {
                        session: SessionId(r.get::<_, i64>(0)? as u64),
                        owner: r.get::<_, i64>(1)? as u64,
                    },
                    typ: if r.get::<_, i64>(2)? == LOCK_WRITE { LockType::Write } else { LockType::Read },
                    start: r.get::<_, i64>(3)? as u64,
                    end: r.get::<_, i64>(4)? as u64,
                    pid: r.get::<_, i64>(5)? as u32,
                })
            },
        )
    }

    fn replace_locks(&mut self, fs: FileSystemId, ino: InodeId, owner: LockOwner, locks: &[Lock]) -> Result<()> {
        let (session, number) = (owner.session.0 as i64, owner.owner as i64);
        self.exec(
            "DELETE FROM locks WHERE fs = ?1 AND ino = ?2 AND session = ?3 AND owner = ?4",
            params![fs.0 as i64, ino.0 as i64, session, number],
        )?;
        for l in locks {
            let typ = if l.typ == LockType::Write { LOCK_WRITE } else { LOCK_READ };
            self.exec(
                "INSERT INTO locks(fs, ino, session, owner, typ, range_start, range_end, pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![fs.0 as i64, ino.0 as i64, session, number, typ, l.start as i64, l.end as i64, l.pid as i64],
            )?;
        }
        Ok(())
    }

    fn delete_session_locks(&mut self, session: SessionId) -> Result<()> {
        self.exec("DELETE FROM locks WHERE session = ?1", [session.0 as i64])?;
        Ok(())
    }
}

const LOCK_READ: i64 = 1;
const LOCK_WRITE: i64 = 2;
