//! What a client lets its callers see and do: per mount, a [`View`] (the root
//! directory and, through an access point, the identity); per client, the file
//! system's policy (read-only, root squashing).
//!
//! The policy is read from the metadata engine when the client starts and again at
//! most [`POLICY_TTL`] later, on the first operation that needs it, so a change made
//! with `floe fs policy` reaches every running client within that bound.

use crate::{FileSystem, FsError, Result};
use floe_meta::{AccessPoint, AccessPointId, Attr, Caller, FsPolicy, InodeId, Meta, MetaError, SQUASHED_ID};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How long a client trusts the policy it read.
pub const POLICY_TTL: Duration = Duration::from_secs(1);

const READ_ONLY: u8 = 1;
const ROOT_SQUASH: u8 = 2;

/// What one mount shows: the directory it serves as its root and, through an access
/// point, the identity every operation takes. A client may serve several views.
#[derive(Clone, Debug)]
pub struct View {
    root: InodeId,
    access_point: Option<AccessPoint>,
    /// Where the callers see this view's root, for symlinks resolved through an access
    /// point.
    visible_root: PathBuf,
}

impl View {
    /// The directory this view serves as its root.
    pub fn root(&self) -> InodeId {
        self.root
    }

    pub fn access_point(&self) -> Option<&AccessPoint> {
        self.access_point.as_ref()
    }
}

/// The client-wide part: the file system's policy and this client's own refusal of
/// root access.
pub(crate) struct Policy {
    no_root_access: bool,
    cache: PolicyCache,
}

/// The file system's policy as last read, refreshed when older than [`POLICY_TTL`].
struct PolicyCache {
    bits: AtomicU8,
    /// Milliseconds since `epoch` when the policy was last read.
    read_at: AtomicU64,
    epoch: Instant,
}

impl PolicyCache {
    fn new(policy: FsPolicy) -> PolicyCache {
        let cache = PolicyCache { bits: AtomicU8::new(0), read_at: AtomicU64::new(0), epoch: Instant::now() };
        cache.store(policy);
        cache
    }

    fn store(&self, p: FsPolicy) {
        let bits = if p.read_only { READ_ONLY } else { 0 } | if p.root_squash { ROOT_SQUASH } else { 0 };
        self.bits.store(bits, Ordering::Relaxed);
    }

    fn get(&self, meta: &Meta, fs: floe_meta::FileSystemId) -> FsPolicy {
        let now = self.epoch.elapsed().as_millis() as u64;
        let read_at = self.read_at.load(Ordering::Relaxed);
        // One thread re-reads; the others use the policy they have meanwhile.
        if now.saturating_sub(read_at) >= POLICY_TTL.as_millis() as u64
            && self.read_at.compare_exchange(read_at, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            match meta.policy(fs) {
                Ok(p) => self.store(p),
                Err(e) => tracing::warn!(error = %e, "cannot read the file system policy; keeping the last one"),
            }
        }
        let bits = self.bits.load(Ordering::Relaxed);
        FsPolicy { read_only: bits & READ_ONLY != 0, root_squash: bits & ROOT_SQUASH != 0 }
    }
}

impl Policy {
    pub(crate) fn open(meta: &Meta, fs: &floe_meta::FileSystemInfo, config: &crate::FsConfig) -> Result<Policy> {
        Ok(Policy { no_root_access: config.no_root_access, cache: PolicyCache::new(meta.policy(fs.id)?) })
    }
}

impl FileSystem {
    /// The view of the whole file system, as the caller is.
    pub fn plain_view(&self) -> View {
        View { root: InodeId::ROOT, access_point: None, visible_root: PathBuf::from("/") }
    }

    /// The view of access point `id`: its root directory (created on first use, with
    /// the owner and mode the access point says) and its identity. Symlinks resolved
    /// through it are returned under `visible_root`, where callers see its root.
    pub fn access_point_view(&self, id: &AccessPointId, visible_root: PathBuf) -> Result<View> {
        let ap = self.meta.access_point(id)?;
        if ap.fs != self.info.id {
            return Err(FsError::Invalid("the access point belongs to another file system"));
        }
        let root = self.meta.access_point_root(self.info.id, &ap)?.ino;
        Ok(View { root, access_point: Some(ap), visible_root })
    }

    /// The file system's policy, at most [`POLICY_TTL`] old.
    pub fn policy(&self) -> FsPolicy {
        self.policy.cache.get(&self.meta, self.info.id)
    }

    /// The identity an operation by `caller` runs as through `view`: the access
    /// point's, whoever the caller is; and `nobody` (65534, no groups) instead of root
    /// when root access is withheld (by the policy or this client). Every operation
    /// takes the identity this returns.
    pub fn identity(&self, view: &View, caller: Caller) -> Caller {
        let caller = match &view.access_point {
            Some(ap) => ap.identity.clone(),
            None => caller,
        };
        if caller.is_root() && (self.policy.no_root_access || self.policy().root_squash) {
            return Caller { uid: SQUASHED_ID, gid: SQUASHED_ID, groups: Vec::new() };
        }
        caller
    }

    /// Refuses changes when this client or the file system's policy is read-only.
    pub(crate) fn writable(&self) -> Result<()> {
        if self.config.read_only || self.policy().read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Looks `name` up in `parent` as `view` shows it: `..` of the view's root is the
    /// root itself, and below it `..` stays inside (a directory another client moved
    /// out of an access point's tree is no longer reachable from it).
    pub fn lookup_in(&self, view: &View, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        if name == b".." {
            if parent == view.root {
                return self.getattr(view.root);
            }
            let found = self.lookup(caller, parent, name)?;
            if view.access_point.is_some() && !self.meta.is_within(self.info.id, view.root, found.ino)? {
                return Err(MetaError::NotFound.into());
            }
            return Ok(found);
        }
        self.lookup(caller, parent, name)
    }

    /// The parent of a directory, for "..": never above the view's root.
    pub fn parent_in(&self, view: &View, dir: InodeId) -> Result<Attr> {
        if dir == view.root {
            return self.getattr(dir);
        }
        self.parent_of(dir)
    }

    /// A symlink's target as `view`'s callers must see it. Through an access point, a
    /// target that could leave the root (absolute, or with a `..`) is resolved inside
    /// the root as if it were `/` and returned as an absolute path under the visible
    /// root; a relative target without `..` only descends and is returned as stored.
    pub fn readlink_in(&self, view: &View, caller: &Caller, ino: InodeId) -> Result<Vec<u8>> {
        let target = self.readlink(ino)?;
        if view.access_point.is_none() {
            return Ok(target);
        }
        let climbs = target.split(|b| *b == b'/').any(|c| c == b"..");
        if !target.starts_with(b"/") && !climbs {
            return Ok(target);
        }
        let names = self.meta.resolve_symlink(self.info.id, caller, view.root, ino)?;
        let mut out = view.visible_root.as_os_str().as_bytes().to_vec();
        for name in names {
            if !out.ends_with(b"/") {
                out.push(b'/');
            }
            out.extend_from_slice(&name);
        }
        if out.len() > floe_meta::SYMLINK_MAX {
            return Err(MetaError::NameTooLong.into());
        }
        Ok(out)
    }
}
