//! What the `FileSystem` tests share: a temporary directory holding one SQLite
//! metadata database with file system "t" and one local object directory, and
//! clients (`FileSystem`s with their own connections and session) on them.

// Each test file uses a different part of it.
#![allow(dead_code)]

use floe_fs::{FileSystem, FsConfig};
use floe_meta::{Meta, SqliteStore};
use object_store::local::LocalFileSystem;
use std::path::Path;
use std::sync::Arc;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("objects")).expect("objects dir");
        let env = Env { dir };
        env.meta().create_fs("t", "uuid-t").expect("create fs");
        env
    }

    pub fn meta(&self) -> Meta {
        Meta::new(SqliteStore::open(&self.dir.path().join("meta.db")).expect("open sqlite"))
    }

    pub fn objects(&self) -> Arc<LocalFileSystem> {
        Arc::new(LocalFileSystem::new_with_prefix(self.dir.path().join("objects")).expect("object dir"))
    }

    pub fn mount(&self, config: FsConfig) -> Arc<FileSystem> {
        FileSystem::mount(self.meta(), self.objects(), "t", config).expect("mount")
    }

    pub fn object_count(&self) -> usize {
        count_files(&self.dir.path().join("objects"))
    }
}

pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| {
            let e = e.expect("dir entry");
            if e.file_type().expect("file type").is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}
