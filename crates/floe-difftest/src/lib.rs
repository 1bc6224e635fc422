//! Differential testing of a POSIX file system.
//!
//! The tester applies long, seeded, random sequences of file operations to two
//! directories — side A, typically a floe FUSE mount, and side B, a reference directory
//! on a local file system such as tmpfs — and compares every result: return values,
//! exact errnos, bytes read, stat attributes, directory listings, xattrs, and regularly
//! the whole trees. Operations run as several users (when the tester is root). On the
//! first difference it shrinks the sequence by delta debugging and reports a short,
//! replayable listing.
//!
//! Use it as a library ([`run`], [`replay`]) or through the `floe-difftest` binary:
//!
//! ```text
//! floe-difftest --seed N --ops N --a DIR --b DIR [--uids 0,1000,1001] [--replay FILE]
//! ```
//!
//! Each run works in a fresh `run-<seed>-<n>` subdirectory of both directories;
//! minimization replays candidates in fresh `min-<seed>-<n>` subdirectories.
//!
//! What is compared: every operation's return value or exact errno, bytes written and
//! read, stat results (type, permission bits with setuid/setgid/sticky, size, link
//! count, owner, group), directory listings (sorted, without `.` and `..`), symlink
//! targets, `user.` xattrs, and the mtime right after utimensat set it explicitly. Tree
//! comparisons also check which names are hard links of the same file and the file
//! contents. Left out on purpose: inode numbers, block counts, atime, ctime and
//! implicit mtimes (they legitimately differ), a directory's size (file-system specific:
//! tmpfs counts entries, ext4 reports blocks) and xattrs outside the `user.` namespace
//! (security labels and ACLs belong to the host).

pub mod compare;
pub mod exec;
pub mod fault;
pub mod gen;
pub mod identity;
pub mod minimize;
pub mod op;
pub mod outcome;
pub mod report;
pub mod runner;
pub mod script;
pub mod sys;

pub use fault::Fault;
pub use op::{Op, Step};
pub use report::{Failure, Mismatch, Report};
pub use script::Script;

use identity::Switcher;
use outcome::Outcome;
use runner::{fresh_run_dirs, remove_run_dir, Check, Pair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seeds the operation sequence (which depends only on the seed and this config).
    pub seed: u64,
    /// How many operations to generate.
    pub ops: u64,
    /// Side A: the file system under test.
    pub dir_a: PathBuf,
    /// Side B: the reference.
    pub dir_b: PathBuf,
    /// The users operations run as (gid = uid, groups uid and 2000). Used only when
    /// the process is root; otherwise everything runs as the current user.
    pub uids: Vec<u32>,
    /// Compare the whole trees after every this many operations (0: only at the end,
    /// which always happens). Such a comparison reads the files written since the
    /// previous one; see `contents_every`.
    pub check_every: u64,
    /// Make every this many operations' tree comparison read every file (0: never
    /// before the final comparison, which reads every byte).
    pub contents_every: u64,
    /// Stop generating operations after this long.
    pub max_duration: Option<Duration>,
    /// Shrink a failing sequence.
    pub minimize: bool,
    /// How long shrinking may take.
    pub minimize_budget: Duration,
    /// Where to write the (minimized) failing sequence as a replay file.
    pub replay_file: Option<PathBuf>,
    /// Keep the run directories after a successful run.
    pub keep_dirs: bool,
    /// Include xattr operations (turned off for the run if the reference does not
    /// support `user.` xattrs).
    pub xattrs: bool,
    /// A deliberate fault on side A, for testing the tester.
    pub fault: Option<Fault>,
    /// Print progress to stderr every 10,000 operations.
    pub progress: bool,
    /// Print every step and its outcome (side A's) to stderr.
    pub trace: bool,
}

impl Config {
    /// A config with the defaults: users 0, 1000 and 1001, a tree check after every
    /// operation, minimization for up to two minutes, xattrs on.
    pub fn new(seed: u64, ops: u64, dir_a: impl Into<PathBuf>, dir_b: impl Into<PathBuf>) -> Config {
        Config {
            seed,
            ops,
            dir_a: dir_a.into(),
            dir_b: dir_b.into(),
            uids: vec![0, 1000, 1001],
            check_every: 1,
            contents_every: 100,
            max_duration: None,
            minimize: true,
            minimize_budget: Duration::from_secs(120),
            replay_file: None,
            keep_dirs: false,
            xattrs: true,
            fault: None,
            progress: false,
            trace: false,
        }
    }
}

