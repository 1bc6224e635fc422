//! Global locks end to end: two clients (two `floe mount` processes on one data
//! directory and file system, mounted on two directories) and real processes taking
//! `flock` and `fcntl` locks on them.
//!
//! The processes are this test binary run again with `FLOE_LOCKS_ROLE` set: libtest
//! then runs only [`child_role`], which plays the role named there and exits. Roles
//! report on stdout, one line per event, which the test reads with a deadline.
//!
//! Readers read through the page cache as any program does: taking a lock must drop
//! what the kernel cached of the file (`FileSystem::revalidate`), or the counter and
//! the readers would see stale data.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

const ROLE_ENV: &str = "FLOE_LOCKS_ROLE";

/// Where the child processes of these tests start (see the module comment). In a
/// normal test run it has nothing to do.
#[test]
fn child_role() {
    let Ok(spec) = std::env::var(ROLE_ENV) else { return };
    let args: Vec<String> = spec.split('\u{1f}').map(String::from).collect();
    let code = match roles::run(&args) {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("ERROR {args:?}: {e}"));
            1
        }
    };
    std::process::exit(code);
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A running role.
struct Role {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
    what: String,
}

impl Role {
    fn start(args: &[&str]) -> Role {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args(["--exact", "child_role", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE_ENV, args.join("\u{1f}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a role");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Role { child, lines, stdin, what: format!("{args:?}") }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line that starts with `prefix` (skipping libtest's own).
    #[track_caller]
    fn expect(&self, prefix: &str) -> String {
        self.expect_one_of(&[prefix])
    }

    /// Waits for the next line that starts with one of `prefixes`.
    #[track_caller]
    fn expect_one_of(&self, prefixes: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("ERROR") => panic!("{} failed: {line}", self.what),
                Ok(line) if prefixes.iter().any(|p| line.starts_with(p)) => return line,
                Ok(_) => {}
                Err(e) => panic!("{}: no line starting with one of {prefixes:?} ({e})", self.what),
            }
        }
    }

    /// The outcome of a `try` role.
    #[track_caller]
    fn outcome(&self) -> String {
        self.expect_one_of(&["OK", "ERRNO"])
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the role");
    }

    /// Closes its stdin (a holding role then exits) and waits for it; panics unless
    /// it exited 0.
    #[track_caller]
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for the role");
        let rest: Vec<String> = self.lines.try_iter().collect();
        assert!(status.success(), "{} exited with {status}: {rest:?}", self.what);
    }

    /// Waits until one of its threads sleeps in a FUSE request (a blocked lock).
    fn wait_blocked(&self) -> u32 {
        let pid = self.pid();
        let mut tid = 0;
        wait_for(&format!("{} to block in a FUSE request", self.what), || {
            tid = blocked_thread(pid).unwrap_or(0);
            tid != 0
        });
        tid
    }
}

impl Drop for Role {
    /// A role left running by a failed test must not outlive it (a blocked waiter
    /// would wait forever on an unmounted file system).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn blocked_thread(pid: u32) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.filter_map(Result::ok).find_map(|t| {
        let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
        (wchan.trim() == "request_wait_answer").then(|| t.file_name().to_string_lossy().parse().ok())?
    })
}

