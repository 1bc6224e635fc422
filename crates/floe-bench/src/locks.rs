//! The lock workload (issue 3): acquire + release latency, uncontended and contended,
//! within one client and across two; appends per second under flock from 8 writers
//! on 2 clients; and how long a killed client's lock takes to be freed.
//!
//! floe runs as two clients of the bench file system (two `floe mount` processes on
//! its data directory); the reference is the same work on tmpfs, where the lock
//! handover never leaves the kernel of one machine. Contended cases use `flock` on
//! separate open files (each open file is its own lock owner), two threads taking
//! turns as fast as they can.

use crate::node::FloeDir;
use crate::setup::Environment;
use crate::stats::{us, Report, Series, Table};
use crate::Args;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The session ttl of the clients mounted here: short, so that the dead-client case
/// finishes quickly; it changes nothing else.
const SESSION_TTL: &str = "3";

fn flock(f: &File, op: i32) -> Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        bail!("flock: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn fcntl_lock(f: &File, cmd: i32, typ: i32) -> Result<()> {
    // SAFETY: an all-zero flock is a valid value of this plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    // SAFETY: fcntl with a lock command and a pointer to a live flock.
    if unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) } != 0 {
        bail!("fcntl: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A `floe mount` of the bench file system started for this workload.
struct Client<'a> {
    dir: PathBuf,
    pid: i32,
    node: &'a FloeDir,
}

impl<'a> Client<'a> {
    fn mount(env: &'a Environment, name: &str) -> Result<Client<'a>> {
        let dir = env.work().join(name);
        // A mount left by an interrupted earlier run.
        let _ = std::process::Command::new("umount").arg("-l").arg(&dir).stderr(std::process::Stdio::null()).status();
        let node = env.floe_dir();
        let pid =
            node.mount("bench", &dir, &["--session-ttl", SESSION_TTL]).context("mounting a lock client failed")?;
        Ok(Client { dir, pid, node })
    }

    /// SIGKILL to the server (a crashed client), then detach its dead mount.
    fn kill(self) -> Result<Instant> {
        // SAFETY: kill(2) on the pid of the server we started.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        let at = Instant::now();
        let _ =
            std::process::Command::new("umount").arg("-l").arg(&self.dir).stderr(std::process::Stdio::null()).status();
        std::mem::forget(self);
        Ok(at)
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        let _ = self.node.umount(&self.dir);
    }
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).context("open")
}

/// One acquire + release of a whole-file lock, in µs.
fn acquire_release(f: &File, use_flock: bool) -> Result<f64> {
    let t = Instant::now();
    if use_flock {
        flock(f, libc::LOCK_EX)?;
        flock(f, libc::LOCK_UN)?;
    } else {
        fcntl_lock(f, libc::F_SETLKW, libc::F_WRLCK)?;
        fcntl_lock(f, libc::F_SETLK, libc::F_UNLCK)?;
    }
    Ok(us(t.elapsed()))
}

/// Two threads, each with its own open file of `a` and `b` (the same file, maybe
/// through two clients), take turns on an exclusive flock `n` times each. Returns
/// every acquire + release latency.
fn contended(a: &Path, b: &Path, n: usize) -> Result<Vec<f64>> {
    let (fa, fb) = (open_rw(a)?, open_rw(b)?);
    let run = |f: File| -> Result<Vec<f64>> { (0..n).map(|_| acquire_release(&f, true)).collect() };
    std::thread::scope(|s| {
        let ta = s.spawn(|| run(fa));
        let tb = s.spawn(|| run(fb));
        let mut all = ta.join().map_err(|_| anyhow::anyhow!("a lock thread panicked"))??;
        all.extend(tb.join().map_err(|_| anyhow::anyhow!("a lock thread panicked"))??);
        Ok(all)
    })
}

/// `writers` threads append `each` 64-byte lines to one O_APPEND file under an
/// exclusive flock, spread over `dirs`. Returns appends per second.
fn appends(dirs: &[&Path], writers: usize, each: usize) -> Result<f64> {
    let line = format!("{:<63}\n", "a line appended under an exclusive flock");
    let files: Vec<File> = (0..writers)
        .map(|w| OpenOptions::new().append(true).open(dirs[w % dirs.len()].join("wall")).context("open the wall"))
        .collect::<Result<_>>()?;
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = files
            .iter()
            .map(|f| {
                let line = &line;
                s.spawn(move || -> Result<()> {
                    let mut f = f;
                    for _ in 0..each {
                        flock(f, libc::LOCK_EX)?;
                        f.write_all(line.as_bytes())?;
                        flock(f, libc::LOCK_UN)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    Ok((writers * each) as f64 / t.elapsed().as_secs_f64())
}

pub fn locks(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    let (n, append_rounds, appends_each, kill_rounds) = if args.quick { (200, 2, 50, 1) } else { (2000, 5, 200, 3) };
    let a = Client::mount(env, "mnt-lock-a")?;
    let b = Client::mount(env, "mnt-lock-b")?;
    let shm = env.shm().join("locks");
    std::fs::create_dir_all(&shm)?;
    let fa = a.dir.join("lockfile");
    let fb = b.dir.join("lockfile");
    let local = shm.join("lockfile");
    for p in [&fa, &local] {
        open_rw(p)?;
    }

    let pair =
        || vec![Series { target: "floe".into(), samples: vec![] }, Series { target: "tmpfs".into(), samples: vec![] }];
    let (mut fcntl_s, mut flock_s) = (pair(), pair());
    let files = [open_rw(&fa)?, open_rw(&local)?];
    for _ in 0..n {
        for (i, f) in files.iter().enumerate() {
            fcntl_s[i].samples.push(acquire_release(f, false)?);
            flock_s[i].samples.push(acquire_release(f, true)?);
        }
    }
    drop(files);
    let (mut within, mut across) = (pair(), pair());
    let chunk = (n / 10).max(10);
    for _ in 0..10 {
        within[0].samples.extend(contended(&fa, &fa, chunk)?);
        within[1].samples.extend(contended(&local, &local, chunk)?);
        across[0].samples.extend(contended(&fa, &fb, chunk)?);
        across[1].samples.extend(contended(&local, &local, chunk)?);
    }
    report.tables.push(Table {
        title: "Lock acquire + release, whole file".into(),
        unit: "µs",
        higher_is_better: false,
        show_max: true,
        lead: None,
        rows: vec![
            ("fcntl F_SETLKW + F_UNLCK, uncontended".into(), fcntl_s),
            ("flock LOCK_EX + LOCK_UN, uncontended".into(), flock_s),
            ("flock, 2 threads taking turns, one client".into(), within),
            ("flock, 2 threads taking turns, two clients (tmpfs: one machine)".into(), across),
        ],
    });

    std::fs::write(a.dir.join("wall"), b"")?;
    std::fs::write(shm.join("wall"), b"")?;
    let mut rate = pair();
    for _ in 0..append_rounds {
        rate[0].samples.push(appends(&[&a.dir, &b.dir], 8, appends_each)?);
        rate[1].samples.push(appends(&[&shm], 8, appends_each)?);
    }
    report.tables.push(Table {
        title: format!("Appends under flock: 8 writers ({} per client on floe), {appends_each} each", 4),
        unit: "appends/s",
        higher_is_better: true,
        show_max: false,
        lead: None,
        rows: vec![("open O_APPEND; flock LOCK_EX, write 64 B, LOCK_UN".into(), rate)],
    });

    let mut freed = vec![Series { target: "floe".into(), samples: vec![] }];
    for round in 0..kill_rounds {
        let dead = Client::mount(env, "mnt-lock-dead")?;
        let held = open_rw(&dead.dir.join("lockfile"))?;
        flock(&held, libc::LOCK_EX)?;
        let waiter = open_rw(&fb)?;
        let killed = std::thread::scope(|s| -> Result<Duration> {
            let wait = s.spawn(|| -> Result<Instant> {
                flock(&waiter, libc::LOCK_EX)?;
                let at = Instant::now();
                flock(&waiter, libc::LOCK_UN)?;
                Ok(at)
            });
            // Let the waiter block first; its wait is what is measured from the kill.
            std::thread::sleep(Duration::from_millis(200));
            let killed_at = dead.kill()?;
            let got = wait.join().map_err(|_| anyhow::anyhow!("the waiter panicked"))??;
            Ok(got - killed_at)
        })?;
        drop(held);
        eprintln!("floe-bench: dead client round {round}: lock free after {:.2} s", killed.as_secs_f64());
        freed[0].samples.push(killed.as_secs_f64());
    }
    report.tables.push(Table {
        title: format!("A killed client's lock: SIGKILL to free (session ttl {SESSION_TTL} s, heartbeat 1 s)"),
        unit: "s",
        higher_is_better: false,
        show_max: true,
        lead: None,
        rows: vec![("flock held by a killed client, waited for on another".into(), freed)],
    });
    Ok(())
}
