//! One transaction on a pooled connection: the row-level reads and writes of
//! [`MetaTxn`] as SQL.

use super::pool::Conn;
use super::{backend, PostgresStore};
use crate::ops::access_point::{AccessPoint, AccessPointId, FsPolicy, RootCreation};
use crate::ops::records::Record;
use crate::ops::{FileSystemInfo, Lock, LockOwner, LockType, SessionInfo, SliceInfo};
use crate::store::{Counter, Dentry, MetaTxn, TxnMode};
use crate::{Attr, Caller, FileKind, FileSystemId, InodeId, MetaError, Result, SessionId, SliceId, SliceRef, TimeSpec};
use futures_executor::block_on;
use futures_util::FutureExt;
use std::sync::Arc;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Row, Statement};

type Param = Box<dyn ToSql + Sync + Send>;

/// Statement parameters, boxed so that one helper takes any list of them.
macro_rules! p {
    ($($v:expr),* $(,)?) => { vec![$(Box::new($v) as Param),*] };
}

const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

pub(super) struct PgTxn<'a> {
    store: &'a PostgresStore,
    mode: TxnMode,
    /// `None` once given back to the pool (on drop).
    conn: Option<Conn>,
    /// BEGIN is sent with the first statement, saving a round trip; `None` once sent.
    begin: Option<&'static str>,
    /// Whether BEGIN went out and neither COMMIT nor ROLLBACK did since.
    open: bool,
    /// False when the connection's state is unknown: it is closed, not reused.
    healthy: bool,
}

