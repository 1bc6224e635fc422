//! Shared helpers: pairs of fresh local directories to compare.

#![allow(dead_code)]

use std::path::Path;
use tempfile::TempDir;

/// A temporary directory removed on drop even when a run left directories in it that
/// its owner cannot write to (a failing run keeps its directories, whatever modes the
/// operations gave them).
pub struct Dir(TempDir);

impl Dir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        floe_difftest::runner::remove_run_dir(self.0.path());
    }
}

/// Two fresh, empty directories on tmpfs (`/dev/shm`) when there is one, else in the
/// temporary directory.
pub fn two_dirs() -> (Dir, Dir) {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let make = |side: &str| {
        tempfile::Builder::new()
            .prefix(&format!("floe-difftest-{side}-"))
            .tempdir_in(&base)
            .expect("create a temporary directory")
    };
    let make = |side: &str| Dir(make(side));
    (make("a"), make("b"))
}

/// The names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read a test directory")
        .map(|e| e.expect("read a test directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
