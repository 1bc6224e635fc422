//! The identity of the process behind a FUSE request.
//!
//! The kernel sends uid, gid and pid but not supplementary groups, so those are read
//! from `/proc/<pid>/status` (the pid is the calling thread's) and cached briefly.

use floe_fs::Caller;
use fuser::Request;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const GROUPS_TTL: Duration = Duration::from_secs(1);

/// (pid, uid, gid) of a request.
type CallerKey = (u32, u32, u32);

#[derive(Default)]
pub(crate) struct Callers {
    groups: Mutex<HashMap<CallerKey, (Instant, Vec<u32>)>>,
}

impl Callers {
    pub(crate) fn of(&self, req: &Request) -> Caller {
        let (uid, gid, pid) = (req.uid(), req.gid(), req.pid());
        if uid == 0 || pid == 0 {
            return Caller { uid, gid, groups: Vec::new() };
        }
        let key = (pid, uid, gid);
        let mut cache = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, groups)) = cache.get(&key) {
            if at.elapsed() < GROUPS_TTL {
                return Caller { uid, gid, groups: groups.clone() };
            }
        }
        let groups = read_groups(pid);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), groups.clone()));
        Caller { uid, gid, groups }
    }
}

fn read_groups(pid: u32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Vec::new() };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}
