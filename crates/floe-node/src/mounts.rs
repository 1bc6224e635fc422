//! Access point mounts of a node's execution environments (ADR 10).
//!
//! A function names an access point (its ARN, or its id); the node mounts it once
//! per local mount path under `<node>/mnt/<fsap-id>/<name>` with FUSE — one
//! [`floe_fuse::Client`] per file system, so all of a file system's mounts on this
//! node share caches and write buffers — and every environment binds that
//! directory. The access point's identity and root are enforced by floe-fs inside
//! the node, never by the sandbox. `<node>/mnt` is a shared mount, so sandboxes
//! prepared before a mount existed (they are slaves of the host's mounts) see it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_fs::{FileSystem, FsConfig};
use floe_lambda::{ErrorKind, LambdaError, MountSources};
use floe_meta::{AccessPoint, AccessPointId, Meta, MetaError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use object_store::ObjectStore;

use crate::Deployment;

/// The EFS service name in ARNs.
const EFS: &str = "elasticfilesystem";

struct Mounted {
    fs_name: String,
    dir: PathBuf,
    session: fuser::BackgroundSession,
}

#[derive(Default)]
struct State {
    /// One client per file system name.
    clients: HashMap<String, Arc<floe_fuse::Client>>,
    /// By (access point, local mount path).
    mounts: HashMap<(AccessPointId, String), Mounted>,
    closed: bool,
}

/// The access points this node has mounted for its environments.
pub struct AccessPointMounts {
    meta: Meta,
    objects: Arc<dyn ObjectStore>,
    dir: PathBuf,
    deployment: Deployment,
    fs_config: FsConfig,
    state: Mutex<State>,
}

impl AccessPointMounts {
    /// The mounts of a node whose own directory for them is `dir` (`<node>/mnt`);
    /// nothing is mounted before [`AccessPointMounts::prepare`].
    pub fn new(
        meta: Meta,
        objects: Arc<dyn ObjectStore>,
        dir: &Path,
        deployment: Deployment,
        fs_config: FsConfig,
    ) -> AccessPointMounts {
        AccessPointMounts {
            meta,
            objects,
            dir: dir.to_path_buf(),
            deployment,
            fs_config,
            state: Mutex::new(State::default()),
        }
    }

    /// Detaches mounts left in the directory by a node that died, and makes the
    /// directory a shared mount of its own (needs root).
    pub fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let dir = self.dir.canonicalize()?;
        detach_mounts_below(&dir)?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        mount(Some(&dir), &dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(std::io::Error::from)?;
        mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_SHARED, None::<&str>).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// The access point a mount source names: `fsap-…` or its ARN in this
    /// deployment.
    pub fn access_point_id(&self, source: &str) -> Result<AccessPointId, LambdaError> {
        let id = if source.starts_with("arn:") {
            let resource = self.deployment.resource(EFS, source).ok_or_else(|| {
                LambdaError::invalid(format!(
                    "FileSystemConfigs Arn {source} is not an access point of this deployment \
                     (arn:aws:{EFS}:{}:{}:access-point/fsap-…)",
                    self.deployment.region, self.deployment.account_id
                ))
            })?;
            resource.strip_prefix("access-point/").unwrap_or("")
        } else {
            source
        };
        AccessPointId::parse(id)
            .map_err(|_| LambdaError::invalid(format!("FileSystemConfigs Arn {source} is not an access point ARN")))
    }

    fn access_point(&self, source: &str, kind: ErrorKind) -> Result<AccessPoint, LambdaError> {
        let id = self.access_point_id(source)?;
        match self.meta.access_point(&id) {
            Ok(ap) => Ok(ap),
            Err(MetaError::NoAccessPoint(_) | MetaError::NotFound) => {
                Err(LambdaError::new(kind, format!("The access point {id} ({source}) does not exist")))
            }
            Err(e) => Err(LambdaError::service(format!("access point {id}: {e}"))),
        }
    }

    fn client(&self, state: &mut State, fs_name: &str) -> Result<Arc<floe_fuse::Client>, LambdaError> {
        if let Some(client) = state.clients.get(fs_name) {
            return Ok(Arc::clone(client));
        }
        // One disk cache directory per file system: each client bounds its own.
        let mut config = self.fs_config.clone();
        if let Some((dir, limit)) = config.disk_cache.take() {
            config.disk_cache = Some((dir.join(fs_name), limit));
        }
        let fs = FileSystem::mount(self.meta.clone(), Arc::clone(&self.objects), fs_name, config)
            .map_err(|e| LambdaError::new(ErrorKind::EfsMountFailure, format!("file system {fs_name}: {e}")))?;
        let client = Arc::new(floe_fuse::Client::new(fs));
        state.clients.insert(fs_name.to_string(), Arc::clone(&client));
        Ok(client)
    }

    /// Unmounts every mount of the file system named `fs_name` on this node and
    /// closes its client (its session ends). Environments that bind them must be
    /// gone.
    pub fn release_file_system(&self, fs_name: &str) {
        off_runtime(|| self.release_file_system_now(fs_name))
    }

    fn release_file_system_now(&self, fs_name: &str) {
        let mut state = self.state.lock().expect("mount state lock poisoned");
        let keys: Vec<_> = state.mounts.iter().filter(|(_, m)| m.fs_name == fs_name).map(|(k, _)| k.clone()).collect();
        for key in keys {
            if let Some(m) = state.mounts.remove(&key) {
                unmount(m);
            }
        }
        if let Some(client) = state.clients.remove(fs_name) {
            if let Err(e) = client.fs().close() {
                tracing::warn!(fs = fs_name, error = %e, "closing the file system client failed");
            }
        }
    }

    /// Unmounts what this node mounted for access point `id`.
    pub fn release_access_point(&self, id: &AccessPointId) {
        let mut state = self.state.lock().expect("mount state lock poisoned");
        let keys: Vec<_> = state.mounts.keys().filter(|(ap, _)| ap == id).cloned().collect();
        for key in keys {
            if let Some(m) = state.mounts.remove(&key) {
                unmount(m);
            }
        }
    }

    /// The file systems this node has a client of.
    pub fn file_systems(&self) -> Vec<String> {
        self.state.lock().expect("mount state lock poisoned").clients.keys().cloned().collect()
    }

    /// Unmounts everything and closes every client (node shutdown); no mount is
    /// made after this.
    pub fn close(&self) {
        off_runtime(|| self.close_now())
    }

    fn close_now(&self) {
        let (mounts, clients) = {
            let mut state = self.state.lock().expect("mount state lock poisoned");
            state.closed = true;
            (std::mem::take(&mut state.mounts), std::mem::take(&mut state.clients))
        };
        for (_, m) in mounts {
            unmount(m);
        }
        for (name, client) in clients {
            if let Err(e) = client.fs().close() {
                tracing::warn!(fs = name, error = %e, "closing the file system client failed");
            }
        }
        let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
    }
}

impl Drop for AccessPointMounts {
    fn drop(&mut self) {
        if !self.state.get_mut().map(|s| s.closed).unwrap_or(true) {
            self.close();
        }
    }
}

/// Runs `f` on a thread of its own: closing a file system client drops the Tokio
/// runtime of its block store, which may not happen on a thread of another runtime
/// (the node's async handlers call in here).
fn off_runtime(f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        if s.spawn(f).join().is_err() {
            tracing::error!("releasing mounts panicked");
        }
    });
}

