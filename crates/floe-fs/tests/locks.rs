//! Global locks through `FileSystem`, without FUSE: two clients (two `FileSystem`s,
//! each with its own SQLite connections and session, as two processes would have) on
//! one metadata database and one object directory.

use floe_fs::{Caller, FileSystem, FsConfig, FsError, InodeId, LockRequest, LockType, Result, LOCK_END};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::Env;

/// A client with background collection out of the way.
fn client(env: &Env) -> Arc<FileSystem> {
    env.mount(FsConfig { gc_interval: Duration::from_secs(3600), ..FsConfig::default() })
}

fn req(owner: u64, typ: LockType, start: u64, end: u64) -> LockRequest {
    LockRequest { owner, typ, start, end, pid: 1000 + owner as u32 }
}

fn whole(owner: u64, typ: LockType) -> LockRequest {
    req(owner, typ, 0, LOCK_END)
}

/// How long a test waits for something that must happen (never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);

/// Starts a blocking request; the receiver gets its outcome.
fn wait_for_lock(
    fs: &Arc<FileSystem>,
    ino: InodeId,
    r: LockRequest,
    interrupted: Arc<AtomicBool>,
) -> mpsc::Receiver<Result<()>> {
    let (tx, rx) = mpsc::channel();
    fs.setlk_wait(
        ino,
        &r,
        Box::new(move || interrupted.load(Ordering::SeqCst)),
        Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }),
    );
    rx
}

fn errno(r: Result<()>) -> i32 {
    r.expect_err("expected an error").errno()
}