/// Two clients of one file system: two `floe mount` processes.
fn two_clients(floe: &Floe, extra: &[&str]) -> (Mount, Mount) {
    floe.create("shared");
    let a = floe.mount_with("shared", extra);
    let b = floe.mount_with("shared", extra);
    (a, b)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

// --- The roles ------------------------------------------------------------------

mod roles {
    use super::say;
    use std::fs::{File, OpenOptions};
    use std::io::{self, BufRead, Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;

    type R = Result<(), String>;

    pub fn run(args: &[String]) -> R {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let num = |i: usize| -> Result<i64, String> {
            a.get(i).ok_or("missing argument")?.parse::<i64>().map_err(|e| format!("argument {i}: {e}"))
        };
        match a.first().copied() {
            Some("append") => append(a[1], a[2], num(3)?),
            Some("read") => read_whole_lines(a[1], num(2)?),
            Some("ranges") => ranges(a[1], a[2], num(3)?, a[4], num(5)?),
            Some("hold") => hold(a[1], a[2], num(3)?, num(4)?),
            Some("try") => try_lock(a[1], a[2], a[3], num(4)?, num(5)?),
            Some("getlk") => getlk(a[1], num(2)?, num(3)?),
            Some("wait") => wait(a[1], a[2]),
            Some("interruptible") => interruptible(a[1]),
            other => Err(format!("unknown role {other:?}")),
        }
    }

    fn err(what: &str) -> impl Fn(io::Error) -> String + '_ {
        move |e| format!("{what}: {e}")
    }

    pub(super) fn flock(f: &File, op: i32) -> io::Result<()> {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// fcntl byte-range lock command `cmd` for `len` bytes from `start` (0: to EOF).
    /// Returns the lock structure (F_GETLK fills it in).
    pub(super) fn fcntl(f: &File, cmd: i32, typ: i32, start: i64, len: i64) -> io::Result<libc::flock> {
        // SAFETY: an all-zero flock is a valid value of this plain C struct.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = typ as i16;
        fl.l_whence = libc::SEEK_SET as i16;
        fl.l_start = start;
        fl.l_len = len;
        // SAFETY: fcntl with a lock command and a pointer to a live flock.
        if unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) } == 0 {
            Ok(fl)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) const LINE: usize = 48;

    pub(super) fn line(writer: &str, i: i64) -> String {
        format!("{:<47}\n", format!("{writer} line {i:04}"))
    }

    /// The message wall: `lines` appends under an exclusive flock.
    fn append(path: &str, writer: &str, lines: i64) -> R {
        let f = OpenOptions::new().append(true).open(path).map_err(err("open"))?;
        for i in 0..lines {
            flock(&f, libc::LOCK_EX).map_err(err("flock LOCK_EX"))?;
            (&f).write_all(line(writer, i).as_bytes()).map_err(err("append"))?;
            flock(&f, libc::LOCK_UN).map_err(err("flock LOCK_UN"))?;
        }
        say("DONE");
        Ok(())
    }

    /// Checks that a file is made of whole, well-formed lines.
    pub(super) fn check_whole_lines(data: &[u8]) -> R {
        if !data.len().is_multiple_of(LINE) {
            return Err(format!("{} bytes is not a whole number of {LINE}-byte lines", data.len()));
        }
        for (n, l) in data.chunks(LINE).enumerate() {
            let text = std::str::from_utf8(l).map_err(|_| format!("line {n} is not UTF-8: {l:?}"))?;
            if !text.starts_with('c') || !text.ends_with('\n') || text[..LINE - 1].contains('\n') {
                return Err(format!("line {n} is torn: {text:?}"));
            }
        }
        Ok(())
    }

    /// A reader under a shared flock, `rounds` times.
    fn read_whole_lines(path: &str, rounds: i64) -> R {
        for _ in 0..rounds {
            let f = File::open(path).map_err(err("open"))?;
            flock(&f, libc::LOCK_SH).map_err(err("flock LOCK_SH"))?;
            let mut data = Vec::new();
            (&f).read_to_end(&mut data).map_err(err("read"))?;
            check_whole_lines(&data)?;
        }
        say("DONE");
        Ok(())
    }

    pub(super) const REGION: i64 = 64 << 10;
    pub(super) const RECORD: i64 = 32;

    pub(super) fn record(writer: &str, i: i64) -> String {
        format!("{:<31}\n", format!("{writer} rec {i:04}"))
    }

    /// Writer `slot` writes `records` records into its own region, each under an
    /// fcntl lock of that region; between records it increments the counter at
    /// `counter` under a write lock (read, add one, write, unlock).
    fn ranges(path: &str, writer: &str, slot: i64, counter: &str, records: i64) -> R {
        let f = OpenOptions::new().write(true).open(path).map_err(err("open"))?;
        let c = OpenOptions::new().read(true).write(true).open(counter);
        let c = c.map_err(err("open the counter"))?;
        let base = slot * REGION;
        for i in 0..records {
            fcntl(&f, libc::F_SETLKW, libc::F_WRLCK, base, REGION).map_err(err("lock the region"))?;
            f.write_all_at(record(writer, i).as_bytes(), (base + i * RECORD) as u64).map_err(err("pwrite"))?;
            fcntl(&f, libc::F_SETLK, libc::F_UNLCK, base, REGION).map_err(err("unlock the region"))?;

            fcntl(&c, libc::F_SETLKW, libc::F_WRLCK, 0, 16).map_err(err("lock the counter"))?;
            let mut buf = [0u8; 9];
            c.read_exact_at(&mut buf, 0).map_err(err("read the counter"))?;
            let text = std::str::from_utf8(&buf[..8]).map_err(|_| format!("counter {buf:?}"))?;
            let n: u64 = text.parse().map_err(|_| format!("counter {text:?}"))?;
            c.write_all_at(format!("{:08}\n", n + 1).as_bytes(), 0).map_err(err("write the counter"))?;
            fcntl(&c, libc::F_SETLK, libc::F_UNLCK, 0, 16).map_err(err("unlock the counter"))?;
        }
        say("DONE");
        Ok(())
    }

    fn take(kind: &str, f: &File, start: i64, len: i64, cmd: i32) -> io::Result<()> {
        match kind {
            "flock" => flock(f, libc::LOCK_EX | if cmd == libc::F_SETLK { libc::LOCK_NB } else { 0 }),
            _ => fcntl(f, cmd, libc::F_WRLCK, start, len).map(|_| ()),
        }
    }

    /// Takes an exclusive lock and holds it. Commands on stdin: `close` closes the
    /// descriptor, `close-other` opens and closes the file a second time; EOF exits.
    fn hold(kind: &str, path: &str, start: i64, len: i64) -> R {
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(err("open"))?;
        take(kind, &f, start, len, libc::F_SETLKW).map_err(err("lock"))?;
        say(&format!("LOCKED {}", std::process::id()));
        let mut f = Some(f);
        for cmd in io::stdin().lock().lines() {
            match cmd.map_err(err("stdin"))?.as_str() {
                "close" => {
                    f.take();
                    say("CLOSED");
                }
                "close-other" => {
                    drop(File::open(path).map_err(err("open again"))?);
                    say("CLOSED-OTHER");
                }
                other => return Err(format!("unknown command {other:?}")),
            }
        }
        Ok(())
    }

    /// One non-blocking attempt; says OK or the errno.
    fn try_lock(kind: &str, path: &str, typ: &str, start: i64, len: i64) -> R {
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(err("open"))?;
        let r = match (kind, typ) {
            ("flock", "r") => flock(&f, libc::LOCK_SH | libc::LOCK_NB),
            ("flock", _) => flock(&f, libc::LOCK_EX | libc::LOCK_NB),
            (_, "r") => fcntl(&f, libc::F_SETLK, libc::F_RDLCK, start, len).map(|_| ()),
            _ => fcntl(&f, libc::F_SETLK, libc::F_WRLCK, start, len).map(|_| ()),
        };
        match r {
            Ok(()) => say("OK"),
            Err(e) => say(&format!("ERRNO {}", e.raw_os_error().unwrap_or(0))),
        }
        Ok(())
    }

    /// F_GETLK for a write lock on the range; says what it found.
    fn getlk(path: &str, start: i64, len: i64) -> R {
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(err("open"))?;
        let fl = fcntl(&f, libc::F_GETLK, libc::F_WRLCK, start, len).map_err(err("F_GETLK"))?;
        say(&format!("GETLK {} {} {} {}", fl.l_type, fl.l_start, fl.l_len, fl.l_pid));
        Ok(())
    }

    /// Waits for an exclusive lock of the whole file, then exits (releasing it).
    fn wait(kind: &str, path: &str) -> R {
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(err("open"))?;
        say("WAITING");
        take(kind, &f, 0, 0, libc::F_SETLKW).map_err(err("lock"))?;
        say("ACQUIRED");
        Ok(())
    }

    extern "C" fn on_signal(_: libc::c_int) {}

    /// Waits for a write lock of the whole file with a SIGUSR1 handler installed
    /// without SA_RESTART; says EINTR when the signal ends the wait.
    fn interruptible(path: &str) -> R {
        // SAFETY: installing a handler that does nothing, with an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
                return Err(format!("sigaction: {}", io::Error::last_os_error()));
            }
        }
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(err("open"))?;
        say("WAITING");
        match fcntl(&f, libc::F_SETLKW, libc::F_WRLCK, 0, 0) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => say("EINTR"),
            Err(e) => return Err(format!("F_SETLKW: {e}")),
            Ok(_) => say("ACQUIRED"),
        }
        Ok(())
    }
}

