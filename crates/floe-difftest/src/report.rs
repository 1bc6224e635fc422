//! What a run returns: a report when the sides agreed, a failure when they did not.

use crate::fault::Fault;
use crate::op::Step;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A run in which both sides agreed.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    /// Operations run.
    pub ops_run: u64,
    /// Operations asked for.
    pub ops_planned: u64,
    /// Whether `max_duration` ended the run before `ops_planned`.
    pub stopped_by_time: bool,
    pub elapsed: Duration,
    /// Whole-tree comparisons made (including the final one).
    pub tree_checks: u64,
    /// The uids operations ran as.
    pub uids: Vec<u32>,
    /// Whether operations really switched identity (the process is root).
    pub uid_switching: bool,
    /// Whether xattr operations ran.
    pub xattrs: bool,
    /// The run directories (removed unless `keep_dirs`).
    pub run_dirs: (PathBuf, PathBuf),
    /// Things worth knowing: what was skipped and why.
    pub notes: Vec<String>,
}

/// Why a run failed.
#[derive(Debug)]
pub enum Failure {
    /// The run could not start.
    Setup(String),
    /// The sides disagreed.
    Mismatch(Box<Mismatch>),
}

/// A disagreement between the sides.
#[derive(Debug)]
pub struct Mismatch {
    pub seed: u64,
    /// Position of the failing step in the sequence run; `None` if the difference
    /// showed only in the final comparison.
    pub op_index: Option<usize>,
    /// What differed.
    pub detail: String,
    /// The sequence run up to the failure.
    pub steps: Vec<Step>,
    /// The shrunk sequence, if minimization ran and reproduced the failure.
    pub minimized: Option<Vec<Step>>,
    /// How the shrunk sequence fails (it may show the difference differently).
    pub minimized_detail: Option<String>,
    /// The fault the run had, if any.
    pub fault: Option<Fault>,
    /// Where the replay file was written.
    pub replay_file: Option<PathBuf>,
    /// A command that regenerates the failing run from its seed (`None` for a replay).
    pub rerun_command: Option<String>,
    /// A command that replays the replay file.
    pub replay_command: Option<String>,
    /// The run directories, kept for inspection.
    pub run_dirs: (PathBuf, PathBuf),
    pub notes: Vec<String>,
}

impl Mismatch {
    /// The shortest known failing sequence.
    pub fn shortest(&self) -> &[Step] {
        self.minimized.as_deref().unwrap_or(&self.steps)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "floe-difftest: seed {}: both sides agree after {} of {} operations ({} tree comparisons, {:.1?})",
            self.seed, self.ops_run, self.ops_planned, self.tree_checks, self.elapsed
        )?;
        if self.stopped_by_time {
            write!(f, "\n  stopped early: max duration reached")?;
        }
        write!(f, "\n  uids {:?} (switching: {}), xattrs: {}", self.uids, self.uid_switching, self.xattrs)?;
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op_index {
            Some(i) => write!(
                f,
                "floe-difftest: MISMATCH with seed {} at operation #{i}: {}",
                self.seed,
                self.steps.get(i).map_or_else(String::new, ToString::to_string)
            )?,
            None => write!(
                f,
                "floe-difftest: MISMATCH with seed {} in the final comparison after {} operations",
                self.seed,
                self.steps.len()
            )?,
        }
        write!(f, "\n  {}", self.detail.replace('\n', "\n  "))?;
        if let Some(fault) = self.fault {
            write!(f, "\n(with deliberate fault {fault})")?;
        }
        match &self.minimized {
            Some(min) => write!(f, "\nminimized from {} to {} operations:", self.steps.len(), min.len())?,
            None => write!(f, "\nnot minimized; the {} operations:", self.steps.len())?,
        }
        for step in self.shortest() {
            write!(f, "\n  {step}")?;
        }
        if let Some(detail) = &self.minimized_detail {
            write!(f, "\nwhich fails {}", detail.replace('\n', "\n  "))?;
        }
        write!(f, "\nrun directories (kept): {} and {}", self.run_dirs.0.display(), self.run_dirs.1.display())?;
        if let Some(cmd) = &self.replay_command {
            write!(f, "\nreplay: {cmd}")?;
        }
        if let Some(cmd) = &self.rerun_command {
            write!(f, "\nrerun from the seed: {cmd}")?;
        }
        for note in &self.notes {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Setup(e) => write!(f, "floe-difftest: setup failed: {e}"),
            Failure::Mismatch(m) => m.fmt(f),
        }
    }
}

impl std::error::Error for Failure {}
