//! Where floe keeps its data, and opening the backends: the embedded defaults in the
//! data directory, or the shared ones (`--meta postgres://…`, `--store s3://…`) that
//! several nodes use together.

use anyhow::{Context, Result};
use floe_meta::Meta;
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data directory (`meta.db`, `objects/`, `cache/`, `node/`, `run/`) and the
/// backends this machine uses: the metadata engine and the object store a URL names
/// (flag or environment, else `floe.toml` in the data directory), or the embedded
/// ones in the data directory.
pub struct DataDir {
    pub root: PathBuf,
    /// `--meta` / `FLOE_META` / `meta =`: a `postgres://` or `sqlite://` URL.
    pub meta_url: Option<String>,
    /// `--store` / `FLOE_STORE` / `store =`: an `s3://` or `file://` URL.
    pub store_url: Option<String>,
}

/// The backend keys of `floe.toml`; the file's other keys belong to `floe up`.
#[derive(Default, serde::Deserialize)]
struct BackendKeys {
    meta: Option<String>,
    store: Option<String>,
}

impl DataDir {
    /// The directory from the flag or `FLOE_DATA_DIR`, else `/var/lib/floe` for root
    /// and `~/.local/share/floe` for others; the backends from the flags, else from
    /// the directory's `floe.toml`.
    pub fn resolve(flag: Option<PathBuf>, meta: Option<String>, store: Option<String>) -> Result<DataDir> {
        let root = match flag {
            Some(p) => p,
            None if nix::unistd::geteuid().is_root() => PathBuf::from("/var/lib/floe"),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
                Path::new(&home).join(".local/share/floe")
            }
        };
        let mut paths = DataDir { root, meta_url: None, store_url: None };
        let file = paths.root.join("floe.toml");
        let keys = if file.is_file() { backend_keys(&file)? } else { BackendKeys::default() };
        paths.meta_url = nonempty(meta).or(nonempty(keys.meta));
        paths.store_url = nonempty(store).or(nonempty(keys.store));
        Ok(paths)
    }

    /// Takes the backends a configuration file names where no flag named one.
    pub fn use_config_file(&mut self, file: &Path) -> Result<()> {
        let keys = backend_keys(file)?;
        if self.meta_url.is_none() {
            self.meta_url = nonempty(keys.meta);
        }
        if self.store_url.is_none() {
            self.store_url = nonempty(keys.store);
        }
        Ok(())
    }

    fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create the data directory {}", self.root.display()))?;
        let probe = self.root.join(".probe");
        std::fs::write(&probe, b"")
            .with_context(|| format!("the data directory {} is not writable", self.root.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }

    /// Opens the metadata engine, creating or upgrading its schema; every problem
    /// (a wrong URL, server, password or database) is one line here, at start-up.
    pub fn meta(&self) -> Result<Meta> {
        self.ensure()?;
        match &self.meta_url {
            Some(url) => Ok(floe_meta::open_url(url)?),
            None => {
                let path = self.root.join("meta.db");
                Ok(floe_meta::open_url(&path.display().to_string())?)
            }
        }
    }

    /// Opens the object store and, for S3, checks it (a probe object is written, read
    /// back and deleted), so that a wrong one stops the command at once.
    pub fn objects(&self) -> Result<Arc<dyn ObjectStore>> {
        self.ensure()?;
        if self.store_url.is_none() {
            let dir = self.root.join("objects");
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(floe_fs::store::open_url(self.store_url.as_deref(), &self.root.join("objects"))?)
    }

    /// Where the metadata engine is, for people: the URL without its password.
    pub fn meta_description(&self) -> String {
        match &self.meta_url {
            Some(url) => floe_meta::redact_url(url),
            None => self.root.join("meta.db").display().to_string(),
        }
    }

    /// What the object store is, for people (never a credential).
    pub fn store_description(&self) -> String {
        crate::status_cmd::store_description(self.store_url.as_deref(), &self.root.join("objects"))
    }

    pub fn cache(&self, fs: &str) -> PathBuf {
        self.root.join("cache").join(fs)
    }

    /// The environment that makes another floe process use the same backends (not
    /// flags: a password in a command line is visible to every user in `ps`).
    pub fn backend_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(url) = &self.meta_url {
            env.push(("FLOE_META", url.clone()));
        }
        if let Some(url) = &self.store_url {
            env.push(("FLOE_STORE", url.clone()));
        }
        env
    }
}

fn nonempty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn backend_keys(file: &Path) -> Result<BackendKeys> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
    let mut keys = BackendKeys::default();
    for (key, slot) in [("meta", &mut keys.meta), ("store", &mut keys.store)] {
        match table.get(key) {
            None => {}
            Some(toml::Value::String(s)) => *slot = Some(s.clone()),
            Some(other) => {
                anyhow::bail!("{}: {key} must be a string (a URL), not {}", file.display(), other.type_str())
            }
        }
    }
    Ok(keys)
}
