//! The end-to-end harness: runs the `floe` binary as a user would, against a data
//! directory of its own, and mounts file systems with FUSE on temporary directories.
//!
//! Tests start with [`require_fuse!`] (or [`require_root!`]): when this machine cannot
//! mount FUSE file systems they print `skipping <test>: <reason>` and return, except
//! under CI (`CI=true`), where they fail, because CI must run them.
//!
//! Nothing here sleeps to wait for something: conditions are polled up to a deadline.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

pub mod backends;
pub mod up;
pub mod wall;

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `floe` binary under test.
pub const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// How long a condition is polled before a test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The name of the enclosing function, for skip messages.
#[macro_export]
macro_rules! function_name {
    () => {{
        fn f() {}
        let name = std::any::type_name_of_val(&f);
        let name = name.strip_suffix("::f").unwrap_or(name);
        name.rsplit("::").next().unwrap_or(name)
    }};
}

/// Returns from the test when FUSE cannot be used here (panics under CI).
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Err(reason) = $crate::common::fuse_available() {
            $crate::common::skip($crate::function_name!(), &reason);
            return;
        }
    };
}

/// Returns from the test unless FUSE can be used and we are root (panics under CI).
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_fuse!();
        if !nix::unistd::geteuid().is_root() {
            $crate::common::skip($crate::function_name!(), "this test switches users and needs root");
            return;
        }
    };
}

/// Why FUSE mounts cannot work here, if they cannot.
pub fn fuse_available() -> Result<(), String> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err("/dev/fuse does not exist".into());
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        return Err(format!("/dev/fuse cannot be opened: {e}"));
    }
    if !nix::unistd::geteuid().is_root() && !on_path("fusermount3") {
        return Err("not root and fusermount3 is not on PATH".into());
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether this is CI, which must run every test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips a test: fails it under CI, which must run every test.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run under CI: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
}

/// Polls `cond` until it holds; panics with `what` after [`DEADLINE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
        }
    }
}

/// Whether `dir` is a mount point, from this process's mount table.
pub fn is_mount_point(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_string_lossy().replace(' ', "\\040");
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    table.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// The output of one run of the binary, with helpers to check it.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(args: Vec<String>, out: Output) -> Run {
        Run {
            args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics unless the command exited 0; returns stdout.
    pub fn expect_ok(&self) -> &str {
        assert!(self.ok(), "floe {:?} failed: {self:#?}", self.args);
        assert_no_panic(self);
        &self.stdout
    }

    /// Panics unless the command failed with exit code 1 and exactly one line on
    /// stderr, `floe: ...`; returns that line.
    pub fn expect_error_line(&self) -> &str {
        assert_eq!(self.code, Some(1), "floe {:?} should fail with exit code 1: {self:#?}", self.args);
        assert_no_panic(self);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "floe {:?} should print one error line: {self:#?}", self.args);
        assert!(lines[0].starts_with("floe: "), "the error line starts with `floe: `: {self:#?}");
        lines[0]
    }
}

pub fn assert_no_panic(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("panicked"), "floe {:?} panicked: {run:#?}", run.args);
        assert!(!text.contains("RUST_BACKTRACE"), "floe {:?} panicked: {run:#?}", run.args);
    }
}

/// Runs the binary with exactly `args`.
pub fn floe_raw<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(FLOE);
    cmd.env_remove("FLOE_META").env_remove("FLOE_STORE");
    run_command(cmd, args)
}

fn run_command<I, S>(mut cmd: Command, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let out = cmd
        .args(&args)
        .env_remove("FLOE_DATA_DIR")
        .env_remove("FLOE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run the floe binary");
    Run::from_output(args.iter().map(|a| a.to_string_lossy().into_owned()).collect(), out)
}

/// A data directory of its own, deleted at the end of the test, with the embedded
/// backends in it, or shared ones ([`backends`]) when the test asks for them or
/// `FLOE_TEST_BACKENDS=shared` says so.
pub struct Floe {
    dir: tempfile::TempDir,
    backends: Option<std::sync::Arc<backends::Backends>>,
}

impl Default for Floe {
    fn default() -> Floe {
        Floe::new()
    }
}

impl Floe {
    pub fn new() -> Floe {
        let backends = backends::shared_by_default().then(|| {
            let b = backends::Backends::new().unwrap_or_else(|reason| panic!("FLOE_TEST_BACKENDS=shared: {reason}"));
            std::sync::Arc::new(b)
        });
        Floe::on(backends)
    }

    /// A data directory of its own on `backends` (shared with other `Floe`s: nodes
    /// of one cluster), or on the embedded ones.
    pub fn on(backends: Option<std::sync::Arc<backends::Backends>>) -> Floe {
        let dir = tempfile::Builder::new().prefix("floe-e2e-data-").tempdir().expect("create a data dir");
        Floe { dir, backends }
    }

    pub fn backends(&self) -> Option<&std::sync::Arc<backends::Backends>> {
        self.backends.as_ref()
    }

