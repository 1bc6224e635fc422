//! Where floe keeps its data, and opening the embedded backends there.

use anyhow::{Context, Result};
use floe_meta::{Meta, SqliteStore};
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data directory: `meta.db` (SQLite), `objects/` (block objects), `cache/`.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    /// The directory from the flag or `FLOE_DATA_DIR`, else `/var/lib/floe` for root
    /// and `~/.local/share/floe` for others.
    pub fn resolve(flag: Option<PathBuf>) -> Result<DataDir> {
        let root = match flag {
            Some(p) => p,
            None if nix::unistd::geteuid().is_root() => PathBuf::from("/var/lib/floe"),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
                Path::new(&home).join(".local/share/floe")
            }
        };
        Ok(DataDir { root })
    }

    fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(self.root.join("objects"))
            .with_context(|| format!("cannot create the data directory {}", self.root.display()))?;
        let probe = self.root.join(".probe");
        std::fs::write(&probe, b"")
            .with_context(|| format!("the data directory {} is not writable", self.root.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }

    pub fn meta(&self) -> Result<Meta> {
        self.ensure()?;
        let path = self.root.join("meta.db");
        let store = SqliteStore::open(&path)
            .with_context(|| format!("cannot open the metadata database {}", path.display()))?;
        Ok(Meta::new(store))
    }

    /// The object store: the one `FLOE_STORE` names (`s3://bucket?...` or
    /// `file:///path`, see `floe_fs::store`) when it is set, else `objects/`. An S3
    /// store is checked here, so a wrong one stops the command at once.
    pub fn objects(&self) -> Result<Arc<dyn ObjectStore>> {
        let url = std::env::var("FLOE_STORE").ok().filter(|u| !u.is_empty());
        Ok(floe_fs::store::open_url(url.as_deref(), &self.root.join("objects"))?)
    }

    pub fn cache(&self, fs: &str) -> PathBuf {
        self.root.join("cache").join(fs)
    }
}
