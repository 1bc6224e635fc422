//! Background work of a client: session heartbeats, expiring dead clients' sessions
//! (and with them their locks), deleting objects no metadata references (garbage
//! collection), rewriting fragmented chunks (compaction), and the consistency check
//! behind `floe fsck`.

use crate::read::read_committed;
use crate::{FileSystem, Result};
use floe_meta::{NewSlice, SliceId, SliceRef, CHUNK_SIZE};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one garbage collection pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub slices: usize,
    pub bytes: u64,
}

/// What `fsck` found, and repaired when asked to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Objects no slice record names (left by a crash between upload and commit).
    pub orphan_objects: Vec<(SliceId, u32)>,
    /// Committed slices with a block object missing from storage (data loss).
    pub missing_objects: Vec<(SliceId, u32)>,
    pub expired_sessions: usize,
    pub purged_inodes: usize,
    /// Inodes, entries, link counts and slice references (see `Meta::check_namespace`).
    pub namespace: floe_meta::NamespaceReport,
    pub collected: GcReport,
    pub repaired: bool,
}

impl FsckReport {
    /// Whether the file system was consistent (before any repair).
    pub fn clean(&self) -> bool {
        self.orphan_objects.is_empty()
            && self.missing_objects.is_empty()
            && self.expired_sessions == 0
            && self.purged_inodes == 0
            && self.namespace.clean()
    }
}

/// What the background thread is asked to do between its rounds.
#[derive(Default)]
pub(crate) struct Signals {
    pub(crate) stopped: bool,
    pub(crate) collect: bool,
}

/// How long the background thread waits, once asked to collect garbage, before it
/// does: deleted data's space comes back this much later, and the deletions made
/// meanwhile are collected in the same round.
const COLLECT_AFTER: Duration = Duration::from_millis(50);