    /// Points a command at this data directory's backends.
    pub fn backend_env(&self, cmd: &mut Command) {
        cmd.env_remove("FLOE_META").env_remove("FLOE_STORE");
        if let Some(b) = &self.backends {
            cmd.envs(b.env());
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `floe --data-dir D args...`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["--data-dir".into(), self.data_dir().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        let mut cmd = Command::new(FLOE);
        self.backend_env(&mut cmd);
        run_command(cmd, all)
    }

    /// `floe fs create NAME`, which must succeed.
    pub fn create(&self, name: &str) {
        self.run(["fs", "create", name]).expect_ok();
    }

    /// The log of the background mount of `name`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.data_dir().join("logs").join(format!("mount-{name}.log"))).unwrap_or_default()
    }

    /// Mounts `name` (which must exist) on a new temporary directory, in the background.
    pub fn mount(&self, name: &str) -> Mount {
        self.mount_with(name, &[])
    }

    /// Creates file system `name` and mounts it.
    pub fn create_and_mount(&self, name: &str) -> Mount {
        self.create(name);
        self.mount(name)
    }

    /// Mounts `name` on a new temporary directory with extra `mount` arguments.
    pub fn mount_with(&self, name: &str, extra: &[&str]) -> Mount {
        let dir = tempfile::Builder::new().prefix("floe-e2e-mnt-").tempdir().expect("create a mount point");
        let mut m = self.mount_at(name, dir.path(), extra);
        m.tmp = Some(dir);
        m
    }

    /// Mounts `name` on the existing directory `dir`, in the background.
    pub fn mount_at(&self, name: &str, dir: &Path, extra: &[&str]) -> Mount {
        let mut args: Vec<std::ffi::OsString> = vec!["mount".into(), name.into(), dir.into(), "-d".into()];
        args.extend(extra.iter().map(Into::into));
        let run = self.run(&args);
        assert!(run.ok(), "mounting {name} failed: {run:#?}\nlog:\n{}", self.log(name));
        let pid = parse_pid(&run.stdout).unwrap_or_else(|| panic!("no `(pid N` in the mount output: {run:#?}"));
        assert!(is_mount_point(dir), "{} is not a mount point after `mount -d` returned", dir.display());
        Mount {
            data_dir: self.data_dir().to_path_buf(),
            name: name.to_string(),
            dir: dir.canonicalize().expect("canonical mount point"),
            tmp: None,
            pid,
            mounted: true,
        }
    }
}

/// The server pid in `mounted NAME on DIR (pid N, log ...)`.
pub fn parse_pid(stdout: &str) -> Option<u32> {
    let rest = &stdout[stdout.find("(pid ")? + 5..];
    rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()
}

/// A background mount. Dropping it unmounts (ignoring errors) and waits for the server
/// process to exit.
pub struct Mount {
    data_dir: PathBuf,
    name: String,
    dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    pid: u32,
    mounted: bool,
}

impl Mount {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    /// The pid of the process serving the mount.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn umount_cmd(&self) -> Run {
        floe_raw([OsStr::new("--data-dir"), self.data_dir.as_os_str(), OsStr::new("umount"), self.dir.as_os_str()])
    }

    /// Unmounts with `floe umount`, which must succeed, and waits for the server
    /// process to exit (so that everything it buffered is committed).
    pub fn unmount(mut self) {
        let run = self.umount_cmd();
        run.expect_ok();
        self.mounted = false;
        assert!(!is_mount_point(&self.dir), "{} is still mounted after `floe umount`", self.dir.display());
        let pid = self.pid;
        wait_for(&format!("the mount server {pid} to exit"), || process_gone(pid));
    }

    /// Runs `floe umount` as a user would and returns its result, without waiting for
    /// the server process to exit (dropping the mount still waits for that).
    pub fn umount_no_wait(&mut self) -> Run {
        let run = self.umount_cmd();
        self.mounted = false;
        run
    }

    /// Unmounts with the system's plain `umount` (which does not wait for the server),
    /// as an administrator might; dropping the mount still waits for the server.
    pub fn plain_umount(&mut self) {
        let status = Command::new("umount").arg(&self.dir).status().expect("run umount");
        assert!(status.success(), "umount {} failed", self.dir.display());
        self.mounted = false;
    }

    /// Kills the server with SIGKILL (a crash), waits until it is gone and lazily
    /// detaches the dead mount (`umount -l`).
    pub fn crash(mut self) {
        let pid = self.pid;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
            .expect("kill the mount server");
        wait_for(&format!("the killed mount server {pid} to exit"), || process_gone(pid));
        let status = Command::new("umount").arg("-l").arg(&self.dir).status().expect("run umount -l");
        assert!(status.success(), "umount -l {} failed", self.dir.display());
        self.mounted = false;
        assert!(!is_mount_point(&self.dir));
    }

    /// Takes over the temporary mount point, so that it outlives this mount (to remount on it).
    pub fn keep_dir(&mut self) -> Option<tempfile::TempDir> {
        self.tmp.take()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted && is_mount_point(&self.dir) {
            let run = self.umount_cmd();
            if !run.ok() || is_mount_point(&self.dir) {
                eprintln!("unmounting {} at the end of the test failed ({run:?}); detaching it", self.dir.display());
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        let deadline = Instant::now() + DEADLINE;
        while !process_gone(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !process_gone(self.pid) {
            eprintln!("mount server {} did not exit after unmount; killing it", self.pid);
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(tmp) = self.tmp.take() {
            // Never recurse into a mount that is somehow still there.
            if is_mount_point(tmp.path()) {
                std::mem::forget(tmp);
            }
        }
    }
}

// --- Small system-call helpers --------------------------------------------------

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// The errno of a failed call; panics if it succeeded.
#[track_caller]
pub fn errno_of<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.raw_os_error().unwrap_or_else(|| panic!("not an OS error: {e}")),
    }
}

/// Turns a libc return value (-1 = error) into a result.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A cheap 64-bit checksum (FNV-1a), to compare contents across remounts.
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Deterministic test content: byte `i` of a file depends on its position and `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&bytes[..n]);
    }
    out
}

/// Compares two byte strings and reports the first difference instead of dumping both.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: contents differ: got {} bytes, want {} bytes; first difference at byte {first} (got {:?}, want {:?})",
        got.len(),
        want.len(),
        got.get(first),
        want.get(first)
    );
}
