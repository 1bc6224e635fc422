//! What the `FileSystem` tests share: a temporary directory holding one SQLite
//! metadata database with file system "t", an object store (the directory's
//! `objects/`, or one given, e.g. an S3 bucket), and clients (`FileSystem`s with
//! their own connections and session) on them.

// Each test file uses a different part of it.
#![allow(dead_code)]

use floe_fs::{FileSystem, FsConfig};
use floe_meta::{Meta, SqliteStore};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;
use std::sync::Arc;

pub struct Env {
    pub dir: tempfile::TempDir,
    /// The object store when it is not the directory's `objects/`.
    pub store: Option<Arc<dyn ObjectStore>>,
}

impl Env {
    pub fn new() -> Env {
        Env::with_store(None)
    }

    /// Metadata in a temporary directory, objects in `store` (which should be empty).
    pub fn on(store: Arc<dyn ObjectStore>) -> Env {
        Env::with_store(Some(store))
    }

    fn with_store(store: Option<Arc<dyn ObjectStore>>) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("objects")).expect("objects dir");
        let env = Env { dir, store };
        env.meta().create_fs("t", "uuid-t").expect("create fs");
        env
    }

    pub fn meta(&self) -> Meta {
        Meta::new(SqliteStore::open(&self.dir.path().join("meta.db")).expect("open sqlite"))
    }

    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        match &self.store {
            Some(store) => Arc::clone(store),
            // The product's local store: direct writes, synced (ADR 7, ADR 14).
            None => floe_fs::store::open_local(&self.dir.path().join("objects")).expect("object dir"),
        }
    }

    pub fn mount(&self, config: FsConfig) -> Arc<FileSystem> {
        FileSystem::mount(self.meta(), self.objects(), "t", config).expect("mount")
    }

    /// How many objects the store holds (every file of the local directory, so that
    /// uploads in progress count too, except the staging files of uploads a crash cut
    /// short: `object_store` writes `<object>#<n>` and renames it, and a writer killed
    /// in between leaves one that is not an object).
    pub fn object_count(&self) -> usize {
        match &self.store {
            None => count_files(&self.dir.path().join("objects"), &|name| !name.contains('#')),
            Some(store) => block_on(store.list(None).try_collect::<Vec<_>>()).expect("list objects").len(),
        }
    }

    /// Deletes every object of file system "t", as a lost disk or bucket would.
    pub fn lose_objects(&self) {
        match &self.store {
            None => std::fs::remove_dir_all(self.dir.path().join("objects/uuid-t")).expect("delete objects"),
            Some(store) => block_on(async {
                let prefix = object_store::path::Path::from("uuid-t");
                let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list objects");
                for o in objects {
                    store.delete(&o.location).await.expect("delete an object");
                }
            }),
        }
    }
}

impl Drop for Env {
    /// A store other than the temporary directory is emptied (each test has a prefix
    /// of its own there); not while panicking, when the store may be what failed.
    fn drop(&mut self) {
        let Some(store) = &self.store else { return };
        if std::thread::panicking() {
            return;
        }
        block_on(async {
            let Ok(objects) = store.list(None).try_collect::<Vec<_>>().await else { return };
            for o in objects {
                let _ = store.delete(&o.location).await;
            }
        });
    }
}

/// Runs a future of the test itself (not of a `FileSystem`) to completion.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// Files under `dir` whose names `wanted` accepts.
pub fn count_files(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| {
            let e = e.expect("dir entry");
            if e.file_type().expect("file type").is_dir() {
                count_files(&e.path(), wanted)
            } else {
                usize::from(wanted(&e.file_name().to_string_lossy()))
            }
        })
        .sum()
}
