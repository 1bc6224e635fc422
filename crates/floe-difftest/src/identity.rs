//! Running one operation as another user, on the current thread only.
//!
//! The kernel checks file access against a thread's file-system uid and gid and its
//! supplementary groups. The tester (running as root) changes those three with raw
//! per-thread system calls (glibc's `setgroups` would change every thread of the
//! process) and puts root's back when the guard drops. Changing the fsuid away from 0
//! also drops the file-system capabilities (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,
//! ...) from the thread, and changing it back to 0 restores them.

/// The group every non-root test user also belongs to.
pub const SHARED_GROUP: u32 = 2000;

/// Switches the current thread's file-system identity. Only constructed when the
/// process is root.
#[derive(Debug)]
pub struct Switcher {
    root_gid: u32,
    root_groups: Vec<libc::gid_t>,
}

/// Restores root's identity on the thread when dropped.
#[must_use]
pub struct Guard<'a> {
    switcher: Option<&'a Switcher>,
}

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// The effective uid of the process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

fn current_groups() -> Vec<libc::gid_t> {
    // SAFETY: a zero size asks only for the count and writes nothing.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(len) = usize::try_from(n) else { return Vec::new() };
    let mut groups = vec![0; len];
    // SAFETY: the pointer and count describe the writable vector `groups`.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(n).unwrap_or(0));
    groups
}

fn set_fs_ids(uid: u32, gid: u32, groups: &[libc::gid_t]) {
    // SAFETY: the raw setgroups system call reads `groups.len()` gids from the live
    // slice; unlike glibc's wrapper it only changes the calling thread.
    unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    // SAFETY: setfsgid and setfsuid take plain integers and only change the calling thread.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) };
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) };
}

impl Switcher {
    /// A switcher if the process is root, else `None`.
    pub fn new() -> Option<Switcher> {
        if !is_root() {
            return None;
        }
        // SAFETY: getegid cannot fail and takes no arguments.
        let root_gid = unsafe { libc::getegid() };
        Some(Switcher { root_gid, root_groups: current_groups() })
    }

    /// Acts as `uid` (gid `uid`, groups `uid` and [`SHARED_GROUP`]) until the guard
    /// drops. Uid 0 is root itself, so nothing changes.
    pub fn become_user(&self, uid: u32) -> Guard<'_> {
        if uid == 0 {
            return Guard { switcher: None };
        }
        set_fs_ids(uid, uid, &[uid, SHARED_GROUP]);
        Guard { switcher: Some(self) }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.switcher {
            set_fs_ids(0, s.root_gid, &s.root_groups);
        }
    }
}
