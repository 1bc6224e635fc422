//! Running steps on the two sides side by side: switching identity, applying faults,
//! comparing outcomes and trees.

use crate::compare::{compare_trees, Buffers, Contents, TreeOpts};
use crate::exec::Side;
use crate::fault::{Fault, EXTRA_FILE};
use crate::gen::SETUP_DIRS;
use crate::identity::{Switcher, SHARED_GROUP};
use crate::op::{Op, Step};
use crate::outcome::{describe, Outcome};
use crate::sys;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Which file contents a tree comparison reads (metadata is always compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Files written or truncated since the last comparison, skipping common holes.
    Touched,
    /// Every file, skipping common holes.
    All,
    /// Every byte of every file.
    Full,
}

/// How a description of differing outcomes starts.
pub const OUTCOMES_DIFFER: &str = "outcomes differ:";

/// The umask every run starts with (so that files the users create are shared).
pub const INITIAL_UMASK: u32 = 0;

/// The two sides and what the steps run with.
pub struct Pair {
    pub a: Side,
    pub b: Side,
    switcher: Option<Switcher>,
    xattrs: bool,
    fault: Option<Fault>,
    fault_fired: bool,
    /// Print every step and its outcome to stderr.
    pub trace: bool,
    bufs: Buffers,
}

impl Pair {
    /// A pair working in the run directories `a` and `b` (already set up). Sets the
    /// thread's umask to [`INITIAL_UMASK`]: call it on a thread with its own umask.
    pub fn new(a: PathBuf, b: PathBuf, switcher: Option<Switcher>, xattrs: bool, fault: Option<Fault>) -> Pair {
        sys::umask(INITIAL_UMASK);
        Pair {
            a: Side::new(a),
            b: Side::new(b),
            switcher,
            xattrs,
            fault,
            fault_fired: false,
            trace: false,
            bufs: Buffers::default(),
        }
    }

    /// Applies one step to both sides as the step's user, returning the agreed outcome;
    /// the error describes how the outcomes differ.
    pub fn step(&mut self, step: &Step) -> Result<Outcome, String> {
        let armed = |at: usize| step.index >= at;
        let corrupt = !self.fault_fired
            && matches!(self.fault, Some(Fault::CorruptWriteOnA { at }) if armed(at))
            && step.op.writes_data();
        if let Op::Umask { mask } = step.op {
            sys::umask(mask);
        }
        let (oa, ob) = {
            let _guard = self.switcher.as_ref().map(|s| s.become_user(step.uid));
            (self.a.apply(&step.op, corrupt), self.b.apply(&step.op, false))
        };
        if corrupt && matches!(oa, Outcome::Count(n) if n > 0) {
            self.fault_fired = true;
        }
        if !self.fault_fired && matches!(self.fault, Some(Fault::ExtraFileOnA { at }) if armed(at)) {
            self.a.create_stray_file(EXTRA_FILE);
            self.fault_fired = true;
        }
        if self.trace {
            eprintln!("{step} => {oa}");
        }
        if oa == ob {
            Ok(ob)
        } else {
            Err(format!("{OUTCOMES_DIFFER}\n  {}", describe(&oa, &ob).replace('\n', "\n  ")))
        }
    }

    /// Compares the two trees.
    pub fn check_trees(&mut self, check: Check) -> Result<(), String> {
        let contents = match check {
            Check::Touched => Contents::Touched { a: &self.a.touched, b: &self.b.touched },
            Check::All => Contents::All,
            Check::Full => Contents::Full,
        };
        let opts = TreeOpts { xattrs: self.xattrs, contents };
        compare_trees(self.a.root(), self.b.root(), opts, &mut self.bufs)?;
        self.a.touched.clear();
        self.b.touched.clear();
        Ok(())
    }

    /// Closes every handle on both sides (as root), comparing the close outcomes, then
    /// compares the trees reading every byte.
    pub fn finish(&mut self) -> Result<(), String> {
        let (ca, cb) = (self.a.close_all(), self.b.close_all());
        for (h, (x, y)) in ca.iter().zip(&cb).enumerate() {
            if x != y {
                return Err(format!("closing handle {h} at the end: A {x:?}, B {y:?}"));
            }
        }
        self.check_trees(Check::Full)
    }
}

/// Creates a fresh directory `<prefix>-<n>` in both `a` and `b` (the first `n` free on
/// both), world-writable, with the setup directories inside. Returns the two paths.
pub fn fresh_run_dirs(a: &Path, b: &Path, prefix: &str, root: bool) -> Result<(PathBuf, PathBuf), String> {
    for n in 0..10_000 {
        let name = format!("{prefix}-{n}");
        let (ra, rb) = (a.join(&name), b.join(&name));
        if ra.symlink_metadata().is_ok() || rb.symlink_metadata().is_ok() {
            continue;
        }
        for dir in [&ra, &rb] {
            setup_dir(dir, root).map_err(|e| format!("setting up {}: {}", dir.display(), sys::errno_name(e)))?;
        }
        return Ok((ra, rb));
    }
    Err(format!("no free {prefix}-N directory in {} and {}", a.display(), b.display()))
}

fn setup_dir(dir: &Path, root: bool) -> sys::SysResult<()> {
    sys::mkdir(dir, 0o777)?;
    sys::chmod(dir, 0o777)?;
    for (name, mode) in SETUP_DIRS {
        let p = dir.join(name);
        sys::mkdir(&p, mode)?;
        if root && mode & 0o2000 != 0 {
            sys::chown(&p, Some(0), Some(SHARED_GROUP), true)?;
        }
        sys::chmod(&p, mode)?;
    }
    Ok(())
}

/// Removes a run directory, first making everything in it writable and searchable
/// (best effort: a leftover directory is only clutter).
pub fn remove_run_dir(dir: &Path) {
    fn open_up(p: &Path) {
        if let Ok(st) = sys::stat(p, false) {
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                let _ = sys::chmod(p, 0o777);
                if let Ok(names) = sys::list_dir(p) {
                    for name in names {
                        open_up(&p.join(std::ffi::OsStr::from_bytes(&name)));
                    }
                }
            }
        }
    }
    open_up(dir);
    let _ = std::fs::remove_dir_all(dir);
}
