//! Cold start of `python3 -S -c 'print(1)'`: time from spawn to the first byte
//! on its stdout, bare and under each sandbox candidate, interleaved.
//!
//! cargo run --release -p floe-sandbox --example coldstart -- [rounds]
//! Needs root and bubblewrap. crun 1.8.1 refuses this hybrid cgroup host
//! ("cgroups in hybrid mode not supported"), see ADR 0008.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe_sandbox::{Cgroup, CgroupVersion, Io, Limits, Sandbox, SandboxSpec};

const PY: [&str; 4] = ["/usr/bin/python3", "-S", "-c", "print(1)"];
const UID: u32 = 993;
const GID: u32 = 990;
const LIMITS: Limits = Limits { memory_bytes: 128 << 20, pids_max: 64, cpu_shares: 1024 };

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let work = PathBuf::from("/tmp/floe-coldstart");
    let code = work.join("code");
    std::fs::create_dir_all(&code).expect("work dir");
    let sandbox = Sandbox::new().expect("sandbox prerequisites");
    type Run<'a> = Box<dyn Fn() -> Duration + 'a>;
    let variants: Vec<(&str, Run)> = vec![
        ("bare python3", Box::new(|| first_byte(bare()))),
        ("nix (a), 128 MB + pids 64", Box::new(|| nix(&sandbox, &code, false))),
        ("nix (a) + netns", Box::new(|| nix(&sandbox, &code, true))),
        ("bwrap (b), no cgroup", Box::new(|| first_byte(bwrap(&code, Vec::new())))),
        ("bwrap (b), 128 MB + pids 64", Box::new(|| bwrap_limited(&code))),
    ];
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds + 3 {
        // Rotate the order each round so no variant always follows the same one.
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let d = (variants[i].1)();
            if round >= 3 {
                samples[i].push(d); // the first rounds warm the page cache
            }
        }
    }
    println!("| variant | n | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for ((name, _), s) in variants.iter().zip(&mut samples) {
        s.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        println!("| {name} | {} | {:.2} | {:.2} | {:.2} |", s.len(), ms(p(0.5)), ms(p(0.99)), ms(s[s.len() - 1]));
    }
}

fn bare() -> Command {
    let mut c = Command::new(PY[0]);
    c.args(&PY[1..]).env_clear();
    c
}

/// Spawns, returns the time to the first stdout byte, then reaps.
fn first_byte(mut command: Command) -> Duration {
    command.stdout(Stdio::piped()).stdin(Stdio::null());
    let start = Instant::now();
    let mut child = command.spawn().expect("spawn");
    let mut byte = [0u8; 1];
    child.stdout.as_mut().expect("piped").read_exact(&mut byte).expect("first byte");
    let elapsed = start.elapsed();
    child.wait().expect("wait");
    elapsed
}

fn nix(sandbox: &Sandbox, code: &Path, netns: bool) -> Duration {
    let mut spec = SandboxSpec::new(code, PY.iter().map(|s| s.to_string()).collect());
    spec.memory_bytes = LIMITS.memory_bytes;
    spec.pids_max = LIMITS.pids_max;
    spec.isolate_network = netns;
    spec.stdout = Io::Piped;
    let start = Instant::now();
    let mut child = sandbox.spawn(&spec).expect("spawn");
    let mut byte = [0u8; 1];
    child.process.stdout.as_mut().expect("piped").read_exact(&mut byte).expect("first byte");
    let elapsed = start.elapsed();
    child.wait().expect("wait");
    elapsed
}

/// bubblewrap 0.8 as an unprivileged caller (uid 993), namespaces through a user
/// namespace; as real root it cannot switch to an unprivileged uid itself.
fn bwrap(code: &Path, procs: Vec<std::ffi::CString>) -> Command {
    let mut c = Command::new("bwrap");
    c.args(["--unshare-user", "--uid", &UID.to_string(), "--gid", &GID.to_string()])
        .args(["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"])
        .args(["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"])
        .args(["--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"])
        .args(["--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin"])
        .arg("--ro-bind")
        .arg(code)
        .args(["/var/task", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"])
        .args(["--chdir", "/var/task", "--cap-drop", "ALL", "--remount-ro", "/"])
        .args(PY)
        .env_clear();
    // Join the cgroup (if any) while still root, then become the unprivileged caller.
    // SAFETY: only open/write/close/set*id on prepared memory between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for p in &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(GID) != 0 || libc::setuid(UID) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn bwrap_limited(code: &Path) -> Duration {
    let cgroup = Cgroup::create(CgroupVersion::detect().expect("cgroups"), LIMITS).expect("cgroup");
    let procs: Vec<std::ffi::CString> = cgroup
        .procs_files()
        .iter()
        .map(|p| std::ffi::CString::new(p.to_str().expect("utf-8")).expect("no NUL"))
        .collect();
    first_byte(bwrap(code, procs))
}
