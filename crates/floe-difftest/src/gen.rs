//! Generating random steps from a seed.
//!
//! To hit existing paths often, the generator keeps a model of the names that exist and
//! of the open handle slots, updated after each step from whether it succeeded. Both
//! sides must agree on that (the run stops at the first disagreement), so the sequence
//! depends only on the seed, the settings and the agreed results — never on one side's
//! results alone. The model is approximate (it does not follow symlinks or track
//! permissions), which only makes some operations fail, identically on both sides.

use crate::op::{Op, OpenFlags, RenameHow, Step, Time, XattrHow, HANDLES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Names for files (and sometimes directories); a small pool so operations collide often.
const FILE_NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
/// Names for directories (and sometimes files).
const DIR_NAMES: [&str; 3] = ["x", "y", "z"];
/// How deep new directories nest below the run directory.
const MAX_DEPTH: usize = 3;
/// Directories created before the first step: a sticky world-writable one and a
/// setgid one, with their modes.
pub const SETUP_DIRS: [(&str, u32); 2] = [("s", 0o1777), ("g", 0o2777)];
const XATTR_NAMES: [&str; 4] = ["user.a", "user.b", "user.c", "user.long-name-for-a-longer-attribute"];
const MODES: [u32; 13] =
    [0o644, 0o755, 0o600, 0o700, 0o777, 0o666, 0o000, 0o444, 0o4755, 0o2755, 0o1777, 0o2775, 0o6755];
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Generates steps.
pub struct Generator {
    rng: StdRng,
    uids: Vec<u32>,
    uid: u32,
    xattrs: bool,
    next: usize,
    /// Handle slots expected to be open.
    open: Vec<u8>,
    dirs: Vec<String>,
    files: Vec<String>,
    links: Vec<String>,
}

fn depth(p: &str) -> usize {
    if p.is_empty() {
        0
    } else {
        p.split('/').count()
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn add(list: &mut Vec<String>, p: &str) {
    if !list.iter().any(|x| x == p) {
        list.push(p.to_string());
    }
}

fn remove(list: &mut Vec<String>, p: &str) {
    list.retain(|x| x != p);
}

/// Moves `from` and everything below it to `to` in one model list.
fn rename_in(list: &mut [String], from: &str, to: &str) {
    for x in list.iter_mut() {
        if x == from {
            *x = to.to_string();
        } else if let Some(rest) = x.strip_prefix(from).and_then(|r| r.strip_prefix('/')) {
            *x = format!("{to}/{rest}");
        }
    }
}

impl Generator {
    /// A generator for `seed` whose steps run as the given uids (at least one) and
    /// include xattr operations when `xattrs`.
    pub fn new(seed: u64, uids: &[u32], xattrs: bool) -> Generator {
        let uids = if uids.is_empty() { vec![0] } else { uids.to_vec() };
        let mut dirs = vec![String::new()];
        dirs.extend(SETUP_DIRS.iter().map(|(name, _)| name.to_string()));
        let uid = uids[0];
        Generator {
            rng: StdRng::seed_from_u64(seed),
            uids,
            uid,
            xattrs,
            next: 0,
            open: Vec::new(),
            dirs,
            files: Vec::new(),
            links: Vec::new(),
        }
    }

    fn pct(&mut self) -> u32 {
        self.rng.random_range(0..100)
    }

    fn pick(&mut self, list: &[String]) -> Option<String> {
        if list.is_empty() {
            None
        } else {
            Some(list[self.rng.random_range(0..list.len())].clone())
        }
    }

    /// A name, mostly from the pool for files or for directories.
    fn name(&mut self, for_dir: bool) -> &'static str {
        let pool: &[&'static str] = if for_dir == (self.pct() < 85) { &DIR_NAMES } else { &FILE_NAMES };
        pool[self.rng.random_range(0..pool.len())]
    }

    /// A path in a directory the model knows (maybe the run directory itself).
    fn new_path_for(&mut self, for_dir: bool) -> String {
        let parents: Vec<String> = self.dirs.iter().filter(|d| depth(d) < MAX_DEPTH).cloned().collect();
        let parent = self.pick(&parents).unwrap_or_default();
        let name = self.name(for_dir);
        join(&parent, name)
    }

    fn new_path(&mut self) -> String {
        self.new_path_for(false)
    }

    fn file(&mut self) -> String {
        let files = self.files.clone();
        match self.pick(&files) {
            Some(f) if self.pct() < 80 => f,
            _ => self.new_path(),
        }
    }

    fn dir(&mut self) -> String {
        let dirs: Vec<String> = self.dirs.iter().filter(|d| !d.is_empty()).cloned().collect();
        match self.pick(&dirs) {
            Some(d) if self.pct() < 80 => d,
            _ => self.new_path_for(true),
        }
    }

    fn link(&mut self) -> String {
        let links = self.links.clone();
        match self.pick(&links) {
            Some(l) if self.pct() < 80 => l,
            _ => self.new_path(),
        }
    }

    /// Any path: mostly ones the model expects to exist.
    fn path(&mut self) -> String {
        match self.pct() {
            0..50 => self.file(),
            50..70 => self.dir(),
            70..78 => self.link(),
            _ => self.new_path(),
        }
    }

    /// A directory path, sometimes the run directory itself (`.`).
    fn dir_or_root(&mut self) -> String {
        if self.pct() < 15 {
            ".".to_string()
        } else {
            self.dir()
        }
    }

    /// A handle slot for an operation on an open file: mostly one expected to be open.
    fn handle(&mut self) -> u8 {
        if !self.open.is_empty() && self.pct() < 85 {
            self.open[self.rng.random_range(0..self.open.len())]
        } else {
            self.rng.random_range(0..HANDLES)
        }
    }

    /// A handle slot to open into: mostly a free one.
    fn free_handle(&mut self) -> u8 {
        let free: Vec<u8> = (0..HANDLES).filter(|h| !self.open.contains(h)).collect();
        if !free.is_empty() && self.pct() < 80 {
            free[self.rng.random_range(0..free.len())]
        } else {
            self.rng.random_range(0..HANDLES)
        }
    }

    fn mode(&mut self) -> u32 {
        if self.pct() < 60 {
            MODES[self.rng.random_range(0..MODES.len())]
        } else {
            self.rng.random_range(0..0o10000)
        }
    }

    /// A mode for a new directory: mostly one every user can work in.
    fn dir_mode(&mut self) -> u32 {
        match self.pct() {
            0..50 => 0o777,
            50..65 => 0o1777,
            65..75 => 0o2777,
            75..82 => 0o755,
            _ => self.mode(),
        }
    }

    /// A mode for a new file: mostly one every user can read and write.
    fn file_mode(&mut self) -> u32 {
        if self.pct() < 50 {
            0o666
        } else {
            self.mode()
        }
    }

    fn write_len(&mut self) -> u32 {
        match self.pct() {
            0..6 => 0,
            6..60 => self.rng.random_range(1..4096),
            60..90 => self.rng.random_range(4096..65536),
            _ => self.rng.random_range(65536..=200 * 1024),
        }
    }

    /// An offset: mostly near the start, sometimes far past the end (holes), sometimes
    /// just below the 4 MiB or 64 MiB boundaries so that a small access crosses them.
    fn offset(&mut self, len: u64) -> u64 {
        let below = |rng: &mut StdRng, boundary: u64| boundary - rng.random_range(0..=len.clamp(1, 8192));
        match self.pct() {
            0..25 => 0,
            25..65 => self.rng.random_range(0..256 * KIB),
            65..83 => self.rng.random_range(256 * KIB..2 * MIB),
            83..92 => below(&mut self.rng, 4 * MIB),
            92..95 => below(&mut self.rng, 64 * MIB),
            _ => self.rng.random_range(0..8 * MIB),
        }
    }

    fn size(&mut self) -> u64 {
        match self.pct() {
            0..25 => 0,
            25..70 => self.rng.random_range(0..256 * KIB),
            70..88 => self.rng.random_range(0..4 * MIB + 8192),
            88..96 => 4 * MIB + self.rng.random_range(0..8192) - 4096,
            _ => 64 * MIB + self.rng.random_range(0..8192) - 4096,
        }
    }

    fn open_flags(&mut self) -> OpenFlags {
        let mut flags = match self.pct() {
            0..30 => libc::O_RDONLY,
            30..55 => libc::O_WRONLY,
            _ => libc::O_RDWR,
        };
        for (bit, pct) in [(libc::O_CREAT, 55), (libc::O_EXCL, 12), (libc::O_TRUNC, 15), (libc::O_APPEND, 15)] {
            if self.pct() < pct {
                flags |= bit;
            }
        }
        for (bit, pct) in [(libc::O_DIRECTORY, 3), (libc::O_NOFOLLOW, 5)] {
            if self.pct() < pct {
                flags |= bit;
            }
        }
        OpenFlags(flags)
    }

    fn time(&mut self) -> Time {
        match self.pct() {
            0..20 => Time::Omit,
            20..35 => Time::Now,
            _ => {
                Time::At { sec: self.rng.random_range(0..2_000_000_000), nsec: self.rng.random_range(0..1_000_000_000) }
            }
        }
    }

    /// A symlink target: a downward relative path (so that nothing resolves outside
    /// the run directory), sometimes dangling, sometimes the link itself (a loop).
    fn target(&mut self, link: &str) -> String {
        match self.pct() {
            0..10 => link.rsplit('/').next().unwrap_or(link).to_string(),
            10..15 => ".".to_string(),
            15..45 => self.name(false).to_string(),
            _ => {
                let n = self.rng.random_range(1..=2);
                let mut parts: Vec<&str> = (0..n).map(|_| self.name(true)).collect();
                parts.push(self.name(false));
                parts.join("/")
            }
        }
    }

    fn id(&mut self, choices: &[u32]) -> Option<u32> {
        if self.pct() < 30 {
            None
        } else {
            Some(choices[self.rng.random_range(0..choices.len())])
        }
    }

    fn xattr_name(&mut self) -> String {
        XATTR_NAMES[self.rng.random_range(0..XATTR_NAMES.len())].to_string()
    }

    fn fill(&mut self) -> u64 {
        self.rng.random()
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        let index = self.next;
        self.next += 1;
        // Users change now and then, so one user's operations often follow each other.
        if self.pct() < 20 {
            self.uid = self.uids[self.rng.random_range(0..self.uids.len())];
        }
        let mut uid = self.uid;
        let op = self.op();
        if matches!(op, Op::Chown { .. }) && self.uids.contains(&0) && self.pct() < 50 {
            uid = 0;
        }
        Step { index, uid, op }
    }

    /// Updates the model with the agreed result of a step this generator made.
    pub fn observe(&mut self, step: &Step, succeeded: bool) {
        match &step.op {
            // Opening always empties the slot first; closing always empties it.
            Op::Open { h, .. } | Op::Close { h } => self.open.retain(|x| x != h),
            _ => {}
        }
        if succeeded {
            self.update_model(&step.op);
        }
    }

    fn op(&mut self) -> Op {
        let weights: u32 = if self.xattrs { 121 } else { 114 };
        let r = self.rng.random_range(0..weights);
        match r {
            0..12 => {
                let (h, flags, mode) = (self.free_handle(), self.open_flags(), self.file_mode());
                let path = if self.pct() < 90 { self.file() } else { self.path() };
                Op::Open { h, path, flags, mode }
            }
            12..16 => Op::Close { h: self.handle() },
            16..28 => {
                let (h, len) = (self.handle(), self.write_len());
                Op::Pwrite { h, off: self.offset(u64::from(len)), len, fill: self.fill() }
            }
            28..33 => Op::Write { h: self.handle(), len: self.write_len(), fill: self.fill() },
            33..41 => {
                let (h, len) = (self.handle(), self.write_len());
                Op::Pread { h, off: self.offset(u64::from(len)), len }
            }
            41..44 => Op::Read { h: self.handle(), len: self.write_len() },
            44..47 => Op::Ftruncate { h: self.handle(), len: self.size() },
            47..50 => Op::Truncate { path: self.file(), len: self.size() },
            50..51 => Op::Fsync { h: self.handle() },
            51..53 => {
                let (h, punch) = (self.handle(), self.pct() < 50);
                let len = self.rng.random_range(0..MIB);
                Op::Fallocate { h, punch, off: self.offset(len).min(8 * MIB), len }
            }
            53..56 => Op::Fstat { h: self.handle() },
            56..62 => Op::Stat { path: self.path(), follow: self.pct() < 50 },
            62..67 => Op::Mkdir { path: self.new_path_for(true), mode: self.dir_mode() },
            67..70 => Op::Rmdir { path: self.dir() },
            70..74 => Op::Unlink { path: self.path() },
            74..81 => self.rename(),
            81..83 => Op::Link { from: self.file(), to: self.new_path() },
            83..85 => {
                let path = self.new_path();
                Op::Symlink { target: self.target(&path), path }
            }
            85..86 => Op::Readlink { path: self.link() },
            86..89 => Op::Chmod { path: self.path(), mode: self.mode() },
            89..92 => {
                let mut owners = self.uids.clone();
                owners.push(crate::identity::SHARED_GROUP);
                let mut groups = owners.clone();
                groups.push(0);
                Op::Chown {
                    path: self.path(),
                    owner: self.id(&owners),
                    group: self.id(&groups),
                    follow: self.pct() < 70,
                }
            }
            92..95 => {
                Op::Utimens { path: self.path(), atime: self.time(), mtime: self.time(), follow: self.pct() < 70 }
            }
            95..99 => Op::Readdir { path: self.dir_or_root() },
            99..104 => {
                let mode = [0, libc::R_OK, libc::W_OK, libc::X_OK, libc::R_OK | libc::W_OK, libc::R_OK | libc::X_OK];
                Op::Access { path: self.path(), mode: mode[self.rng.random_range(0..mode.len())] }
            }
            104..105 => {
                let masks = [0, 0o022, 0o077, 0o002, 0o027];
                let mask = if self.pct() < 80 {
                    masks[self.rng.random_range(0..masks.len())]
                } else {
                    self.rng.random_range(0..0o1000)
                };
                Op::Umask { mask }
            }
            105..114 => self.open_for_io(),
            114..117 => {
                let how = match self.pct() {
                    0..60 => XattrHow::Any,
                    60..80 => XattrHow::Create,
                    _ => XattrHow::Replace,
                };
                let len = if self.pct() < 90 { self.rng.random_range(0..64) } else { self.rng.random_range(64..4000) };
                Op::Setxattr { path: self.path(), name: self.xattr_name(), len, fill: self.fill(), how }
            }
            117..118 => Op::Getxattr { path: self.path(), name: self.xattr_name() },
            118..119 => Op::Listxattr { path: self.path() },
            _ => Op::Removexattr { path: self.path(), name: self.xattr_name() },
        }
    }

    /// An open that is likely to give a usable handle: read-write, often creating.
    fn open_for_io(&mut self) -> Op {
        let mut flags = libc::O_RDWR | libc::O_CREAT;
        if self.pct() < 10 {
            flags |= libc::O_APPEND;
        }
        let mode = if self.pct() < 80 { 0o666 } else { self.mode() };
        Op::Open { h: self.free_handle(), path: self.file(), flags: OpenFlags(flags), mode }
    }

    fn rename(&mut self) -> Op {
        let how = match self.pct() {
            0..70 => RenameHow::Plain,
            70..85 => RenameHow::NoReplace,
            _ => RenameHow::Exchange,
        };
        let from = self.path();
        let to = match self.pct() {
            // Same directory, another name.
            0..30 => {
                let parent = from.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                let name = self.name(self.dirs.contains(&from));
                join(&parent, name)
            }
            30..55 => self.file(),
            55..75 => self.dir(),
            _ => self.new_path(),
        };
        Op::Rename { from, to, how }
    }

    /// What an operation that succeeded did.
    fn update_model(&mut self, op: &Op) {
        match op {
            Op::Open { h, path, flags, .. } => {
                if !self.open.contains(h) {
                    self.open.push(*h);
                }
                if flags.0 & libc::O_CREAT != 0 && !self.dirs.contains(path) && !self.links.contains(path) {
                    add(&mut self.files, path);
                }
            }
            Op::Close { h } => self.open.retain(|x| x != h),
            Op::Mkdir { path, .. } => add(&mut self.dirs, path),
            Op::Rmdir { path } => remove(&mut self.dirs, path),
            Op::Unlink { path } => {
                remove(&mut self.files, path);
                remove(&mut self.links, path);
            }
            Op::Link { to, .. } => add(&mut self.files, to),
            Op::Symlink { path, .. } => add(&mut self.links, path),
            Op::Rename { from, to, how } if from != to && !to.starts_with(&format!("{from}/")) => {
                if *how == RenameHow::Exchange {
                    let tmp = "\0";
                    for list in [&mut self.dirs, &mut self.files, &mut self.links] {
                        rename_in(list, from, tmp);
                        rename_in(list, to, from);
                        rename_in(list, tmp, to);
                    }
                } else {
                    for list in [&mut self.dirs, &mut self.files, &mut self.links] {
                        remove(list, to);
                        rename_in(list, from, to);
                    }
                }
            }
            _ => {}
        }
        for list in [&mut self.dirs, &mut self.files, &mut self.links] {
            list.retain(|p| depth(p) <= MAX_DEPTH + 1);
            list.sort();
            list.dedup();
        }
        if !self.dirs.iter().any(String::is_empty) {
            self.dirs.insert(0, String::new());
        }
    }
}