/// What the environment allows, found before the first step.
struct Env {
    root: bool,
    uids: Vec<u32>,
    xattrs: bool,
    notes: Vec<String>,
}

fn prepare(config: &Config) -> Result<Env, Failure> {
    for dir in [&config.dir_a, &config.dir_b] {
        if !dir.is_dir() {
            return Err(Failure::Setup(format!("{} is not a directory", dir.display())));
        }
    }
    let root = identity::is_root();
    let mut notes = Vec::new();
    let uids = if root {
        let mut uids: Vec<u32> = Vec::new();
        for &u in &config.uids {
            if !uids.contains(&u) {
                uids.push(u);
            }
        }
        if uids.is_empty() {
            uids.push(0);
        }
        uids
    } else {
        let me = identity::euid();
        notes.push(format!("not root: uid switching skipped, every operation runs as uid {me}"));
        vec![me]
    };
    for dir in [&config.dir_a, &config.dir_b] {
        if let Err(e) = sys::chmod(dir, 0o777) {
            notes.push(format!("chmod 777 {}: {}", dir.display(), sys::errno_name(e)));
        }
    }
    if config.progress {
        for note in &notes {
            eprintln!("floe-difftest: {note}");
        }
    }
    Ok(Env { root, uids, xattrs: config.xattrs, notes })
}

/// Whether the reference supports `user.` xattrs, tried in its run directory.
fn probe_xattrs(env: &mut Env, run_b: &Path, progress: bool) {
    if !env.xattrs {
        return;
    }
    let name = b"user.floe-difftest-probe";
    match sys::setxattr(run_b, name, b"1", 0) {
        Ok(()) => {
            let _ = sys::removexattr(run_b, name);
        }
        Err(e) => {
            env.xattrs = false;
            let note =
                format!("xattr operations disabled: the reference returned {} for user xattrs", sys::errno_name(e));
            if progress {
                eprintln!("floe-difftest: {note}");
            }
            env.notes.push(note);
        }
    }
}

fn fresh_dirs(config: &Config, env: &Env, prefix: &str) -> Result<(PathBuf, PathBuf), Failure> {
    fresh_run_dirs(&config.dir_a, &config.dir_b, &format!("{prefix}-{}", config.seed), env.root).map_err(Failure::Setup)
}

/// Runs `f` on a new thread with its own umask and credentials, so that nothing the
/// tester changes leaks to the caller's threads.
fn on_own_thread<T: Send>(f: impl FnOnce() -> Result<T, Failure> + Send) -> Result<T, Failure> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            sys::unshare_fs().map_err(|e| Failure::Setup(format!("unshare(CLONE_FS): {}", sys::errno_name(e))))?;
            f()
        });
        worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs the generated sequence for `config.seed` on both directories.
///
/// The run happens on a thread of its own (its umask starts at 0 and its file-system
/// identity changes per operation), in a fresh `run-<seed>-<n>` subdirectory of each
/// directory, which is removed afterwards unless the run failed or `keep_dirs` is set.
pub fn run(config: &Config) -> Result<Report, Failure> {
    on_own_thread(|| run_here(config))
}

fn run_here(config: &Config) -> Result<Report, Failure> {
    let mut env = prepare(config)?;
    let dirs = fresh_dirs(config, &env, "run")?;
    probe_xattrs(&mut env, &dirs.1, config.progress);
    let mut source = Generated { gen: gen::Generator::new(config.seed, &env.uids, env.xattrs), left: config.ops };
    execute(RunCtx { config, env, fault: config.fault, generated: true }, dirs, &mut source)
}

/// Where the steps of a run come from.
trait Source {
    fn next_step(&mut self) -> Option<Step>;
    /// The agreed outcome of the step just run.
    fn observe(&mut self, step: &Step, succeeded: bool);
}

struct Generated {
    gen: gen::Generator,
    left: u64,
}

