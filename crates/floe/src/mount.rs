//! `floe mount` and `floe umount`.

use crate::config::DataDir;
use anyhow::{bail, Context, Result};
use clap::Args;
use floe_fs::{FileSystem, FsConfig};
use floe_fuse::MountOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct MountArgs {
    /// The file system to mount.
    name: String,
    /// An existing, empty directory to mount it on.
    dir: PathBuf,
    /// Create the file system and the mount point when they do not exist yet.
    #[arg(long)]
    create: bool,
    /// Return once mounted and keep serving in the background (log in the data directory).
    #[arg(long, short = 'd')]
    background: bool,
    /// Refuse every change (EROFS).
    #[arg(long)]
    read_only: bool,
    /// Mount through this access point: its directory is the root, and every
    /// operation runs as its identity.
    #[arg(long, value_name = "AP_ID")]
    access_point: Option<String>,
    /// Map root to nobody (65534), whatever the file system's policy says.
    #[arg(long)]
    no_root_access: bool,
    /// Where processes see this mount, when not at DIR (a sandbox may bind it
    /// elsewhere): symlinks resolved inside an access point are returned under it.
    #[arg(long, value_name = "PATH")]
    visible_path: Option<PathBuf>,
    /// Threads serving kernel requests.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Size of the node-local disk cache of blocks, in MiB (0 disables it). Off by
    /// default with the embedded local object store, whose objects are on local disk
    /// already: caching them would only copy them.
    #[arg(long, default_value_t = 0)]
    cache_size: u64,
    /// Seconds the kernel may cache attributes and names.
    #[arg(long, default_value_t = 1.0)]
    ttl: f64,
    /// Seconds without a heartbeat after which a client counts as dead: its session
    /// expires and its locks are freed (judged by each client with its own value).
    #[arg(long, default_value_t = 60.0, value_parser = parse_session_ttl)]
    session_ttl: f64,
}

fn parse_session_ttl(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(1.0..=86_400.0).contains(&v) {
        return Err("the session ttl is between 1 and 86400 seconds".into());
    }
    Ok(v)
}

pub fn run(paths: &DataDir, args: MountArgs) -> Result<()> {
    if args.create {
        std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
        crate::fs_cmd::create_if_missing(paths, &args.name)?;
    }
    let access_point = args.access_point.as_deref().map(floe_meta::AccessPointId::parse).transpose()?;
    if args.visible_path.as_ref().is_some_and(|p| !p.is_absolute()) {
        bail!("--visible-path must be absolute");
    }
    if let Some(id) = &access_point {
        check_access_point(paths, &args.name, id)?;
    }
    check_mount_point(&args.dir)?;
    wait_for_previous_server(paths, &args.dir)?;
    if args.background {
        return spawn_background(paths, &args);
    }
    // Signals are taken by one thread with sigwait; every thread started from here on
    // inherits the mask.
    let mut signals = nix::sys::signal::SigSet::empty();
    for s in [nix::sys::signal::SIGINT, nix::sys::signal::SIGTERM, nix::sys::signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("cannot block signals")?;
    let meta = paths.meta()?;
    let config = FsConfig {
        disk_cache: (args.cache_size > 0).then(|| (paths.cache(&args.name), args.cache_size << 20)),
        read_only: args.read_only,
        no_root_access: args.no_root_access,
        session_ttl: Duration::from_secs_f64(args.session_ttl),
        ..FsConfig::default()
    };
    let fs = FileSystem::mount(meta, paths.objects()?, &args.name, config)?;
    let options = MountOptions {
        ttl: Duration::from_secs_f64(args.ttl.clamp(0.0, 3600.0)),
        threads: args.threads,
        allow_other: nix::unistd::geteuid().is_root(),
        read_only: args.read_only,
        default_permissions: access_point.is_none(),
        visible_root: Some(args.visible_path.clone().unwrap_or(args.dir.canonicalize()?)),
        access_point,
    };
    let session = floe_fuse::spawn_mount(Arc::clone(&fs), &args.dir, &options)
        .with_context(|| format!("cannot mount on {}", args.dir.display()))?;
    println!("mounted {} on {}", args.name, args.dir.display());
    let pid_file = pid_file(paths, &args.dir.canonicalize()?);
    if let Some(dir) = pid_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let signalled = Arc::new(AtomicBool::new(false));
    {
        let signalled = Arc::clone(&signalled);
        std::thread::spawn(move || {
            if signals.wait().is_ok() {
                signalled.store(true, Ordering::SeqCst);
            }
        });
    }
    while !signalled.load(Ordering::SeqCst) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if signalled.load(Ordering::SeqCst) {
        session.umount_and_join().context("unmount failed")?;
    } else {
        let _ = session.join();
    }
    let closed = fs.close();
    let _ = std::fs::remove_file(&pid_file);
    closed?;
    println!("unmounted {}", args.dir.display());
    Ok(())
}

/// Fails in one line, before any mount starts, when the access point does not exist
/// or belongs to another file system.
fn check_access_point(paths: &DataDir, fs: &str, id: &floe_meta::AccessPointId) -> Result<()> {
    let meta = paths.meta()?;
    let info = meta.fs_by_name(fs)?;
    let ap = meta.access_point(id)?;
    if ap.fs != info.id {
        let owner = meta.list_fs()?.into_iter().find(|f| f.id == ap.fs).map_or_else(|| "?".to_string(), |f| f.name);
        bail!("access point {id} belongs to file system {owner}, not {fs}");
    }
    Ok(())
}

/// Waits until the server of an earlier mount on `dir` has exited: unmounted with a
/// plain `umount`, it may still be closing, and as it exits it unmounts whatever is
/// mounted on its path (fuser unmounts by path on drop), which would be our mount.
fn wait_for_previous_server(paths: &DataDir, dir: &Path) -> Result<()> {
    let file = pid_file(paths, &dir.canonicalize()?);
    let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|p| p.trim().parse::<i32>().ok()) else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while pid != std::process::id() as i32 && server_alive(pid) {
        if Instant::now() > deadline {
            bail!("the previous server of {} (pid {pid}) is still running", dir.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Whether `pid` is a running `floe ... mount` process (a stale pid file's pid may
/// have been reused by anything else).
fn server_alive(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"mount"))
}

/// Where the process serving a mount point records its pid, so that `floe umount`
/// can wait for it to finish (commit, end its session) before returning.
fn pid_file(paths: &DataDir, mount_point: &Path) -> PathBuf {
    let key = mount_point.to_string_lossy().replace('/', "%");
    paths.root.join("run").join(format!("{key}.pid"))
}

fn check_mount_point(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("mount point {} does not exist", dir.display()))?;
    if !meta.is_dir() {
        bail!("mount point {} is not a directory", dir.display());
    }
    let canonical = dir.canonicalize()?;
    if is_mount_point(&canonical)? {
        bail!("{} is already a mount point (busy)", dir.display());
    }
    Ok(())
}

/// Whether `dir` is listed as a mount point in this process's mount table.
pub fn is_mount_point(dir: &Path) -> Result<bool> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")?;
    let want = dir.to_string_lossy().replace(' ', "\\040");
    Ok(table.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str())))
}