// --- The tests ------------------------------------------------------------------

/// The message wall: 4 processes on each client append 200 lines each to one file
/// opened with O_APPEND, each line under an exclusive flock, while a reader on each
/// client reads the file under a shared flock. Every line arrives exactly once,
/// whole and in its writer's order; every read sees whole lines.
#[test]
fn message_wall_under_flock_across_two_clients() {
    require_fuse!();
    const WRITERS: usize = 4;
    const LINES: i64 = 200;
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("wall"), b"").expect("create the wall");
    let mut roles = Vec::new();
    for (c, m) in [&a, &b].into_iter().enumerate() {
        let path = m.join("wall");
        for w in 0..WRITERS {
            roles.push(Role::start(&["append", s(&path), &format!("c{c} w{w}"), &LINES.to_string()]));
        }
        roles.push(Role::start(&["read", s(&path), "40"]));
    }
    for r in roles {
        r.expect("DONE");
        r.finish();
    }
    let f = std::fs::File::open(b.join("wall")).expect("open the wall");
    let mut data = Vec::new();
    (&f).read_to_end(&mut data).expect("read the wall");
    roles::check_whole_lines(&data).unwrap_or_else(|e| panic!("the wall: {e}"));
    let mut next: BTreeMap<String, i64> = BTreeMap::new();
    for l in data.chunks(roles::LINE) {
        let text = std::str::from_utf8(l).expect("UTF-8").trim_end();
        let (writer, n) = text.rsplit_once(" line ").expect("a line number");
        let expected = next.entry(writer.to_string()).or_insert(0);
        assert_eq!(n.parse::<i64>().expect("a number"), *expected, "{writer}'s lines arrive once, in order");
        *expected += 1;
    }
    assert_eq!(next.len(), 2 * WRITERS, "every writer's lines arrived");
    assert!(next.values().all(|n| *n == LINES), "no line lost: {next:?}");
    assert_eq!(data.len(), 2 * WRITERS * LINES as usize * roles::LINE);
}