impl Source for Generated {
    fn next_step(&mut self) -> Option<Step> {
        self.left = self.left.checked_sub(1)?;
        Some(self.gen.next_step())
    }

    fn observe(&mut self, step: &Step, succeeded: bool) {
        self.gen.observe(step, succeeded);
    }
}

struct Listed(std::vec::IntoIter<Step>);

impl Source for Listed {
    fn next_step(&mut self) -> Option<Step> {
        self.0.next()
    }

    fn observe(&mut self, _: &Step, _: bool) {}
}

/// Runs a replay file's steps on both directories (each step as its recorded uid), in
/// the same way as [`run`].
pub fn replay(config: &Config, script: &Script) -> Result<Report, Failure> {
    on_own_thread(|| replay_here(config, script))
}

fn replay_here(config: &Config, script: &Script) -> Result<Report, Failure> {
    let mut env = prepare(config)?;
    let mut uids: Vec<u32> = script.steps.iter().map(|s| s.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    if !env.root && uids.iter().any(|&u| u != identity::euid()) {
        env.notes.push(format!("the replay file's uids {uids:?} are ignored: not root"));
    }
    env.uids = uids;
    let dirs = fresh_dirs(config, &env, "run")?;
    probe_xattrs(&mut env, &dirs.1, config.progress);
    let mut config = config.clone();
    config.seed = script.seed;
    config.ops = script.steps.len() as u64;
    let fault = script.fault.or(config.fault);
    let ctx = RunCtx { config: &config, env, fault, generated: false };
    execute(ctx, dirs, &mut Listed(script.steps.clone().into_iter()))
}

/// What a run needs besides its steps.
struct RunCtx<'a> {
    config: &'a Config,
    env: Env,
    fault: Option<Fault>,
    /// Whether the steps were generated from the seed (rather than replayed).
    generated: bool,
}

fn execute(ctx: RunCtx<'_>, dirs: (PathBuf, PathBuf), source: &mut dyn Source) -> Result<Report, Failure> {
    let RunCtx { config, fault, .. } = ctx;
    let env = &ctx.env;
    let start = Instant::now();
    let mut pair = Pair::new(dirs.0.clone(), dirs.1.clone(), Switcher::new(), env.xattrs, fault);
    pair.trace = config.trace;
    let mut done: Vec<Step> = Vec::new();
    let (mut tree_checks, mut stopped_by_time) = (0, false);
    while let Some(step) = source.next_step() {
        if config.max_duration.is_some_and(|max| start.elapsed() >= max) {
            stopped_by_time = true;
            break;
        }
        let n = done.len() as u64 + 1;
        let mut result = pair.step(&step).map(|outcome| source.observe(&step, !matches!(outcome, Outcome::Err(_))));
        done.push(step);
        if result.is_ok() && config.check_every > 0 && n.is_multiple_of(config.check_every) {
            tree_checks += 1;
            let all = config.contents_every > 0 && n.is_multiple_of(config.contents_every);
            result = pair.check_trees(if all { Check::All } else { Check::Touched });
        }
        if let Err(detail) = result {
            drop(pair);
            return Err(mismatch(&ctx, done, Some(n as usize - 1), detail, dirs));
        }
        if config.progress && n.is_multiple_of(10_000) {
            eprintln!("floe-difftest: seed {}: {n} operations agree ({:.0?})", config.seed, start.elapsed());
        }
    }
    tree_checks += 1;
    if let Err(detail) = pair.finish() {
        drop(pair);
        return Err(mismatch(&ctx, done, None, detail, dirs));
    }
    drop(pair);
    if !config.keep_dirs {
        remove_run_dir(&dirs.0);
        remove_run_dir(&dirs.1);
    }
    Ok(Report {
        seed: config.seed,
        ops_run: done.len() as u64,
        ops_planned: config.ops,
        stopped_by_time,
        elapsed: start.elapsed(),
        tree_checks,
        uid_switching: env.root && env.uids.iter().any(|&u| u != 0),
        uids: env.uids.clone(),
        xattrs: env.xattrs,
        run_dirs: dirs,
        notes: env.notes.clone(),
    })
}