/// Starts `floe mount` again in the foreground in a new process group, and waits
/// until the mount is there or the child has failed.
fn spawn_background(paths: &DataDir, args: &MountArgs) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let logs = paths.root.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let log_path = logs.join(format!("mount-{}.log", args.name));
    // Appended to: several clients of one file system may serve from one data directory.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let log_start = log.metadata().map_or(0, |m| m.len()) as usize;
    let dir = args.dir.canonicalize()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(&paths.root)
        .envs(paths.backend_env())
        .arg("mount")
        .arg(&args.name)
        .arg(&dir)
        .args(["--threads", &args.threads.to_string(), "--cache-size", &args.cache_size.to_string()])
        .args(["--ttl", &args.ttl.to_string(), "--session-ttl", &args.session_ttl.to_string()])
        .args(args.read_only.then_some("--read-only"))
        .args(args.no_root_access.then_some("--no-root-access"))
        .args(args.access_point.iter().flat_map(|ap| ["--access-point", ap.as_str()]))
        .args(args.visible_path.iter().flat_map(|p| [std::ffi::OsStr::new("--visible-path"), p.as_os_str()]))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the background mount process")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if is_mount_point(&dir)? {
            println!("mounted {} on {} (pid {}, log {})", args.name, dir.display(), child.id(), log_path.display());
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read(&log_path).unwrap_or_default();
            let ours = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
            bail!("mount failed ({status}): {}", ours.trim());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("mount did not appear within 30 s; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn unmount(paths: &DataDir, dir: &Path) -> Result<()> {
    let canonical = dir.canonicalize().with_context(|| format!("{} does not exist", dir.display()))?;
    let server: Option<i32> =
        std::fs::read_to_string(pid_file(paths, &canonical)).ok().and_then(|p| p.trim().parse().ok());
    if !is_mount_point(&canonical)? {
        bail!("{} is not mounted", dir.display());
    }
    let status = if nix::unistd::geteuid().is_root() {
        std::process::Command::new("umount").arg(&canonical).status()
    } else {
        std::process::Command::new("fusermount3").arg("-u").arg(&canonical).status()
    }
    .context("cannot run umount")?;
    if !status.success() {
        bail!("unmounting {} failed (busy?)", dir.display());
    }
    // Wait for the serving process to commit, end its session and exit, so that a
    // following `fs delete` or a new mount on the same directory is not disturbed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (is_mount_point(&canonical)? || server.is_some_and(server_alive)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(pid) = server.filter(|p| server_alive(*p)) {
        bail!("{} is unmounted but its server (pid {pid}) is still running", dir.display());
    }
    println!("unmounted {}", dir.display());
    Ok(())
}