impl<'a> PgTxn<'a> {
    pub(super) fn new(store: &'a PostgresStore, conn: Conn, mode: TxnMode) -> PgTxn<'a> {
        let begin = if mode == TxnMode::Write { BEGIN_WRITE } else { BEGIN_READ };
        PgTxn { store, mode, conn: Some(conn), begin: Some(begin), open: false, healthy: true }
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a transaction holds its connection until dropped")
    }

    /// Maps a failed statement (`committing`: the COMMIT of a write) to the error
    /// `Meta` acts on.
    fn fail(&mut self, e: &tokio_postgres::Error, committing: bool) -> MetaError {
        let lost = e.is_closed()
            || self.conn().client.is_closed()
            || e.code().is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"));
        let err = if lost {
            self.healthy = false;
            if committing {
                // The COMMIT may or may not have happened: running the operation again
                // could apply it twice.
                MetaError::Backend(format!(
                    "lost the connection to PostgreSQL while committing; the operation may or may not have happened ({})",
                    super::describe(e)
                ))
            } else {
                // The server rolled the transaction back: running it again on another
                // connection is safe (a server restart or failover costs a retry).
                MetaError::Conflict
            }
        } else {
            backend(e)
        };
        if err == MetaError::Conflict {
            self.store.note_conflict();
        }
        err
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.conn().statements.get(sql) {
            return Ok(s.clone());
        }
        let client = self.conn().client.clone();
        match block_on(client.prepare(sql)) {
            Ok(s) => {
                self.conn().statements.insert(sql.to_string(), s.clone());
                Ok(s)
            }
            Err(e) => Err(self.fail(&e, false)),
        }
    }

    fn query(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let client = self.conn().client.clone();
        let begin = self.begin.take();
        self.open = true;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        let rows = block_on(async {
            match begin {
                // Both go out at once: the connection sends requests in the order
                // they are first polled, and `join` polls its first future first.
                Some(begin) => {
                    let (began, rows) =
                        futures_util::future::join(client.batch_execute(begin), client.query(&statement, &refs)).await;
                    began.and(rows)
                }
                None => client.query(&statement, &refs).await,
            }
        });
        rows.map_err(|e| self.fail(&e, false))
    }

    fn exec(&mut self, sql: &str, params: Vec<Param>) -> Result<()> {
        self.query(sql, params).map(drop)
    }

    /// Runs a statement with a RETURNING clause; the number of rows it touched.
    fn count(&mut self, sql: &str, params: Vec<Param>) -> Result<usize> {
        self.query(sql, params).map(|rows| rows.len())
    }

    fn one<T>(&mut self, sql: &str, params: Vec<Param>, f: impl FnOnce(&Row) -> Result<T>) -> Result<Option<T>> {
        self.query(sql, params)?.first().map(f).transpose()
    }

    fn all<T>(&mut self, sql: &str, params: Vec<Param>, f: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// Commits a write transaction, waiting for the server's verdict (a serialization
    /// failure may come only now).
    fn commit_write(&mut self) -> Result<()> {
        self.open = false;
        let client = self.conn().client.clone();
        block_on(client.batch_execute("COMMIT")).map_err(|e| self.fail(&e, true))
    }

    /// Ends the transaction with `sql` without waiting for the answer: COMMIT of a
    /// read-only transaction and ROLLBACK cannot fail in a way that matters, and the
    /// connection sends requests in order, so the next transaction's BEGIN follows.
    /// A connection lost meanwhile fails the next statement, and is then replaced.
    fn end_without_waiting(&mut self, sql: &'static str) {
        self.open = false;
        // The first poll queues the request on the connection; dropping the future
        // only stops listening for the answer.
        let _ = self.conn().client.batch_execute(sql).now_or_never();
    }

    /// Uncounts the references of the chunk rows matched by `filter` on their slices.
    fn uncount_refs(&mut self, fs: FileSystemId, ino: InodeId, filter: &str, arg: i64) -> Result<()> {
        let sql = format!(
            "UPDATE slices SET refs = refs - (SELECT count(*) FROM chunk_refs c WHERE c.fs = $1 AND c.ino = $2 AND {filter} AND c.slice = slices.id)
             WHERE fs = $1 AND id IN (SELECT slice FROM chunk_refs c WHERE c.fs = $1 AND c.ino = $2 AND {filter})"
        );
        self.exec(&sql, p![fs.0 as i64, ino.0 as i64, arg])
    }
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if self.open {
            self.end_without_waiting("ROLLBACK");
        }
        if let Some(conn) = self.conn.take() {
            self.store.pool.give_back(conn, self.healthy);
        }
    }
}

fn col<'r, T: FromSql<'r>>(r: &'r Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(|e| MetaError::Backend(format!("reading column {i}: {}", super::describe(&e))))
}

fn int(r: &Row, i: usize) -> Result<i64> {
    col(r, i)
}

fn row_to_attr(r: &Row) -> Result<Attr> {
    Ok(Attr {
        ino: InodeId(int(r, 0)? as u64),
        kind: FileKind::from_code(int(r, 1)?).unwrap_or(FileKind::File),
        perm: int(r, 2)? as u16,
        uid: int(r, 3)? as u32,
        gid: int(r, 4)? as u32,
        nlink: int(r, 5)? as u32,
        size: int(r, 6)? as u64,
        rdev: int(r, 7)? as u32,
        atime: TimeSpec(int(r, 8)?),
        mtime: TimeSpec(int(r, 9)?),
        ctime: TimeSpec(int(r, 10)?),
        parent: InodeId(int(r, 11)? as u64),
    })
}

fn row_to_fs(r: &Row) -> Result<FileSystemInfo> {
    Ok(FileSystemInfo {
        id: FileSystemId(int(r, 0)? as u64),
        name: col(r, 1)?,
        uuid: col(r, 2)?,
        created: TimeSpec(int(r, 3)?),
        used_bytes: int(r, 4)?.max(0) as u64,
        used_inodes: int(r, 5)?.max(0) as u64,
    })
}

const SESSION_COLUMNS: &str = "id, fs, info, started, heartbeat";

fn row_to_session(r: &Row) -> Result<SessionInfo> {
    Ok(SessionInfo {
        id: SessionId(int(r, 0)? as u64),
        fs: FileSystemId(int(r, 1)? as u64),
        info: col(r, 2)?,
        started: TimeSpec(int(r, 3)?),
        heartbeat: TimeSpec(int(r, 4)?),
    })
}

fn row_to_dentry(r: &Row) -> Result<Dentry> {
    Ok(Dentry {
        name: col(r, 0)?,
        ino: InodeId(int(r, 1)? as u64),
        kind: FileKind::from_code(int(r, 2)?).unwrap_or(FileKind::File),
        cookie: int(r, 3)? as u64,
    })
}

fn row_to_slice_info(r: &Row) -> Result<SliceInfo> {
    Ok(SliceInfo { id: SliceId(int(r, 0)? as u64), size: int(r, 1)? as u32, inline: col(r, 2)? })
}

fn row_to_record(r: &Row) -> Result<Record> {
    Ok(Record { name: col(r, 0)?, body: col(r, 1)?, revision: int(r, 2)? as u64 })
}

fn row_to_access_point(r: &Row) -> Result<AccessPoint> {
    let id: String = col(r, 0)?;
    let groups: String = col(r, 5)?;
    let creation = match (col::<Option<i64>>(r, 6)?, col::<Option<i64>>(r, 7)?, col::<Option<i64>>(r, 8)?) {
        (Some(uid), Some(gid), Some(mode)) => {
            Some(RootCreation { uid: uid as u32, gid: gid as u32, mode: mode as u16 })
        }
        _ => None,
    };
    Ok(AccessPoint {
        // Ids are checked before they are stored.
        id: AccessPointId::parse(&id).map_err(|e| MetaError::Backend(format!("stored access point {id}: {e}")))?,
        fs: FileSystemId(int(r, 1)? as u64),
        path: col(r, 2)?,
        identity: Caller {
            uid: int(r, 3)? as u32,
            gid: int(r, 4)? as u32,
            groups: groups.split(',').filter_map(|g| g.parse().ok()).collect(),
        },
        creation,
        created: TimeSpec(int(r, 9)?),
    })
}

const AP_COLUMNS: &str = "id, fs, path, uid, gid, groups, owner_uid, owner_gid, mode, created";
const FS_COLUMNS: &str = "id, name, uuid, created, used_bytes, used_inodes";
const INODE_COLUMNS: &str = "ino, kind, perm, uid, gid, nlink, size, rdev, atime, mtime, ctime, parent";
const LOCK_READ: i64 = 1;
const LOCK_WRITE: i64 = 2;

impl MetaTxn for PgTxn<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        match (self.open, self.mode) {
            (false, _) => Ok(()),
            (true, TxnMode::Write) => self.commit_write(),
            (true, TxnMode::Read) => {
                self.end_without_waiting("COMMIT");
                Ok(())
            }
        }
    }

    fn insert_fs(&mut self, name: &str, uuid: &str, now: TimeSpec) -> Result<FileSystemId> {
        self.one(
            "INSERT INTO file_systems(name, uuid, created, next_inode, next_slice) VALUES ($1, $2, $3, 2, 1) RETURNING id",
            p![name.to_string(), uuid.to_string(), now.0],
            |r| Ok(FileSystemId(int(r, 0)? as u64)),
        )?
        .ok_or(MetaError::Backend("INSERT ... RETURNING returned no row".into()))
    }

    fn fs_by_name(&mut self, name: &str) -> Result<Option<FileSystemInfo>> {
        self.one(&format!("SELECT {FS_COLUMNS} FROM file_systems WHERE name = $1"), p![name.to_string()], row_to_fs)
    }

    fn list_fs(&mut self) -> Result<Vec<FileSystemInfo>> {
        self.all(&format!("SELECT {FS_COLUMNS} FROM file_systems ORDER BY name"), p![], row_to_fs)
    }

    fn delete_fs(&mut self, fs: FileSystemId) -> Result<()> {
        for table in super::schema::PER_FS_TABLES {
            self.exec(&format!("DELETE FROM {table} WHERE fs = $1"), p![fs.0 as i64])?;
        }
        self.exec("DELETE FROM file_systems WHERE id = $1", p![fs.0 as i64])
    }

    fn next_ids(&mut self, fs: FileSystemId, counter: Counter, n: u64) -> Result<u64> {
        let col = match counter {
            Counter::Inode => "next_inode",
            Counter::Slice => "next_slice",
        };
        let sql = format!("UPDATE file_systems SET {col} = {col} + $2 WHERE id = $1 RETURNING {col} - $2");
        self.one(&sql, p![fs.0 as i64, n as i64], |r| int(r, 0))?
            .map(|v| v as u64)
            .ok_or(MetaError::NoFileSystem(fs.to_string()))
    }

    fn add_usage(&mut self, fs: FileSystemId, bytes: i64, inodes: i64) -> Result<()> {
        self.exec(
            "UPDATE file_systems SET used_bytes = used_bytes + $2, used_inodes = used_inodes + $3 WHERE id = $1",
            p![fs.0 as i64, bytes, inodes],
        )
    }

    fn get_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Attr>> {
        self.one(
            &format!("SELECT {INODE_COLUMNS} FROM inodes WHERE fs = $1 AND ino = $2"),
            p![fs.0 as i64, ino.0 as i64],
            row_to_attr,
        )
    }

    fn put_inode(&mut self, fs: FileSystemId, a: &Attr) -> Result<()> {
        self.exec(
            "INSERT INTO inodes(fs, ino, kind, perm, uid, gid, nlink, size, rdev, atime, mtime, ctime, parent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (fs, ino) DO UPDATE SET kind = excluded.kind, perm = excluded.perm, uid = excluded.uid,
                gid = excluded.gid, nlink = excluded.nlink, size = excluded.size, rdev = excluded.rdev,
                atime = excluded.atime, mtime = excluded.mtime, ctime = excluded.ctime, parent = excluded.parent",
            p![
                fs.0 as i64,
                a.ino.0 as i64,
                a.kind as i64,
                a.perm as i64,
                a.uid as i64,
                a.gid as i64,
                a.nlink as i64,
                a.size as i64,
                a.rdev as i64,
                a.atime.0,
                a.mtime.0,
                a.ctime.0,
                a.parent.0 as i64
            ],
        )
    }

    fn delete_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec("DELETE FROM inodes WHERE fs = $1 AND ino = $2", p![fs.0 as i64, ino.0 as i64])
    }

    fn unlinked_inodes(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<InodeId>> {
        self.all("SELECT ino FROM inodes WHERE fs = $1 AND nlink = 0 LIMIT $2", p![fs.0 as i64, limit as i64], |r| {
            Ok(InodeId(int(r, 0)? as u64))
        })
    }

    fn all_inodes(&mut self, fs: FileSystemId) -> Result<Vec<Attr>> {
        self.all(&format!("SELECT {INODE_COLUMNS} FROM inodes WHERE fs = $1"), p![fs.0 as i64], row_to_attr)
    }

    fn all_dentries(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, Dentry)>> {
        self.all("SELECT name, ino, kind, cookie, parent FROM dentries WHERE fs = $1", p![fs.0 as i64], |r| {
            Ok((InodeId(int(r, 4)? as u64), row_to_dentry(r)?))
        })
    }

    fn all_refs(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, SliceId)>> {
        self.all("SELECT ino, slice FROM chunk_refs WHERE fs = $1 AND slice != 0", p![fs.0 as i64], |r| {
            Ok((InodeId(int(r, 0)? as u64), SliceId(int(r, 1)? as u64)))
        })
    }

    fn slice_ref_counts(&mut self, fs: FileSystemId) -> Result<Vec<(SliceId, u64)>> {
        self.all("SELECT id, refs FROM slices WHERE fs = $1", p![fs.0 as i64], |r| {
            Ok((SliceId(int(r, 0)? as u64), int(r, 1)?.max(0) as u64))
        })
    }

    fn set_slice_refs(&mut self, fs: FileSystemId, id: SliceId, refs: u64) -> Result<()> {
        self.exec("UPDATE slices SET refs = $3 WHERE fs = $1 AND id = $2", p![fs.0 as i64, id.0 as i64, refs as i64])
    }

    fn get_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<Option<Dentry>> {
        self.one(
            "SELECT name, ino, kind, cookie FROM dentries WHERE fs = $1 AND parent = $2 AND name = $3",
            p![fs.0 as i64, parent.0 as i64, name.to_vec()],
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
            "INSERT INTO dentries(fs, parent, name, ino, kind) VALUES ($1, $2, $3, $4, $5)",
            p![fs.0 as i64, parent.0 as i64, name.to_vec(), ino.0 as i64, kind as i64],
        )
    }

    fn delete_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<()> {
        self.exec(
            "DELETE FROM dentries WHERE fs = $1 AND parent = $2 AND name = $3",
            p![fs.0 as i64, parent.0 as i64, name.to_vec()],
        )
    }

    fn list_dentries(&mut self, fs: FileSystemId, parent: InodeId, after: u64, limit: usize) -> Result<Vec<Dentry>> {
        self.all(
            "SELECT name, ino, kind, cookie FROM dentries WHERE fs = $1 AND parent = $2 AND cookie > $3 ORDER BY cookie LIMIT $4",
            p![fs.0 as i64, parent.0 as i64, after as i64, limit as i64],
            row_to_dentry,
        )
    }

    fn has_dentries(&mut self, fs: FileSystemId, parent: InodeId) -> Result<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM dentries WHERE fs = $1 AND parent = $2 LIMIT 1",
                p![fs.0 as i64, parent.0 as i64],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn get_symlink(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Vec<u8>>> {
        self.one("SELECT target FROM symlinks WHERE fs = $1 AND ino = $2", p![fs.0 as i64, ino.0 as i64], |r| col(r, 0))
    }

    fn put_symlink(&mut self, fs: FileSystemId, ino: InodeId, target: &[u8]) -> Result<()> {
        self.exec(
            "INSERT INTO symlinks(fs, ino, target) VALUES ($1, $2, $3)
             ON CONFLICT (fs, ino) DO UPDATE SET target = excluded.target",
            p![fs.0 as i64, ino.0 as i64, target.to_vec()],
        )
    }

    fn get_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<Option<Vec<u8>>> {
        self.one(
            "SELECT value FROM xattrs WHERE fs = $1 AND ino = $2 AND name = $3",
            p![fs.0 as i64, ino.0 as i64, name.to_vec()],
            |r| col(r, 0),
        )
    }

    fn put_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8], value: &[u8]) -> Result<()> {
        self.exec(
            "INSERT INTO xattrs(fs, ino, name, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (fs, ino, name) DO UPDATE SET value = excluded.value",
            p![fs.0 as i64, ino.0 as i64, name.to_vec(), value.to_vec()],
        )
    }

    fn delete_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<bool> {
        Ok(self.count(
            "DELETE FROM xattrs WHERE fs = $1 AND ino = $2 AND name = $3 RETURNING 1",
            p![fs.0 as i64, ino.0 as i64, name.to_vec()],
        )? > 0)
    }

    fn list_xattrs(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Vec<u8>>> {
        self.all(
            "SELECT name FROM xattrs WHERE fs = $1 AND ino = $2 ORDER BY name",
            p![fs.0 as i64, ino.0 as i64],
            |r| col(r, 0),
        )
    }

    fn delete_inode_extras(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec("DELETE FROM symlinks WHERE fs = $1 AND ino = $2", p![fs.0 as i64, ino.0 as i64])?;
        self.exec("DELETE FROM xattrs WHERE fs = $1 AND ino = $2", p![fs.0 as i64, ino.0 as i64])
    }

    fn chunk_refs(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64) -> Result<Vec<SliceRef>> {
        self.all(
            "SELECT c.slice, c.size, c.off, c.len, c.pos, s.inline FROM chunk_refs c
             LEFT JOIN slices s ON s.fs = c.fs AND s.id = c.slice
             WHERE c.fs = $1 AND c.ino = $2 AND c.chunk = $3 ORDER BY c.seq",
            p![fs.0 as i64, ino.0 as i64, chunk as i64],
            |r| {
                Ok(SliceRef {
                    id: SliceId(int(r, 0)? as u64),
                    size: int(r, 1)? as u32,
                    off: int(r, 2)? as u32,
                    len: int(r, 3)? as u32,
                    pos: int(r, 4)? as u32,
                    inline: col::<Option<Vec<u8>>>(r, 5)?.map(Arc::from),
                })
            },
        )
    }

    fn append_ref(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, r: &SliceRef) -> Result<()> {
        self.exec(
            "INSERT INTO chunk_refs(fs, ino, chunk, slice, size, off, len, pos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            p![
                fs.0 as i64,
                ino.0 as i64,
                chunk as i64,
                r.id.0 as i64,
                r.size as i64,
                r.off as i64,
                r.len as i64,
                r.pos as i64
            ],
        )?;
        if r.id != SliceId::HOLE {
            self.exec("UPDATE slices SET refs = refs + 1 WHERE fs = $1 AND id = $2", p![fs.0 as i64, r.id.0 as i64])?;
        }
        Ok(())
    }

    fn delete_chunks_from(&mut self, fs: FileSystemId, ino: InodeId, first: u64) -> Result<()> {
        self.uncount_refs(fs, ino, "c.chunk >= $3", first as i64)?;
        self.exec(
            "DELETE FROM slices WHERE fs = $1 AND refs = 0 AND owner IS NULL AND inline IS NOT NULL
             AND id IN (SELECT slice FROM chunk_refs WHERE fs = $1 AND ino = $2 AND chunk >= $3)",
            p![fs.0 as i64, ino.0 as i64, first as i64],
        )?;
        self.exec(
            "DELETE FROM chunk_refs WHERE fs = $1 AND ino = $2 AND chunk >= $3",
            p![fs.0 as i64, ino.0 as i64, first as i64],
        )
    }

    fn replace_chunk(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, refs: &[SliceRef]) -> Result<()> {
        self.uncount_refs(fs, ino, "c.chunk = $3", chunk as i64)?;
        self.exec(
            "DELETE FROM chunk_refs WHERE fs = $1 AND ino = $2 AND chunk = $3",
            p![fs.0 as i64, ino.0 as i64, chunk as i64],
        )?;
        for r in refs {
            self.append_ref(fs, ino, chunk, r)?;
        }
        Ok(())
    }

    fn fragmented_chunks(&mut self, fs: FileSystemId, min_refs: usize, limit: usize) -> Result<Vec<(InodeId, u64)>> {
        self.all(
            "SELECT ino, chunk FROM chunk_refs WHERE fs = $1 GROUP BY ino, chunk HAVING count(*) >= $2 LIMIT $3",
            p![fs.0 as i64, min_refs as i64, limit as i64],
            |r| Ok((InodeId(int(r, 0)? as u64), int(r, 1)? as u64)),
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
            "INSERT INTO slices(fs, id, size, inline, owner) VALUES ($1, $2, $3, $4, $5)",
            p![fs.0 as i64, id.0 as i64, size as i64, inline.map(<[u8]>::to_vec), owner.map(|s| s.0 as i64)],
        )
    }

    fn finish_slice(&mut self, fs: FileSystemId, id: SliceId, size: u32) -> Result<()> {
        self.exec(
            "UPDATE slices SET size = $3, owner = NULL WHERE fs = $1 AND id = $2",
            p![fs.0 as i64, id.0 as i64, size as i64],
        )
    }

    fn garbage_slices(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<SliceInfo>> {
        self.all(
            "SELECT id, size, inline IS NOT NULL FROM slices WHERE fs = $1 AND refs = 0 AND owner IS NULL LIMIT $2",
            p![fs.0 as i64, limit as i64],
            row_to_slice_info,
        )
    }

    fn delete_slice(&mut self, fs: FileSystemId, id: SliceId) -> Result<()> {
        self.exec("DELETE FROM slices WHERE fs = $1 AND id = $2", p![fs.0 as i64, id.0 as i64])
    }

    fn all_slices(&mut self, fs: FileSystemId) -> Result<Vec<SliceInfo>> {
        self.all(
            "SELECT id, size, inline IS NOT NULL FROM slices WHERE fs = $1 ORDER BY id",
            p![fs.0 as i64],
            row_to_slice_info,
        )
    }

    fn insert_session(&mut self, fs: FileSystemId, info: &str, now: TimeSpec) -> Result<SessionId> {
        self.one(
            "INSERT INTO sessions(fs, info, started, heartbeat) VALUES ($1, $2, $3, $3) RETURNING id",
            p![fs.0 as i64, info.to_string(), now.0],
            |r| Ok(SessionId(int(r, 0)? as u64)),
        )?
        .ok_or(MetaError::Backend("INSERT ... RETURNING returned no row".into()))
    }

    fn heartbeat(&mut self, session: SessionId, now: TimeSpec) -> Result<bool> {
        Ok(self.count("UPDATE sessions SET heartbeat = $2 WHERE id = $1 RETURNING 1", p![session.0 as i64, now.0])? > 0)
    }

    fn stale_sessions(&mut self, fs: FileSystemId, before: TimeSpec) -> Result<Vec<SessionId>> {
        self.all("SELECT id FROM sessions WHERE fs = $1 AND heartbeat < $2", p![fs.0 as i64, before.0], |r| {
            Ok(SessionId(int(r, 0)? as u64))
        })
    }

    fn list_sessions(&mut self, fs: Option<FileSystemId>) -> Result<Vec<SessionInfo>> {
        match fs {
            Some(fs) => self.all(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE fs = $1 ORDER BY id"),
                p![fs.0 as i64],
                row_to_session,
            ),
            None => self.all(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id"), p![], row_to_session),
        }
    }

    fn delete_session(&mut self, session: SessionId) -> Result<Vec<InodeId>> {
        let s = session.0 as i64;
        let inodes = self
            .all("DELETE FROM sustained WHERE session = $1 RETURNING ino", p![s], |r| Ok(InodeId(int(r, 0)? as u64)))?;
        self.exec("UPDATE slices SET owner = NULL WHERE owner = $1", p![s])?;
        self.exec("DELETE FROM sessions WHERE id = $1", p![s])?;
        Ok(inodes)
    }

    fn sustain(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<()> {
        self.exec(
            "INSERT INTO sustained(session, fs, ino) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            p![session.0 as i64, fs.0 as i64, ino.0 as i64],
        )
    }

    fn is_sustained(&mut self, fs: FileSystemId, ino: InodeId) -> Result<bool> {
        Ok(self
            .one("SELECT 1 FROM sustained WHERE fs = $1 AND ino = $2 LIMIT 1", p![fs.0 as i64, ino.0 as i64], |_| {
                Ok(())
            })?
            .is_some())
    }

    fn release_sustained(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<bool> {
        self.exec(
            "DELETE FROM sustained WHERE session = $1 AND fs = $2 AND ino = $3",
            p![session.0 as i64, fs.0 as i64, ino.0 as i64],
        )?;
        self.is_sustained(fs, ino)
    }

    fn insert_access_point(&mut self, ap: &AccessPoint) -> Result<()> {
        let groups: Vec<String> = ap.identity.groups.iter().map(u32::to_string).collect();
        let c = ap.creation;
        self.exec(
            &format!("INSERT INTO access_points({AP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
            p![
                ap.id.as_str().to_string(),
                ap.fs.0 as i64,
                ap.path.clone(),
                ap.identity.uid as i64,
                ap.identity.gid as i64,
                groups.join(","),
                c.map(|c| c.uid as i64),
                c.map(|c| c.gid as i64),
                c.map(|c| c.mode as i64),
                ap.created.0
            ],
        )
    }

    fn get_access_point(&mut self, id: &AccessPointId) -> Result<Option<AccessPoint>> {
        self.one(
            &format!("SELECT {AP_COLUMNS} FROM access_points WHERE id = $1"),
            p![id.as_str().to_string()],
            row_to_access_point,
        )
    }

    fn list_access_points(&mut self, fs: Option<FileSystemId>) -> Result<Vec<AccessPoint>> {
        match fs {
            Some(fs) => self.all(
                &format!("SELECT {AP_COLUMNS} FROM access_points WHERE fs = $1 ORDER BY id"),
                p![fs.0 as i64],
                row_to_access_point,
            ),
            None => self.all(&format!("SELECT {AP_COLUMNS} FROM access_points ORDER BY id"), p![], row_to_access_point),
        }
    }

    fn delete_access_point(&mut self, id: &AccessPointId) -> Result<()> {
        self.exec("DELETE FROM access_points WHERE id = $1", p![id.as_str().to_string()])
    }

    fn get_policy(&mut self, fs: FileSystemId) -> Result<FsPolicy> {
        Ok(self
            .one("SELECT read_only, root_squash FROM fs_policies WHERE fs = $1", p![fs.0 as i64], |r| {
                Ok(FsPolicy { read_only: col(r, 0)?, root_squash: col(r, 1)? })
            })?
            .unwrap_or_default())
    }

    fn put_policy(&mut self, fs: FileSystemId, policy: &FsPolicy) -> Result<()> {
        self.exec(
            "INSERT INTO fs_policies(fs, read_only, root_squash) VALUES ($1, $2, $3)
             ON CONFLICT (fs) DO UPDATE SET read_only = excluded.read_only, root_squash = excluded.root_squash",
            p![fs.0 as i64, policy.read_only, policy.root_squash],
        )
    }

    fn dentry_name(&mut self, fs: FileSystemId, parent: InodeId, ino: InodeId) -> Result<Option<Vec<u8>>> {
        self.one(
            "SELECT name FROM dentries WHERE fs = $1 AND parent = $2 AND ino = $3 LIMIT 1",
            p![fs.0 as i64, parent.0 as i64, ino.0 as i64],
            |r| col(r, 0),
        )
    }

    fn get_record(&mut self, kind: &str, name: &str) -> Result<Option<Record>> {
        self.one(
            "SELECT name, body, revision FROM records WHERE kind = $1 AND name = $2",
            p![kind.to_string(), name.to_string()],
            row_to_record,
        )
    }

    fn put_record(&mut self, kind: &str, record: &Record) -> Result<()> {
        self.exec(
            "INSERT INTO records(kind, name, body, revision) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, revision = excluded.revision",
            p![kind.to_string(), record.name.clone(), record.body.clone(), record.revision as i64],
        )
    }

    fn delete_record(&mut self, kind: &str, name: &str) -> Result<()> {
        self.exec("DELETE FROM records WHERE kind = $1 AND name = $2", p![kind.to_string(), name.to_string()])
    }

    fn list_records(&mut self, kind: &str) -> Result<Vec<Record>> {
        self.all(
            "SELECT name, body, revision FROM records WHERE kind = $1 ORDER BY name",
            p![kind.to_string()],
            row_to_record,
        )
    }

    fn inode_locks(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Lock>> {
        self.all(
            "SELECT session, owner, typ, range_start, range_end, pid FROM locks WHERE fs = $1 AND ino = $2
             ORDER BY range_start, session, owner",
            p![fs.0 as i64, ino.0 as i64],
            |r| {
                Ok(Lock {
                    // Owner numbers are any u64; they are stored bit for bit as i64.
                    owner: LockOwner { session: SessionId(int(r, 0)? as u64), owner: int(r, 1)? as u64 },
                    typ: if int(r, 2)? == LOCK_WRITE { LockType::Write } else { LockType::Read },
                    start: int(r, 3)? as u64,
                    end: int(r, 4)? as u64,
                    pid: int(r, 5)? as u32,
                })
            },
        )
    }

    fn replace_locks(&mut self, fs: FileSystemId, ino: InodeId, owner: LockOwner, locks: &[Lock]) -> Result<()> {
        let (session, number) = (owner.session.0 as i64, owner.owner as i64);
        self.exec(
            "DELETE FROM locks WHERE fs = $1 AND ino = $2 AND session = $3 AND owner = $4",
            p![fs.0 as i64, ino.0 as i64, session, number],
        )?;
        for l in locks {
            let typ = if l.typ == LockType::Write { LOCK_WRITE } else { LOCK_READ };
            self.exec(
                "INSERT INTO locks(fs, ino, session, owner, typ, range_start, range_end, pid)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                p![fs.0 as i64, ino.0 as i64, session, number, typ, l.start as i64, l.end as i64, l.pid as i64],
            )?;
        }
        Ok(())
    }

    fn delete_session_locks(&mut self, session: SessionId) -> Result<()> {
        self.exec("DELETE FROM locks WHERE session = $1", p![session.0 as i64])
    }
}