/// How often a client beats and looks for dead clients: a third of its session ttl,
/// and at least every second whatever the ttl, because other clients judge this one by
/// their own ttl (a client with a 3 s ttl must not expire one whose ttl is 60 s).
pub fn heartbeat_interval(session_ttl: Duration) -> Duration {
    (session_ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

pub(crate) fn spawn_background(fs: Arc<FileSystem>) -> JoinHandle<()> {
    let weak: Weak<FileSystem> = Arc::downgrade(&fs);
    let signals = Arc::clone(&fs.signals);
    let heartbeat_every = heartbeat_interval(fs.config.session_ttl);
    let gc_every = fs.config.gc_interval;
    drop(fs);
    std::thread::Builder::new()
        .name("floe-background".into())
        .spawn(move || {
            let mut last_gc = Instant::now();
            let mut last_beat = Instant::now();
            loop {
                let collect_now = {
                    let (lock, cvar) = &*signals;
                    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                    let (mut guard, _) = cvar
                        .wait_timeout_while(guard, heartbeat_every, |s| !s.stopped && !s.collect)
                        .unwrap_or_else(|p| p.into_inner());
                    if guard.stopped {
                        return;
                    }
                    if guard.collect {
                        // Let a burst of deletions (rm -r, a test's clean-up) gather into
                        // one round: a round per unlink cost each one a wake-up and a read.
                        guard = cvar
                            .wait_timeout_while(guard, COLLECT_AFTER, |s| !s.stopped)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        if guard.stopped {
                            return;
                        }
                    }
                    std::mem::take(&mut guard.collect)
                };
                let Some(fs) = weak.upgrade() else { return };
                if collect_now {
                    if let Err(e) = fs.collect_garbage() {
                        tracing::warn!(error = %e, "garbage collection failed");
                    }
                }
                if last_beat.elapsed() >= heartbeat_every {
                    last_beat = Instant::now();
                    fs.beat();
                }
                if last_gc.elapsed() >= gc_every {
                    last_gc = Instant::now();
                    if let Err(e) = fs.maintain() {
                        tracing::warn!(error = %e, "background maintenance failed");
                    }
                }
            }
        })
        .expect("spawning a thread only fails when the process is out of resources")
}

impl FileSystem {
    /// One heartbeat round: says this client is alive, and expires the sessions of
    /// clients that are not. Run every [`heartbeat_interval`], so a dead client's locks
    /// are free at most ttl + one interval after its last heartbeat (plus one lock retry
    /// interval for a waiter).
    fn beat(&self) {
        match self.meta.heartbeat(self.session) {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                session = %self.session,
                "this client's session was expired by another client (missed heartbeats): its locks are lost"
            ),
            Err(e) => tracing::warn!(error = %e, "session heartbeat failed"),
        }
        match self.meta.expire_sessions(self.info.id, self.config.session_ttl) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(sessions = n, "expired the sessions of dead clients");
                self.wake_lock_waiters();
            }
            Err(e) => tracing::warn!(error = %e, "expiring dead sessions failed"),
        }
    }

    /// One round of background maintenance: expire dead sessions, compact, collect.
    pub fn maintain(&self) -> Result<GcReport> {
        if self.meta.expire_sessions(self.info.id, self.config.session_ttl)? > 0 {
            self.wake_lock_waiters();
        }
        self.compact()?;
        self.collect_garbage()
    }

    /// Deletes the objects of slices nothing references, then their records.
    pub fn collect_garbage(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        loop {
            let garbage = self.meta.garbage_slices(self.info.id, 1000)?;
            if garbage.is_empty() {
                return Ok(report);
            }
            for s in garbage {
                if !s.inline {
                    self.blocks.delete_slice(s.id, s.size)?;
                }
                self.meta.forget_slice(self.info.id, s.id)?;
                report.slices += 1;
                report.bytes += s.size as u64;
            }
        }
    }

    /// Rewrites chunks with many slice references as one new slice each. Returns how
    /// many chunks were compacted.
    pub fn compact(&self) -> Result<usize> {
        if self.config.read_only {
            return Ok(0);
        }
        let mut done = 0;
        for (ino, chunk) in self.meta.fragmented_chunks(self.info.id, self.config.compact_threshold, 100)? {
            let refs = self.meta.read_chunk(self.info.id, ino, chunk)?;
            let len = refs.iter().map(|r| (r.pos + r.len) as u64).max().unwrap_or(0) as usize;
            let mut data = vec![0u8; len];
            let maps = [(chunk, Arc::new(refs.clone()))];
            read_committed(&self.blocks, &maps, chunk * CHUNK_SIZE, &mut data)?;
            let (id, inline) = if len <= self.config.inline_max {
                (self.meta.next_slice_ids(self.info.id, 1)?, true)
            } else {
                let id = self.meta.reserve_slice(self.info.id, self.session)?;
                let bs = self.blocks.block_size();
                let uploads: Vec<_> = data
                    .chunks(bs)
                    .enumerate()
                    .map(|(i, b)| self.blocks.put(id, i as u32, bytes::Bytes::copy_from_slice(b)))
                    .collect();
                for u in uploads {
                    self.blocks.wait(u).map_err(|e| crate::FsError::Store(e.to_string()))??;
                }
                (id, false)
            };
            let new_slice = NewSlice { id, size: len as u32, inline: inline.then_some(&data[..]) };
            let new_ref = SliceRef { id, size: len as u32, off: 0, len: len as u32, pos: 0, inline: None };
            if self.meta.replace_chunk_prefix(self.info.id, ino, chunk, &refs, &new_slice, &[new_ref])? {
                done += 1;
            }
            if let Some(inode) = self.inode_state(ino) {
                inode.lock().chunks.clear();
            }
        }
        Ok(done)
    }

    /// Checks that metadata and objects agree; with `repair`, deletes orphan objects,
    /// expires dead sessions and purges unlinked inodes.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport> {
        let mut report =
            FsckReport { namespace: self.meta.check_namespace(self.info.id, repair)?, ..FsckReport::default() };
        if repair {
            report.expired_sessions = self.meta.expire_sessions(self.info.id, self.config.session_ttl)?;
            report.purged_inodes = self.meta.purge_unlinked(self.info.id)?;
            report.collected = self.collect_garbage()?;
            report.repaired = true;
        }
        let bs = self.blocks.block_size() as u64;
        // Objects first: a slice is recorded before its objects are written, so every
        // object listed here that belongs to a live write has its record in the read below.
        let objects: BTreeSet<(SliceId, u32)> = self.blocks.list_objects()?.into_iter().collect();
        let slices: HashMap<SliceId, (u32, bool)> =
            self.meta.all_slices(self.info.id)?.into_iter().map(|s| (s.id, (s.size, s.inline))).collect();
        for (id, index) in &objects {
            match slices.get(id) {
                Some((size, false)) if (*index as u64) < (*size as u64).div_ceil(bs).max(1) => {}
                Some((0, false)) => {} // Reserved, still being written.
                _ => report.orphan_objects.push((*id, *index)),
            }
        }
        // Only referenced slices must have their objects: a crash in the middle of
        // collecting garbage leaves a slice record whose objects are already gone.
        let referenced = self.meta.referenced_slices(self.info.id)?;
        for (id, (size, inline)) in &slices {
            if *inline || *size == 0 || !referenced.contains(id) {
                continue;
            }
            for index in 0..(*size as u64).div_ceil(bs) as u32 {
                if !objects.contains(&(*id, index)) {
                    report.missing_objects.push((*id, index));
                }
            }
        }
        if repair {
            for (id, index) in &report.orphan_objects {
                match self.blocks.delete_block(*id, *index) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(report)
    }
}