#[test]
fn conflicts_across_clients_and_getlk_names_the_holder() {
    let env = Env::new();
    let (a, b) = (client(&env), client(&env));
    let (fh, attr) = a.create(&Caller::root(), InodeId::ROOT, b"f", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    a.setlk(ino, &req(1, LockType::Write, 100, 199)).expect("lock on a");
    assert_eq!(errno(b.setlk(ino, &req(1, LockType::Read, 150, 150))), libc::EAGAIN, "same owner number, other client");
    b.setlk(ino, &req(1, LockType::Write, 200, 299)).expect("a distinct range");
    let holder = b.getlk(ino, &whole(9, LockType::Read)).expect("getlk").expect("a conflict");
    assert_eq!((holder.typ, holder.start, holder.end, holder.pid), (LockType::Write, 100, 199, 1001));
    assert_eq!(a.getlk(ino, &req(1, LockType::Write, 0, 199)).expect("getlk"), None, "own locks never conflict");
    a.release_locks(ino, 1).expect("release");
    assert_eq!(b.getlk(ino, &req(5, LockType::Write, 0, 199)).expect("getlk"), None);
    a.release(fh).expect("close");
}

#[test]
fn a_waiter_wakes_on_a_local_unlock_and_on_another_clients_unlock() {
    let env = Env::new();
    let (a, b) = (client(&env), client(&env));
    let (fh, attr) = a.create(&Caller::root(), InodeId::ROOT, b"f", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    let never = Arc::new(AtomicBool::new(false));

    a.setlk(ino, &whole(1, LockType::Write)).expect("lock");
    let local = wait_for_lock(&a, ino, whole(2, LockType::Write), Arc::clone(&never));
    assert!(local.try_recv().is_err(), "the waiter waits while the lock is held");
    a.setlk(ino, &whole(1, LockType::Unlock)).expect("unlock");
    local.recv_timeout(PATIENCE).expect("the local waiter is woken").expect("and gets the lock");

    let remote = wait_for_lock(&b, ino, whole(3, LockType::Read), Arc::clone(&never));
    assert!(remote.try_recv().is_err());
    a.release_locks(ino, 2).expect("release");
    remote.recv_timeout(PATIENCE).expect("the other client's waiter notices").expect("and gets the lock");
    a.release(fh).expect("close");
}

#[test]
fn an_interrupted_waiter_gives_up_with_eintr_and_unmount_ends_waits() {
    let env = Env::new();
    let (a, b) = (client(&env), client(&env));
    let (_, attr) = a.create(&Caller::root(), InodeId::ROOT, b"f", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    a.setlk(ino, &whole(1, LockType::Write)).expect("lock");
    let signal = Arc::new(AtomicBool::new(false));
    let waiting = wait_for_lock(&b, ino, whole(1, LockType::Write), Arc::clone(&signal));
    signal.store(true, Ordering::SeqCst);
    let outcome = waiting.recv_timeout(PATIENCE).expect("the interrupted waiter answers");
    assert!(matches!(outcome, Err(FsError::Interrupted)), "{outcome:?}");

    let waiting = wait_for_lock(&b, ino, whole(1, LockType::Write), Arc::new(AtomicBool::new(false)));
    b.close().expect("unmount");
    assert_eq!(errno(waiting.recv_timeout(PATIENCE).expect("unmount answers the waiter")), libc::EINTR);
}

/// Lock-protected read-modify-write across clients: taking the lock revalidates the
/// reader's cached chunk maps, releasing it commits the writer's pending write.
#[test]
fn locked_read_modify_write_across_clients_sees_every_increment() {
    let env = Env::new();
    let clients = [client(&env), client(&env)];
    let (fh, attr) = clients[0].create(&Caller::root(), InodeId::ROOT, b"n", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    clients[0].write(fh, 0, b"00000000").expect("write");
    clients[0].release(fh).expect("close");
    // Handles stay open across increments, so stale cached chunk maps would show.
    let handles: Vec<u64> =
        clients.iter().map(|c| c.open(&Caller::root(), ino, libc::O_RDWR).expect("open").fh).collect();
    let read = |c: &FileSystem, fh: u64| -> u64 {
        String::from_utf8(c.read(fh, 0, 8).expect("read")).expect("utf-8").parse().expect("a number")
    };
    for round in 0..50u64 {
        // Both clients read under a shared lock (and cache the chunk map)...
        for (i, c) in clients.iter().enumerate() {
            c.setlk(ino, &whole(7, LockType::Read)).expect("shared lock");
            assert_eq!(read(c, handles[i]), round, "client {i} under a shared lock sees every increment");
            c.setlk(ino, &whole(7, LockType::Unlock)).expect("unlock");
        }
        // ...then one of them increments.
        let i = (round % 2) as usize;
        let (c, fh) = (&clients[i], handles[i]);
        c.setlk(ino, &whole(7, LockType::Write)).expect("lock");
        let n = read(c, fh);
        assert_eq!(n, round, "client {i} sees every earlier increment");
        c.write(fh, 0, format!("{:08}", n + 1).as_bytes()).expect("write");
        c.setlk(ino, &whole(7, LockType::Unlock)).expect("unlock commits the write");
    }
    for (c, fh) in clients.iter().zip(handles) {
        c.release(fh).expect("close");
    }
}

#[test]
fn closing_a_client_frees_its_locks_for_others() {
    let env = Env::new();
    let (a, b) = (client(&env), client(&env));
    let (_, attr) = a.create(&Caller::root(), InodeId::ROOT, b"f", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    a.setlk(ino, &whole(1, LockType::Write)).expect("lock");
    let waiting = wait_for_lock(&b, ino, whole(1, LockType::Write), Arc::new(AtomicBool::new(false)));
    a.close().expect("unmount a");
    waiting.recv_timeout(PATIENCE).expect("the waiter notices").expect("and gets the lock");
}

/// Which closes must reach floe (ADR 15): a handle that may write, and any handle of
/// a file some process of this client may hold a lock on; not a read-only handle of
/// an unlocked file, nor of one locked only through another client.
#[test]
fn a_close_must_reach_floe_when_it_may_commit_or_release_a_lock() {
    let env = Env::new();
    let (a, b) = (client(&env), client(&env));
    let root = Caller::root();
    let (w, attr) = a.create(&root, InodeId::ROOT, b"f", 0o644, 0, libc::O_RDWR).expect("create");
    let ino = attr.ino;
    let flush_on_close = |fs: &FileSystem, flags: i32| {
        let o = fs.open(&root, ino, flags).expect("open");
        fs.release(o.fh).expect("close");
        o.flush_on_close
    };
    assert!(!flush_on_close(&a, libc::O_RDONLY), "read-only, no lock");
    assert!(flush_on_close(&a, libc::O_WRONLY), "write-only");
    assert!(flush_on_close(&a, libc::O_RDWR), "read-write");
    assert!(flush_on_close(&a, libc::O_RDONLY | libc::O_TRUNC), "a truncation commits");
    a.setlk(ino, &whole(1, LockType::Read)).expect("lock on a");
    assert!(flush_on_close(&a, libc::O_RDONLY), "read-only on the client holding a lock");
    assert!(!flush_on_close(&b, libc::O_RDONLY), "read-only on another client");
    a.release_locks(ino, 1).expect("release");
    assert!(!flush_on_close(&a, libc::O_RDONLY), "the lock is gone");
    a.release(w).expect("close");
}