/// What kind of difference a failure is: the operation whose outcomes differed, or a
/// difference in the trees. Minimization keeps candidates that fail the same way, so it
/// does not wander off to another difference.
fn signature(failing_step: Option<&Step>, outcome_differed: bool) -> String {
    match failing_step {
        Some(step) if outcome_differed => format!("outcome of {}", step.op.name()),
        _ => "trees or closing".to_string(),
    }
}

/// Runs `steps` on fresh directories (comparing each step's outcome and the final
/// trees); on a difference returns its signature and description.
fn run_on_fresh_dirs(ctx: &RunCtx<'_>, steps: &[Step]) -> Option<(String, String)> {
    let Ok((a, b)) = fresh_dirs(ctx.config, &ctx.env, "min") else { return None };
    let mut pair = Pair::new(a.clone(), b.clone(), Switcher::new(), ctx.env.xattrs, ctx.fault);
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        if let Err(detail) = pair.step(step) {
            failure = Some((signature(Some(step), true), format!("at operation #{i} ({step}):\n{detail}")));
            break;
        }
    }
    if failure.is_none() {
        if let Err(detail) = pair.finish() {
            failure = Some((signature(None, false), format!("in the final comparison:\n{detail}")));
        }
    }
    drop(pair);
    remove_run_dir(&a);
    remove_run_dir(&b);
    failure
}

fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,".contains(&b)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn mismatch(
    ctx: &RunCtx<'_>,
    steps: Vec<Step>,
    op_index: Option<usize>,
    detail: String,
    run_dirs: (PathBuf, PathBuf),
) -> Failure {
    let RunCtx { config, env, fault, generated } = ctx;
    let (fault, generated) = (*fault, *generated);
    let mut notes = env.notes.clone();
    let (mut minimized, mut minimized_detail) = (None, None);
    if config.minimize {
        let deadline = Instant::now() + config.minimize_budget;
        let original = signature(op_index.and_then(|i| steps.get(i)), detail.starts_with(runner::OUTCOMES_DIFFER));
        if let Some((again, _)) = run_on_fresh_dirs(ctx, &steps) {
            // Prefer failing the same way; if the replay fails otherwise, take any failure.
            let wanted = (again == original).then_some(original);
            let fails = |c: &[Step]| {
                run_on_fresh_dirs(ctx, c).is_some_and(|(sig, _)| wanted.as_ref().is_none_or(|w| *w == sig))
            };
            let min = minimize::minimize(steps.clone(), deadline, fails);
            if Instant::now() >= deadline {
                notes.push("minimization ran out of time; the sequence may shrink further".to_string());
            }
            minimized_detail = run_on_fresh_dirs(ctx, &min).map(|(_, d)| d);
            minimized = Some(min);
        } else {
            notes.push(
                "the failing sequence did not fail again on fresh directories (timing-dependent?); not minimized"
                    .to_string(),
            );
        }
    }
    let script = Script { seed: config.seed, fault, steps: minimized.clone().unwrap_or_else(|| steps.clone()) };
    let (a, b) = (quote(&config.dir_a), quote(&config.dir_b));
    let mut replay_file = None;
    if let Some(path) = &config.replay_file {
        match script.save(path) {
            Ok(()) => replay_file = Some(path.clone()),
            Err(e) => notes.push(format!("writing the replay file {}: {e}", path.display())),
        }
    }
    let replay_command = replay_file.as_ref().map(|f| format!("floe-difftest --a {a} --b {b} --replay {}", quote(f)));
    let uids: Vec<String> = env.uids.iter().map(u32::to_string).collect();
    let mut rerun_command = format!(
        "floe-difftest --seed {} --ops {} --a {a} --b {b} --uids {} --check-every {} --contents-every {}",
        config.seed,
        steps.len(),
        uids.join(","),
        config.check_every,
        config.contents_every
    );
    if !env.xattrs {
        rerun_command.push_str(" --no-xattrs");
    }
    if let Some(f) = fault {
        rerun_command.push_str(&format!(" --fault {f}"));
    }
    let rerun_command = generated.then_some(rerun_command);
    Failure::Mismatch(Box::new(Mismatch {
        seed: config.seed,
        op_index,
        detail,
        steps,
        minimized,
        minimized_detail,
        fault,
        replay_file,
        rerun_command,
        replay_command,
        run_dirs,
        notes,
    }))
}