/// Byte-range locks on distinct ranges: 2 writers per client each fill their own
/// region of one file under fcntl locks of that region, and between records
/// increment a shared counter under a lock (read, add one, write, unlock) across
/// both clients: no record is lost, and no increment (which would need a stale read,
/// i.e. a lock that did not revalidate or an unlock that did not flush).
#[test]
fn byte_range_writers_and_a_locked_counter_across_two_clients() {
    require_fuse!();
    const PER_CLIENT: usize = 2;
    const RECORDS: i64 = 100;
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("regions"), b"").expect("create the file");
    std::fs::write(a.join("counter"), b"00000000\n").expect("create the counter");
    let mut roles = Vec::new();
    for (c, m) in [&a, &b].into_iter().enumerate() {
        for w in 0..PER_CLIENT {
            let slot = c * PER_CLIENT + w;
            let (path, counter) = (m.join("regions"), m.join("counter"));
            let writer = format!("c{c} w{w}");
            roles.push(Role::start(&[
                "ranges",
                s(&path),
                &writer,
                &slot.to_string(),
                s(&counter),
                &RECORDS.to_string(),
            ]));
        }
    }
    for r in roles {
        r.expect("DONE");
        r.finish();
    }
    let f = std::fs::File::open(b.join("regions")).expect("open");
    for c in 0..2 {
        for w in 0..PER_CLIENT {
            let slot = (c * PER_CLIENT + w) as i64;
            let mut got = vec![0u8; (RECORDS * roles::RECORD) as usize];
            f.read_exact_at(&mut got, (slot * roles::REGION) as u64).expect("read a region");
            let want: String = (0..RECORDS).map(|i| roles::record(&format!("c{c} w{w}"), i)).collect();
            assert_bytes_eq(&got, want.as_bytes(), &format!("region of c{c} w{w}"));
        }
    }
    let counter = std::fs::File::open(a.join("counter")).expect("open the counter");
    let mut buf = [0u8; 9];
    counter.read_exact_at(&mut buf, 0).expect("read the counter");
    let total = 2 * PER_CLIENT as i64 * RECORDS;
    assert_eq!(std::str::from_utf8(&buf).expect("UTF-8"), format!("{total:08}\n"), "every increment counted");
}

