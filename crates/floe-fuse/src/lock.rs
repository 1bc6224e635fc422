//! What the lock callbacks need from the kernel's side: lock types as numbers, and
//! whether a process waiting for a lock got a signal.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS itself, after which the kernel never sends
//! another: a waiting F_SETLKW is never told that its caller got a signal. But the
//! kernel keeps that signal pending while the caller's thread waits for our reply, so
//! the waiter looks at `/proc/<tid>/status` between retries and answers EINTR, which
//! the kernel turns into a restart (SA_RESTART) or EINTR for the caller.

use floe_fs::LockType;

pub(crate) fn lock_type(typ: i32) -> Option<LockType> {
    match typ {
        libc::F_RDLCK => Some(LockType::Read),
        libc::F_WRLCK => Some(LockType::Write),
        libc::F_UNLCK => Some(LockType::Unlock),
        _ => None,
    }
}

pub(crate) fn libc_type(typ: LockType) -> i32 {
    match typ {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    }
}

/// Whether thread `tid` (a request's pid is the calling thread's id) has a signal
/// pending that it does not block: for itself (SigPnd) or for its process (ShdPnd).
/// False when the thread cannot be seen (another pid namespace reports pid 0): such a
/// waiter cannot be interrupted, only granted the lock.
pub(crate) fn signal_pending(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{tid}/status")) {
        Ok(status) => pending_unblocked(&status),
        Err(_) => false,
    }
}

fn pending_unblocked(status: &str) -> bool {
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (mask("SigPnd:") | mask("ShdPnd:")) & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_signals_count_unless_blocked() {
        let status = |pnd: &str, shd: &str, blk: &str| {
            format!("Name:\tx\nSigQ:\t0/1\nSigPnd:\t{pnd}\nShdPnd:\t{shd}\nSigBlk:\t{blk}\nSigIgn:\t0\n")
        };
        assert!(!pending_unblocked(&status("0000000000000000", "0000000000000000", "0000000000000000")));
        assert!(pending_unblocked(&status("0000000000000200", "0000000000000000", "0000000000000000")));
        assert!(pending_unblocked(&status("0000000000000000", "0000000000004000", "0000000000000000")));
        assert!(!pending_unblocked(&status("0000000000000000", "0000000000004000", "0000000000004000")));
        assert!(pending_unblocked(&status("0000000000000100", "0000000000004000", "0000000000004000")));
    }

    #[test]
    fn this_thread_has_no_signal_pending() {
        assert!(!signal_pending(std::process::id()));
        assert!(!signal_pending(0));
    }
}
