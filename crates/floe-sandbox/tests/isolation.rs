//! Isolation, proved by real sandboxed processes. Needs root; without it each
//! test prints why it is skipped, and fails when CI=true.

use std::io::Read;

use floe_sandbox::{BindMount, Exit, Io, Sandbox, SandboxSpec};

fn sandbox() -> Option<Sandbox> {
    match Sandbox::new() {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true but {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Runs `sh -c script` in a sandbox, returns (exit, stdout).
fn run(sandbox: &Sandbox, spec_edit: impl FnOnce(&mut SandboxSpec), script: &str) -> (Exit, String) {
    let code = tempfile::tempdir().expect("code dir");
    std::fs::write(code.path().join("handler.py"), "x = 1\n").expect("write code");
    let mut spec = SandboxSpec::new(code.path(), vec!["/bin/sh".into(), "-c".into(), script.into()]);
    spec.stdout = Io::Piped;
    spec.stderr = Io::Inherit;
    spec_edit(&mut spec);
    let mut child = sandbox.spawn(&spec).expect("spawn");
    let mut out = String::new();
    child.process.stdout.take().expect("piped").read_to_string(&mut out).expect("read stdout");
    let exit = child.wait().expect("wait");
    (exit, out)
}

#[test]
fn root_and_task_are_read_only_and_tmp_is_writable() {
    let Some(sb) = sandbox() else { return };
    let (exit, out) = run(
        &sb,
        |_| {},
        "touch /usr/x 2>&1; touch /x 2>&1; cat /var/task/handler.py; touch /var/task/y 2>&1; \
         echo hi > /tmp/z && cat /tmp/z; pwd",
    );
    assert!(exit.status.success(), "{exit:?} {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("/usr/x") && lines[0].contains("Read-only file system"), "{out}");
    assert!(lines[1].contains("Read-only file system"), "{out}");
    assert_eq!(lines[2], "x = 1");
    assert!(lines[3].contains("/var/task/y") && lines[3].contains("Read-only file system"), "{out}");
    assert_eq!(&lines[4..], ["hi", "/var/task"]);
}

#[test]
fn tmp_is_limited_to_its_size() {
    let Some(sb) = sandbox() else { return };
    let (exit, out) = run(
        &sb,
        |s| s.tmp_bytes = 4 << 20,
        "dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>&1; echo rc=$?; wc -c < /tmp/fill",
    );
    assert!(exit.status.success(), "{exit:?}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert_eq!(out.lines().last(), Some("4194304"), "{out}");
}

#[test]
fn host_files_outside_allowed_mounts_are_invisible() {
    let Some(sb) = sandbox() else { return };
    let secret = tempfile::tempdir().expect("dir");
    std::fs::write(secret.path().join("secret"), "s").expect("write");
    let script =
        format!("ls /; test -e {}/secret && echo LEAK; ls /root /home /work 2>&1 | head -1", secret.path().display());
    let (_, out) = run(&sb, |_| {}, &script);
    let top: Vec<&str> = out.lines().take_while(|l| !l.starts_with("ls:")).collect();
    assert_eq!(top, ["bin", "dev", "etc", "lib", "lib64", "mnt", "proc", "sbin", "tmp", "usr", "var"], "{out}");
    assert!(!out.contains("LEAK"), "{out}");
}

#[test]
fn own_pid_namespace_unprivileged_no_capabilities_no_new_privs() {
    let Some(sb) = sandbox() else { return };
    let (exit, out) = run(
        &sb,
        |s| {
            s.uid = 993;
            s.gid = 990;
        },
        "echo pid=$$; ls /proc | grep -c '^[0-9]'; id -u; id -g; id -G; \
         grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status",
    );
    assert!(exit.status.success(), "{exit:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "{out}");
    // sh, and the ls/grep pipeline: nothing of the host.
    let visible: u32 = lines[1].parse().expect("count");
    assert!(visible <= 3, "sees {visible} processes: {out}");
    assert_eq!(&lines[2..5], ["993", "990", "990"], "{out}");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = lines.iter().find(|l| l.starts_with(cap)).expect("cap line");
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    assert!(lines.contains(&"NoNewPrivs:\t1"), "{out}");
}

#[test]
fn setuid_binaries_do_not_raise_privileges() {
    let Some(sb) = sandbox() else { return };
    // su is setuid root on the host; inside, no_new_privs and nosuid keep it powerless.
    if !std::path::Path::new("/usr/bin/su").exists() {
        eprintln!("skipped: no /usr/bin/su to try");
        return;
    }
    let (_, out) = run(&sb, |_| {}, "/usr/bin/su -c 'id -u' root </dev/null 2>&1; echo rc=$?");
    assert!(!out.lines().any(|l| l == "0"), "{out}");
    assert!(!out.contains("rc=0"), "{out}");
}

#[test]
fn memory_limit_kills_and_is_reported_as_oom() {
    let Some(sb) = sandbox() else { return };
    let (exit, out) = run(
        &sb,
        |s| s.memory_bytes = 64 << 20,
        "exec /usr/bin/python3 -S -c 'b = bytearray(256 << 20); print(\"survived\", len(b))'",
    );
    assert!(!out.contains("survived"), "{out}");
    assert_eq!(exit.signal(), Some(9), "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    // and a process within its limit is not reported as OOM
    let (exit, out) = run(&sb, |s| s.memory_bytes = 64 << 20, "echo fine");
    assert_eq!(out, "fine\n");
    assert!(!exit.oom_killed && exit.status.success(), "{exit:?}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let Some(sb) = sandbox() else { return };
    // dash treats a failed fork as fatal, so the bomb is a python loop that counts.
    let bomb = r#"
import os, time
n = 0
try:
    for _ in range(100):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        n += 1
except BlockingIOError as e:
    print('fork failed', e.errno)
print('started', n)
"#;
    let (exit, out) = run(&sb, |s| s.pids_max = 16, &format!("exec /usr/bin/python3 -S -c \"{bomb}\""));
    assert!(exit.status.success(), "{exit:?} {out}");
    assert!(out.contains(&format!("fork failed {}", libc_eagain())), "{out}");
    let started: u32 = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("started "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(started < 16, "{started} children ran under pids.max=16");
}

fn libc_eagain() -> i32 {
    11 // EAGAIN on Linux
}

#[test]
fn extra_bind_mount_under_mnt_is_visible_and_writable() {
    let Some(sb) = sandbox() else { return };
    let shared = tempfile::tempdir().expect("dir");
    std::fs::write(shared.path().join("in"), "from host\n").expect("write");
    // The unprivileged uid must be able to write into it.
    std::fs::set_permissions(shared.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let source = shared.path().to_path_buf();
    let (exit, out) = run(
        &sb,
        move |s| s.mounts.push(BindMount { source, target: "/mnt/data".into() }),
        "cat /mnt/data/in; echo from sandbox > /mnt/data/out && echo wrote",
    );
    assert!(exit.status.success(), "{exit:?} {out}");
    assert_eq!(out, "from host\nwrote\n");
    assert_eq!(std::fs::read_to_string(shared.path().join("out")).expect("read"), "from sandbox\n");
}

#[test]
fn mount_targets_outside_mnt_are_refused() {
    let Some(sb) = sandbox() else { return };
    let code = tempfile::tempdir().expect("dir");
    let mut spec = SandboxSpec::new(code.path(), vec!["/bin/true".into()]);
    for target in ["/etc/x", "/mnt", "/mnt/../etc"] {
        spec.mounts = vec![BindMount { source: code.path().into(), target: target.into() }];
        assert!(sb.spawn(&spec).is_err(), "{target} accepted");
    }
}

#[test]
fn sandboxes_do_not_see_each_others_tmp_or_processes() {
    let Some(sb) = sandbox() else { return };
    let code = tempfile::tempdir().expect("code dir");
    // The first sandbox leaves a file in its /tmp and stays alive.
    let mut spec =
        SandboxSpec::new(code.path(), vec!["/bin/sh".into(), "-c".into(), "echo mine > /tmp/a; sleep 31".into()]);
    spec.stdout = Io::Null;
    let first = sb.spawn(&spec).expect("spawn");
    let host_pid = first.id();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (exit, out) = run(
        &sb,
        |_| {},
        "ls -A /tmp; echo procs; for p in /proc/[0-9]*; do cat $p/cmdline | tr '\\0' ' '; echo; done | grep -c 'slee[p] 31'; true",
    );
    assert!(exit.status.success(), "{exit:?} {out}");
    assert_eq!(out, "procs\n0\n", "the other sandbox's /tmp and processes are invisible");
    // Killing through the control handle ends every process of the sandbox.
    let control = first.control();
    assert!(control.pids().contains(&host_pid));
    control.kill();
    let exit = first.wait().expect("wait");
    assert_eq!(exit.signal(), Some(9));
}

#[test]
fn read_only_binds_are_visible_and_read_only() {
    let Some(sb) = sandbox() else { return };
    let runtime = tempfile::tempdir().expect("dir");
    std::fs::write(runtime.path().join("boot"), "bootstrap\n").expect("write");
    std::fs::set_permissions(runtime.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let source = runtime.path().to_path_buf();
    let (exit, out) = run(
        &sb,
        move |s| s.ro_binds.push(BindMount { source, target: "/var/runtime".into() }),
        "cat /var/runtime/boot; touch /var/runtime/x 2>&1 | grep -c 'Read-only'",
    );
    assert!(exit.status.success(), "{exit:?} {out}");
    assert_eq!(out, "bootstrap\n1\n");
    let code = tempfile::tempdir().expect("dir");
    let mut spec = SandboxSpec::new(code.path(), vec!["/bin/true".into()]);
    for target in ["/tmp/x", "/var/task", "/proc", "relative", "/"] {
        spec.ro_binds = vec![BindMount { source: code.path().into(), target: target.into() }];
        assert!(sb.spawn(&spec).is_err(), "{target} accepted");
    }
}

#[test]
fn a_frozen_sandbox_does_not_run_until_thawed() {
    let Some(sb) = sandbox() else { return };
    if sb.cgroup_version() == floe_sandbox::CgroupVersion::V1
        && !std::path::Path::new("/sys/fs/cgroup/freezer").is_dir()
    {
        eprintln!("skipped: no freezer controller");
        return;
    }
    let out = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(out.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let code = tempfile::tempdir().expect("code dir");
    let mut spec = SandboxSpec::new(
        code.path(),
        vec!["/bin/sh".into(), "-c".into(), "while true; do date +%s%N >> /mnt/out/ticks; sleep 0.01; done".into()],
    );
    spec.stdout = Io::Null;
    spec.mounts.push(BindMount { source: out.path().into(), target: "/mnt/out".into() });
    let child = sb.spawn(&spec).expect("spawn");
    let control = child.control();
    let ticks = || std::fs::read_to_string(out.path().join("ticks")).unwrap_or_default().lines().count();
    std::thread::sleep(std::time::Duration::from_millis(200));
    control.freeze().expect("freeze");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let frozen_at = ticks();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(ticks(), frozen_at, "no progress while frozen");
    control.thaw().expect("thaw");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(ticks() > frozen_at, "progress again once thawed");
    // A frozen sandbox can still be killed.
    control.freeze().expect("freeze");
    let exit = child.kill().expect("kill");
    assert_eq!(exit.signal(), Some(9));
}

#[test]
fn stale_cgroups_of_a_dead_floe_are_removed() {
    let Some(sb) = sandbox() else { return };
    if sb.cgroup_version() != floe_sandbox::CgroupVersion::V1 {
        eprintln!("skipped: written for the v1 layout of this host");
        return;
    }
    // A cgroup named after a pid that cannot exist (above pid_max).
    let dir = std::path::Path::new("/sys/fs/cgroup/pids/floe/env-999999999-0");
    std::fs::create_dir_all(dir).expect("create a stale cgroup");
    assert!(sb.remove_stale() >= 1);
    assert!(!dir.exists());
}

fn own_cgroups() -> usize {
    let prefix = format!("env-{}-", std::process::id());
    ["memory", "pids", "cpu", "freezer"]
        .iter()
        .flat_map(|c| {
            std::fs::read_dir(std::path::Path::new("/sys/fs/cgroup").join(c).join("floe"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

#[test]
fn prepared_sandboxes_run_and_unused_ones_leave_nothing() {
    let Some(sb) = sandbox() else { return };
    if sb.cgroup_version() != floe_sandbox::CgroupVersion::V1 {
        eprintln!("skipped: written for the v1 layout of this host");
        return;
    }
    let before = own_cgroups();
    let base = SandboxSpec::new("/", Vec::new());
    let pool = floe_sandbox::SandboxPool::new(sb.clone(), 2, base, None);
    for _ in 0..500 {
        if pool.ready() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pool.ready(), 2);
    let code = tempfile::tempdir().expect("code dir");
    let mut spec = SandboxSpec::new(
        code.path(),
        vec!["/bin/sh".into(), "-c".into(), "echo $$; cat /proc/self/cgroup | grep -c env-; chrt -p $$".into()],
    );
    spec.stdout = Io::Piped;
    spec.memory_bytes = 64 << 20;
    let mut child = pool.spawn(&spec).expect("spawn from the pool");
    let mut out = String::new();
    child.process.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let exit = child.wait().expect("wait");
    assert!(exit.status.success(), "{exit:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "pid 1 of its namespace: {out}");
    assert!(lines[1].parse::<u32>().unwrap() >= 3, "in its own cgroups: {out}");
    // Prepared at idle priority in the background, run at the normal one.
    assert!(lines[2].contains("SCHED_OTHER"), "{out}");
    drop(pool);
    for _ in 0..100 {
        if own_cgroups() == before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(own_cgroups(), before, "the pool's prepared sandboxes are removed with it");
}

#[test]
fn disk_backed_tmp_has_its_own_size_beyond_memory() {
    let Some(sb) = sandbox() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let disks = match floe_sandbox::TmpDisks::new(dir.path(), 0) {
        Ok(d) => d,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true but {reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let disk = disks.take(96).expect("a /tmp disk");
    let device = disk.device.clone();
    // 48 MB of memory, 96 MB of /tmp: writing 150 MB fills /tmp, not memory.
    let (exit, out) = run(
        &sb,
        move |s| {
            s.memory_bytes = 48 << 20;
            s.tmp_device = Some(device);
        },
        "dd if=/dev/zero of=/tmp/fill bs=1M count=150 2>&1 | grep -c 'No space'; stat -c %s /tmp/fill; \
         stat -c %a /tmp; touch /tmp/other && echo writable",
    );
    assert!(exit.status.success() && !exit.oom_killed, "{exit:?} {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "ENOSPC: {out}");
    let size: u64 = lines[1].parse().unwrap();
    assert!((96 << 20..110 << 20).contains(&size), "{out}");
    assert_eq!(&lines[2..], ["1777", "writable"], "{out}");
    disks.discard(disk);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the image is deleted");
}