/// F_GETLK on one client names the other client's lock (type, range, pid); a
/// non-blocking request that conflicts fails with EAGAIN (fcntl) or EWOULDBLOCK
/// (flock), one that does not is granted. flock and fcntl locks of one file
/// conflict with each other (NFS semantics, see the ADR).
#[test]
fn getlk_names_the_other_clients_lock_and_conflicts_fail_at_once() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("f"), b"data").expect("create");
    let (fa, fb) = (a.join("f"), b.join("f"));
    let holder = Role::start(&["hold", "fcntl", s(&fa), "100", "100"]);
    let pid: u32 = holder.expect("LOCKED ")[7..].parse().expect("the holder's pid");
    assert_eq!(pid, holder.pid());

    let getlk = Role::start(&["getlk", s(&fb), "0", "0"]);
    assert_eq!(getlk.expect("GETLK"), format!("GETLK {} 100 100 {pid}", libc::F_WRLCK), "F_GETLK names the holder");
    getlk.finish();
    let free = Role::start(&["getlk", s(&fb), "0", "100"]);
    assert_eq!(free.expect("GETLK"), format!("GETLK {} 0 100 0", libc::F_UNLCK), "nothing in the way of 0..99");
    free.finish();

    for (kind, typ, start, len, want) in [
        ("fcntl", "w", "150", "10", format!("ERRNO {}", libc::EAGAIN)),
        ("fcntl", "r", "199", "1", format!("ERRNO {}", libc::EAGAIN)),
        ("fcntl", "w", "0", "100", "OK".to_string()),
        ("fcntl", "w", "200", "0", "OK".to_string()),
        ("flock", "w", "0", "0", format!("ERRNO {}", libc::EWOULDBLOCK)),
    ] {
        for m in [&fb, &fa] {
            let attempt = Role::start(&["try", kind, s(m), typ, start, len]);
            assert_eq!(attempt.outcome(), want, "{kind} {typ} {start}+{len} on {}", m.display());
            attempt.finish();
        }
    }
    holder.finish();
}

/// A blocked flock on one client and a blocked fcntl lock on the other both get the
/// lock once its holder closes it.
#[test]
fn blocked_waits_wake_when_the_lock_is_freed() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("f"), b"").expect("create");
    let mut holder = Role::start(&["hold", "flock", s(&a.join("f")), "0", "0"]);
    holder.expect("LOCKED");
    let remote = Role::start(&["wait", "flock", s(&b.join("f"))]);
    let local = Role::start(&["wait", "fcntl", s(&a.join("f"))]);
    for w in [&remote, &local] {
        w.expect("WAITING");
        w.wait_blocked();
    }
    holder.send("close");
    holder.expect("CLOSED");
    for w in [remote, local] {
        w.expect("ACQUIRED");
        w.finish();
    }
    holder.finish();
}

/// A signal ends a blocked F_SETLKW with EINTR (handler without SA_RESTART), and
/// the lock stays with its holder.
#[test]
fn a_blocked_setlkw_is_interrupted_by_a_signal() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("f"), b"").expect("create");
    let holder = Role::start(&["hold", "fcntl", s(&a.join("f")), "0", "0"]);
    holder.expect("LOCKED");
    let waiter = Role::start(&["interruptible", s(&b.join("f"))]);
    waiter.expect("WAITING");
    let tid = waiter.wait_blocked();
    // SAFETY: tgkill sends a signal to one thread of our own child.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, waiter.pid() as i64, tid as i64, libc::SIGUSR1 as i64) };
    assert_eq!(sent, 0, "tgkill: {}", std::io::Error::last_os_error());
    assert_eq!(waiter.expect_one_of(&["EINTR", "ACQUIRED"]), "EINTR", "the wait ends with EINTR");
    waiter.finish();
    let attempt = Role::start(&["try", "fcntl", s(&b.join("f")), "w", "0", "0"]);
    assert_eq!(attempt.outcome(), format!("ERRNO {}", libc::EAGAIN), "the holder still holds the lock");
    attempt.finish();
    holder.finish();
}

/// fcntl locks go with any close of the file by their process (POSIX), and with
/// the process's exit; a flock goes with the last close of its open file.
#[test]
fn locks_are_released_on_close_and_on_process_exit() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("f"), b"").expect("create");
    let (fa, fb) = (a.join("f"), b.join("f"));
    let busy = format!("ERRNO {}", libc::EAGAIN);
    let attempt = |kind: &str| {
        let r = Role::start(&["try", kind, s(&fb), "w", "0", "0"]);
        let line = r.outcome();
        r.finish();
        line
    };

    let mut holder = Role::start(&["hold", "fcntl", s(&fa), "0", "0"]);
    holder.expect("LOCKED");
    assert_eq!(attempt("fcntl"), busy);
    holder.send("close-other");
    holder.expect("CLOSED-OTHER");
    assert_eq!(attempt("fcntl"), "OK", "closing any descriptor of the file drops the process's fcntl locks");
    holder.finish();

    let mut holder = Role::start(&["hold", "flock", s(&fa), "0", "0"]);
    holder.expect("LOCKED");
    holder.send("close-other");
    holder.expect("CLOSED-OTHER");
    assert_eq!(attempt("flock"), busy, "a flock stays while its own open file is open");
    holder.send("close");
    holder.expect("CLOSED");
    assert_eq!(attempt("flock"), "OK", "closing its open file drops the flock");
    holder.finish();

    for kind in ["fcntl", "flock"] {
        let holder = Role::start(&["hold", kind, s(&fa), "0", "0"]);
        holder.expect("LOCKED");
        assert_eq!(attempt(kind), busy);
        holder.finish();
        assert_eq!(attempt(kind), "OK", "the {kind} lock went with its process");
    }
}

