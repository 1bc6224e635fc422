//! What a client lets its callers see and do: the access point it serves (root
//! directory and identity) and the file system's policy (read-only, root squashing).
//!
//! The policy is read from the metadata engine when the client starts and again at
//! most [`POLICY_TTL`] later, on the first operation that needs it, so a change made
//! with `floe fs policy` reaches every running client within that bound.

use crate::{FileSystem, FsError, Result};
use floe_meta::{AccessPoint, Attr, Caller, FsPolicy, InodeId, Meta, MetaError, SQUASHED_ID};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How long a client trusts the policy it read.
pub const POLICY_TTL: Duration = Duration::from_secs(1);

const READ_ONLY: u8 = 1;
const ROOT_SQUASH: u8 = 2;

/// One client's view: its root, the identity that replaces callers', and the policy.
pub(crate) struct View {
    pub(crate) root: InodeId,
    pub(crate) access_point: Option<AccessPoint>,
    /// Where callers see this client's root, for symlinks resolved through an access
    /// point.
    visible_root: PathBuf,
    /// This client refuses root access whatever the policy says.
    no_root_access: bool,
    policy: PolicyCache,
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

impl View {
    /// The view of a client: resolves (creating on first use) the access point's root.
    pub(crate) fn open(meta: &Meta, fs: &floe_meta::FileSystemInfo, config: &crate::FsConfig) -> Result<View> {
        let policy = PolicyCache::new(meta.policy(fs.id)?);
        let (access_point, root) = match &config.access_point {
            None => (None, InodeId::ROOT),
            Some(id) => {
                let ap = meta.access_point(id)?;
                if ap.fs != fs.id {
                    return Err(FsError::Invalid("the access point belongs to another file system"));
                }
                let root = meta.access_point_root(fs.id, &ap)?.ino;
                (Some(ap), root)
            }
        };
        Ok(View {
            root,
            access_point,
            visible_root: config.visible_root.clone().unwrap_or_else(|| PathBuf::from("/")),
            no_root_access: config.no_root_access,
            policy,
        })
    }
}

impl FileSystem {
    /// The directory this client serves as its root: the access point's, or the file
    /// system's.
    pub fn root(&self) -> InodeId {
        self.view.root
    }

    pub fn access_point(&self) -> Option<&AccessPoint> {
        self.view.access_point.as_ref()
    }

    /// The file system's policy, at most [`POLICY_TTL`] old.
    pub fn policy(&self) -> FsPolicy {
        self.view.policy.get(&self.meta, self.info.id)
    }

    /// The identity an operation by `caller` runs as: the access point's, whoever
    /// the caller is; and `nobody` (65534, no groups) instead of root when root
    /// access is withheld (by the policy or this client). Every operation of this
    /// client takes the identity this returns.
    pub fn identity(&self, caller: Caller) -> Caller {
        let caller = match &self.view.access_point {
            Some(ap) => ap.identity.clone(),
            None => caller,
        };
        if caller.is_root() && (self.view.no_root_access || self.policy().root_squash) {
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

    /// `..` of this client's root is the root itself: nothing above it is visible.
    /// Below it, `..` must stay inside (a directory another client moved out of the
    /// access point's tree is no longer reachable from it).
    pub(crate) fn check_dotdot(&self, parent: InodeId, found: Attr) -> Result<Attr> {
        if parent == self.view.root {
            return self.getattr(self.view.root);
        }
        if self.view.access_point.is_some() && !self.meta.is_within(self.info.id, self.view.root, found.ino)? {
            return Err(MetaError::NotFound.into());
        }
        Ok(found)
    }

    /// A symlink's target as this client's callers must see it. Through an access
    /// point, a target that could leave the root (absolute, or with a `..`) is
    /// resolved inside the root as if it were `/` and returned as an absolute path
    /// under the visible root; a relative target without `..` only descends and is
    /// returned as stored.
    pub fn readlink(&self, caller: &Caller, ino: InodeId) -> Result<Vec<u8>> {
        let target = self.meta.readlink(self.info.id, ino)?;
        if self.view.access_point.is_none() {
            return Ok(target);
        }
        let climbs = target.split(|b| *b == b'/').any(|c| c == b"..");
        if !target.starts_with(b"/") && !climbs {
            return Ok(target);
        }
        let names = self.meta.resolve_symlink(self.info.id, caller, self.view.root, ino)?;
        let mut out = self.view.visible_root.as_os_str().as_bytes().to_vec();
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