fn unmount(m: Mounted) {
    let Mounted { dir, session, .. } = m;
    // A lazy detach first: a mount still bound in a dying sandbox must not block
    // the node's shutdown. The session's thread ends when the kernel lets go.
    let _ = umount2(&dir, MntFlags::MNT_DETACH);
    let waiter = std::thread::spawn(move || session.join());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !waiter.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !waiter.is_finished() {
        tracing::warn!(path = %dir.display(), "a FUSE session did not end within 5 s of its unmount");
    }
    let _ = std::fs::remove_dir(&dir);
}

impl MountSources for AccessPointMounts {
    fn check(&self, source: &str) -> Result<(), LambdaError> {
        self.access_point(source, ErrorKind::InvalidParameterValue).map(|_| ())
    }

    fn resolve(&self, source: &str, local_mount_path: &str) -> Result<PathBuf, LambdaError> {
        let ap = self.access_point(source, ErrorKind::EfsMountFailure)?;
        let key = (ap.id.clone(), local_mount_path.to_string());
        let mut state = self.state.lock().expect("mount state lock poisoned");
        if state.closed {
            return Err(LambdaError::new(ErrorKind::EfsMountFailure, "the node is stopping"));
        }
        if let Some(m) = state.mounts.get(&key) {
            if !m.session.guard.is_finished() {
                return Ok(m.dir.clone());
            }
            // Its server ended (unmounted from outside): mount again.
            if let Some(m) = state.mounts.remove(&key) {
                unmount(m);
            }
        }
        let fs_name = self
            .meta
            .list_fs()
            .map_err(|e| LambdaError::service(format!("file systems: {e}")))?
            .into_iter()
            .find(|f| f.id == ap.fs)
            .map(|f| f.name)
            .ok_or_else(|| {
                LambdaError::new(ErrorKind::EfsMountFailure, format!("the file system of {} is gone", ap.id))
            })?;
        let client = self.client(&mut state, &fs_name)?;
        let name = local_mount_path.trim_start_matches("/mnt/");
        let dir = self.dir.join(ap.id.as_str()).join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LambdaError::service(format!("create mount point {}: {e}", dir.display())))?;
        let options = floe_fuse::MountOptions {
            ttl: Duration::from_secs(1),
            threads: 4,
            allow_other: true,
            read_only: false,
            default_permissions: false,
            access_point: Some(ap.id.clone()),
            visible_root: Some(PathBuf::from(local_mount_path)),
        };
        let session = client
            .mount(&dir, &options)
            .map_err(|e| LambdaError::new(ErrorKind::EfsMountFailure, format!("mount access point {}: {e}", ap.id)))?;
        tracing::info!(access_point = %ap.id, fs = %fs_name, path = %dir.display(), "mounted for functions");
        state.mounts.insert(key, Mounted { fs_name, dir: dir.clone(), session });
        Ok(dir)
    }
}

/// Mount points at or below `dir`, from this process's mount table, in table order.
/// Detaches every mount at or below `dir` (a canonical path), the deepest first: what
/// a node that died left in its mount directory.
pub fn detach_mounts_below(dir: &Path) -> std::io::Result<()> {
    // The mount table lists a mount after the one it sits on.
    for stale in mounts_below(dir)?.into_iter().rev() {
        if let Err(e) = umount2(&stale, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %stale.display(), error = %e, "cannot detach a stale mount");
        }
    }
    Ok(())
}

fn mounts_below(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b/c\134d"), "/a b/c\\d");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