/// A client killed with SIGKILL loses its locks when its session expires: a waiter
/// on the other client then gets the lock.
#[test]
fn a_killed_clients_locks_are_freed_after_its_session_expires() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &["--session-ttl", "2"]);
    std::fs::write(a.join("f"), b"").expect("create");
    let holder = Role::start(&["hold", "fcntl", s(&a.join("f")), "0", "0"]);
    holder.expect("LOCKED");
    let waiter = Role::start(&["wait", "fcntl", s(&b.join("f"))]);
    waiter.expect("WAITING");
    waiter.wait_blocked();
    a.crash();
    waiter.expect("ACQUIRED");
    waiter.finish();
    // The holder's descriptor is on a dead mount: its exit status says nothing.
    drop(holder);
    drop(b);
}

/// Taking a lock revalidates the file in the kernel too: a reader whose page cache
/// holds the old contents, on a mount whose attributes would stay cached for a minute
/// (`--ttl 60`), takes the lock after another client's locked write and must read the
/// new contents. Only the revalidation on lock can make that happen.
#[test]
fn taking_a_lock_drops_the_kernels_stale_pages() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &["--ttl", "60"]);
    std::fs::write(a.join("f"), b"version 1").expect("create");
    for round in 2..6 {
        let reader = std::fs::File::open(b.join("f")).expect("open through b");
        // Warm b's page cache with what is there now.
        let mut old = [0u8; 9];
        reader.read_exact_at(&mut old, 0).expect("read");
        let writer = std::fs::OpenOptions::new().write(true).open(a.join("f")).expect("open through a");
        roles::flock(&writer, libc::LOCK_EX).expect("lock through a");
        writer.write_all_at(format!("version {round}").as_bytes(), 0).expect("write through a");
        roles::flock(&writer, libc::LOCK_UN).expect("unlock through a (commits)");
        roles::flock(&reader, libc::LOCK_SH).expect("lock through b");
        let mut now = [0u8; 9];
        reader.read_exact_at(&mut now, 0).expect("read under the lock");
        assert_eq!(
            std::str::from_utf8(&now).expect("UTF-8"),
            format!("version {round}"),
            "round {round}: b read {:?} under its lock, after a's locked write",
            std::str::from_utf8(&old)
        );
        roles::flock(&reader, libc::LOCK_UN).expect("unlock through b");
    }
}

/// An open file description lock (`F_OFD_SETLK`, owned by the open file) goes with the
/// last close of its open file: the kernel tells FUSE neither at FLUSH nor at RELEASE,
/// floe remembers which open file it was taken through. Another client then gets it.
#[test]
fn an_open_file_description_lock_goes_with_its_last_close() {
    require_fuse!();
    let floe = Floe::new();
    let (a, b) = two_clients(&floe, &[]);
    std::fs::write(a.join("f"), b"data").expect("create");
    let holder = std::fs::OpenOptions::new().read(true).write(true).open(a.join("f")).expect("open through a");
    roles::fcntl(&holder, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 0).expect("take an OFD lock through a");
    let other = std::fs::OpenOptions::new().read(true).write(true).open(b.join("f")).expect("open through b");
    let refused = roles::fcntl(&other, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 0);
    assert_eq!(errno_of(refused), libc::EAGAIN, "held by the other client's open file");
    // A second descriptor of the same open file keeps it: dup, close the original.
    let dup = holder.try_clone().expect("dup");
    drop(holder);
    assert_eq!(
        errno_of(roles::fcntl(&other, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 0)),
        libc::EAGAIN,
        "the open file is still open through its duplicate"
    );
    drop(dup);
    // RELEASE reaches floe after close(2) returns: poll.
    wait_for("the OFD lock to go with its open file", || {
        roles::fcntl(&other, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 0).is_ok()
    });
}
