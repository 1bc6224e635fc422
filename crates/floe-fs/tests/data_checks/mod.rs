//! The data path of `FileSystem` without FUSE, written once for every object store:
//! writes, reads, truncation, holes, renames, garbage collection, compaction, missing
//! objects and the disk cache. `data_path.rs` runs them on a local object directory,
//! `s3.rs` on an S3 bucket, each through [`data_path_checks!`].

// Each test file uses a different part of it.
#![allow(dead_code)]

use crate::common::{count_files, Env};
use floe_fs::{Caller, FileSystem, FsConfig, InodeId, RenameFlags, SetAttr};
use rand::{Rng, RngCore, SeedableRng};
use std::time::Duration;

/// One `#[test]` per check below, each on the `Env` that `$env` (an `Option<Env>`
/// expression, evaluated per test; `None` skips) gives.
macro_rules! data_path_checks {
    ($env:expr) => {
        data_path_checks!(@each $env;
            random_writes_match_a_model_across_commits_and_remounts,
            sparse_file_over_ten_gib_reads_zeros_in_holes,
            truncate_down_then_up_reads_zeros_past_the_cut,
            files_read_back_whole_from_another_client_after_overwrite_and_rename,
            deleted_files_objects_are_collected,
            deletions_are_collected_in_the_background,
            unlinked_open_file_stays_readable_until_released,
            compaction_keeps_contents_and_frees_old_slices,
            append_handles_write_at_the_end,
            a_missing_object_is_an_io_error_not_a_crash,
            open_with_o_trunc_cuts_at_the_next_commit_and_reads_as_cut_before,
            the_disk_cache_serves_repeated_reads,
            a_read_beside_a_commit_sees_every_write_before_it,
            a_stat_beside_a_commit_sees_every_write_before_it,
        );
    };
    (@each $env:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if let Some(env) = $env {
                    data_checks::$check(&env);
                }
            }
        )*
    };
}

/// Small sizes so that few bytes cross every boundary: blocks, inline limit, buffer.
/// Small sizes so that few bytes cross every boundary: blocks, inline limit, buffer.
pub fn small_config() -> FsConfig {
    FsConfig {
        block_size: 64 << 10,
        inline_max: 1 << 10,
        write_buffer: 256 << 10,
        compact_threshold: 8,
        gc_interval: Duration::from_secs(3600),
        ..FsConfig::default()
    }
}

pub fn root() -> Caller {
    Caller::root()
}

pub fn create(fs: &FileSystem, name: &str) -> (u64, InodeId) {
    let (fh, attr) = fs.create(&root(), InodeId::ROOT, name.as_bytes(), 0o644, 0o022, libc::O_RDWR).expect("create");
    (fh, attr.ino)
}

pub fn read_all(fs: &FileSystem, fh: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < len {
        let n = ((len - off) as u32).min(1 << 20);
        let part = fs.read(fh, off, n).expect("read");
        if part.is_empty() {
            break;
        }
        off += part.len() as u64;
        out.extend_from_slice(&part);
    }
    out
}

pub fn random_writes_match_a_model_across_commits_and_remounts(env: &Env) {
    let seed: u64 = std::env::var("FLOE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    eprintln!("seed {seed} (replay with FLOE_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model: Vec<u8> = Vec::new();
    {
        let fs = env.mount(small_config());
        let (fh, ino) = create(&fs, "f");
        let fh2 = fs.open(&root(), ino, libc::O_RDWR).expect("second handle").fh;
        for step in 0..400 {
            let handle = if rng.random_bool(0.5) { fh } else { fh2 };
            match rng.random_range(0..10) {
                0..=5 => {
                    let off = rng.random_range(0..(model.len() as u64 + 300_000));
                    let len = rng.random_range(0..150_000usize);
                    let mut data = vec![0u8; len];
                    rng.fill_bytes(&mut data);
                    fs.write(handle, off, &data).expect("write");
                    let end = off as usize + len;
                    if len > 0 && model.len() < end {
                        model.resize(end, 0);
                    }
                    model[off as usize..off as usize + len].copy_from_slice(&data);
                }
                6 => fs.flush(handle).expect("flush"),
                7 => {
                    let size = rng.random_range(0..(model.len() as u64 + 100_000));
                    fs.setattr(&root(), ino, &SetAttr { size: Some(size), via_handle: true, ..SetAttr::default() })
                        .expect("truncate");
                    model.resize(size as usize, 0);
                }
                _ => {
                    let off = rng.random_range(0..(model.len() as u64 + 10));
                    let len = rng.random_range(0..200_000u32);
                    let got = fs.read(handle, off, len).expect("read");
                    let lo = (off as usize).min(model.len());
                    let hi = (off as usize + len as usize).min(model.len());
                    assert_eq!(got.len(), hi - lo, "read length at step {step} (seed {seed})");
                    assert!(got == model[lo..hi], "read contents at step {step} (seed {seed})");
                }
            }
            assert_eq!(fs.getattr(ino).expect("getattr").size, model.len() as u64, "size at step {step}");
        }
        fs.release(fh).expect("release");
        fs.release(fh2).expect("release");
        fs.close().expect("close");
    }
    let fs = env.mount(small_config());
    let attr = fs.lookup(&root(), InodeId::ROOT, b"f").expect("lookup after remount");
    assert_eq!(attr.size, model.len() as u64);
    let fh = fs.open(&root(), attr.ino, libc::O_RDONLY).expect("open").fh;
    assert!(read_all(&fs, fh, attr.size) == model, "contents after remount (seed {seed})");
    fs.release(fh).expect("release");
    let report = fs.fsck(false).expect("fsck");
    assert!(report.missing_objects.is_empty() && report.orphan_objects.is_empty(), "{report:?}");
}

pub fn sparse_file_over_ten_gib_reads_zeros_in_holes(env: &Env) {
    let fs = env.mount(FsConfig::default());
    let (fh, ino) = create(&fs, "sparse");
    let far = (10u64 << 30) + 12345;
    fs.write(fh, 0, b"head").expect("write head");
    fs.write(fh, far, b"tail").expect("write tail");
    fs.flush(fh).expect("flush");
    assert_eq!(fs.getattr(ino).expect("getattr").size, far + 4);
    assert_eq!(fs.read(fh, 0, 4).expect("read"), b"head");
    assert_eq!(fs.read(fh, far - 2, 10).expect("read"), b"\0\0tail");
    assert!(fs.read(fh, 5 << 30, 1 << 20).expect("read hole").iter().all(|b| *b == 0));
    fs.release(fh).expect("release");
}

pub fn truncate_down_then_up_reads_zeros_past_the_cut(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "t");
    fs.write(fh, 0, &vec![7u8; 300_000]).expect("write");
    fs.flush(fh).expect("flush");
    for (size, via_handle) in [(100_000u64, true), (250_000, false)] {
        fs.setattr(&root(), ino, &SetAttr { size: Some(size), via_handle, ..SetAttr::default() }).expect("truncate");
    }
    let data = read_all(&fs, fh, 250_000);
    assert_eq!(data.len(), 250_000);
    assert!(data[..100_000].iter().all(|b| *b == 7));
    assert!(data[100_000..].iter().all(|b| *b == 0));
    fs.release(fh).expect("release");
}

/// Small (inline) and multi-block files written by one client read back whole by
/// another with no memory cache, so from the store: after an overwrite of part of
/// them and after a rename.
pub fn files_read_back_whole_from_another_client_after_overwrite_and_rename(env: &Env) {
    let writer = env.mount(small_config());
    let reader = env.mount(FsConfig { memory_cache: 0, ..small_config() });
    let mut small = b"{\"small\": true}".to_vec();
    let mut big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (name, data) in [("small", &small), ("big", &big)] {
        let (fh, _) = create(&writer, name);
        writer.write(fh, 0, data).expect("write");
        writer.release(fh).expect("release");
    }
    let check = |name: &str, want: &[u8], when: &str| {
        let attr = reader.lookup(&root(), InodeId::ROOT, name.as_bytes()).expect("lookup");
        let fh = reader.open(&root(), attr.ino, libc::O_RDONLY).expect("open").fh;
        assert!(read_all(&reader, fh, attr.size) == want, "{name} {when}");
        reader.release(fh).expect("release");
    };
    check("small", &small, "as written");
    check("big", &big, "as written");
    // Overwrite across a block boundary and past the end.
    let ino = writer.lookup(&root(), InodeId::ROOT, b"big").expect("lookup").ino;
    let fh = writer.open(&root(), ino, libc::O_RDWR).expect("open").fh;
    let patch = vec![0xAB; 100_000];
    writer.write(fh, (64 << 10) - 50_000, &patch).expect("overwrite");
    writer.write(fh, 999_990, b"past the end").expect("extend");
    writer.release(fh).expect("release");
    big[(64 << 10) - 50_000..(64 << 10) + 50_000].copy_from_slice(&patch);
    big.truncate(999_990);
    big.extend_from_slice(b"past the end");
    let ino = writer.lookup(&root(), InodeId::ROOT, b"small").expect("lookup").ino;
    let fh = writer.open(&root(), ino, libc::O_WRONLY).expect("open").fh;
    writer.write(fh, 2, b"SMALL").expect("overwrite");
    writer.release(fh).expect("release");
    small[2..7].copy_from_slice(b"SMALL");
    check("small", &small, "overwritten");
    check("big", &big, "overwritten");
    writer.mkdir(&root(), InodeId::ROOT, b"d", 0o755, 0o022).expect("mkdir");
    let d = writer.lookup(&root(), InodeId::ROOT, b"d").expect("lookup").ino;
    writer.rename(&root(), InodeId::ROOT, b"big", d, b"moved", RenameFlags::default()).expect("rename");
    let moved = reader.lookup(&root(), d, b"moved").expect("the renamed file");
    let fh = reader.open(&root(), moved.ino, libc::O_RDONLY).expect("open").fh;
    assert!(read_all(&reader, fh, moved.size) == big, "renamed file reads as before");
    reader.release(fh).expect("release");
    assert!(reader.lookup(&root(), InodeId::ROOT, b"big").is_err(), "the old name is gone");
    let report = reader.fsck(false).expect("fsck");
    assert!(report.missing_objects.is_empty(), "{report:?}");
}

pub fn deleted_files_objects_are_collected(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, _) = create(&fs, "big");
    fs.write(fh, 0, &vec![1u8; 1_000_000]).expect("write");
    fs.release(fh).expect("release");
    let stored = env.object_count();
    assert!(stored >= 1_000_000 / (64 << 10), "{stored} objects for 1 MB in 64 KiB blocks");
    // Small files are inline: no objects.
    let (fh, _) = create(&fs, "small");
    fs.write(fh, 0, b"{\"k\": 1}").expect("write");
    fs.release(fh).expect("release");
    assert_eq!(env.object_count(), stored);
    fs.unlink(&root(), InodeId::ROOT, b"big").expect("unlink");
    // The unlink wakes the background collector, which may get there first: collecting
    // here as well must be harmless, and between the two every object goes.
    wait_for_objects(env, 0, "unlinking and collecting", || {
        fs.collect_garbage().expect("gc");
    });
    let report = fs.fsck(false).expect("fsck");
    assert!(report.clean(), "{report:?}");
}

/// With the periodic round an hour away, only the wake-up that an unlink sends can
/// collect: every deletion's objects must go, the second one's after a round has run.
pub fn deletions_are_collected_in_the_background(env: &Env) {
    let fs = env.mount(small_config());
    for name in ["first", "second"] {
        let (fh, _) = create(&fs, name);
        fs.write(fh, 0, &vec![7u8; 300_000]).expect("write");
        fs.release(fh).expect("release");
    }
    let per_file = env.object_count() / 2;
    assert!(per_file >= 300_000 / (64 << 10), "{per_file} objects per file of 300 kB in 64 KiB blocks");
    for (name, left) in [("first", per_file), ("second", 0)] {
        fs.unlink(&root(), InodeId::ROOT, name.as_bytes()).expect("unlink");
        wait_for_objects(env, left, &format!("unlinking {name}"), || {});
        assert_eq!(env.object_count(), left, "after unlinking {name}");
    }
}

/// Waits up to 60 s for the store to hold at most `left` objects, running `between`
/// between looks.
fn wait_for_objects(env: &Env, left: usize, after: &str, mut between: impl FnMut()) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while env.object_count() > left {
        assert!(std::time::Instant::now() < deadline, "{} objects left 60 s after {after}", env.object_count());
        between();
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn unlinked_open_file_stays_readable_until_released(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "f");
    fs.write(fh, 0, &vec![3u8; 200_000]).expect("write");
    fs.flush(fh).expect("flush");
    fs.unlink(&root(), InodeId::ROOT, b"f").expect("unlink");
    assert_eq!(fs.read(fh, 199_990, 100).expect("read after unlink"), vec![3u8; 10]);
    fs.write(fh, 0, b"still writable").expect("write after unlink");
    fs.release(fh).expect("release");
    assert_eq!(fs.getattr(ino).map_err(|e| e.errno()).expect_err("purged"), libc::ENOENT);
    fs.collect_garbage().expect("gc");
    assert_eq!(env.object_count(), 0);
}

pub fn compaction_keeps_contents_and_frees_old_slices(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "frag");
    let mut model = vec![0u8; 100_000];
    for i in 0..20u8 {
        let off = i as usize * 4_000;
        let data = vec![i + 1; 10_000];
        fs.write(fh, off as u64, &data).expect("write");
        fs.flush(fh).expect("flush each write: one slice each");
        model[off..off + 10_000].copy_from_slice(&data);
    }
    model.truncate(19 * 4_000 + 10_000);
    assert!(fs.meta().read_chunk(fs.info().id, ino, 0).expect("chunk").len() >= 20);
    assert_eq!(fs.compact().expect("compact"), 1);
    assert_eq!(fs.meta().read_chunk(fs.info().id, ino, 0).expect("chunk").len(), 1);
    assert!(read_all(&fs, fh, model.len() as u64) == model);
    fs.collect_garbage().expect("gc");
    let report = fs.fsck(false).expect("fsck");
    assert!(report.clean(), "{report:?}");
    fs.release(fh).expect("release");
}

pub fn append_handles_write_at_the_end(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "log");
    let a = fs.open(&root(), ino, libc::O_WRONLY | libc::O_APPEND).expect("open a").fh;
    let b = fs.open(&root(), ino, libc::O_WRONLY | libc::O_APPEND).expect("open b").fh;
    for i in 0..50 {
        fs.write(if i % 2 == 0 { a } else { b }, 0, format!("line {i:02}\n").as_bytes()).expect("append");
        if i % 7 == 0 {
            fs.flush(a).expect("flush");
        }
    }
    let expected: String = (0..50).map(|i| format!("line {i:02}\n")).collect();
    assert_eq!(read_all(&fs, fh, 10_000), expected.as_bytes());
    for h in [a, b, fh] {
        fs.release(h).expect("release");
    }
}

/// A read that starts after a write returned sees that write, even when another
/// thread commits it (fsync, close) while the read runs: the kernel caches what a read
/// returns (readahead runs beside fsync), so an older answer would stay.
pub fn a_read_beside_a_commit_sees_every_write_before_it(env: &Env) {
    // Reads of committed data come from the store (no memory cache), so that a commit
    // can start while one runs; the buffer holds a whole round's writes.
    let config = FsConfig { memory_cache: 0, write_buffer: 8 << 20, ..small_config() };
    let fs = env.mount(config);
    let (fh, _) = create(&fs, "f");
    let len = 1 << 20;
    for round in 1..=12u8 {
        fs.write(fh, 0, &vec![round; len]).expect("write");
        std::thread::scope(|scope| {
            let committer = scope.spawn(|| fs.flush(fh));
            let got = fs.read(fh, 0, len as u32).expect("read");
            let stale = got.iter().position(|b| *b != round);
            assert_eq!(stale, None, "round {round}: a read after the write returned older bytes");
            committer.join().expect("committer").expect("flush");
        });
    }
    fs.release(fh).expect("release");
}

/// The size a lookup or getattr reports counts every write made before it, while
/// another thread commits them (a close or release of another handle): attributes
/// read just before that commit, with the pending writes looked at just after it,
/// would show the size from before the writes.
pub fn a_stat_beside_a_commit_sees_every_write_before_it(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "f");
    for round in 1..=300u64 {
        fs.write(fh, (round - 1) * 100, &[7u8; 100]).expect("write");
        std::thread::scope(|scope| {
            let committer = scope.spawn(|| fs.flush(fh));
            for _ in 0..20 {
                let by_name = fs.lookup(&root(), InodeId::ROOT, b"f").expect("lookup").size;
                let by_ino = fs.getattr(ino).expect("getattr").size;
                assert_eq!((by_name, by_ino), (round * 100, round * 100), "round {round}: a stat lost writes");
            }
            committer.join().expect("committer").expect("flush");
        });
    }
    fs.release(fh).expect("release");
}

pub fn a_missing_object_is_an_io_error_not_a_crash(env: &Env) {
    let config = FsConfig { memory_cache: 0, ..small_config() };
    let fs = env.mount(config.clone());
    let (fh, ino) = create(&fs, "f");
    fs.write(fh, 0, &vec![9u8; 300_000]).expect("write");
    fs.release(fh).expect("release");
    fs.close().expect("close");
    env.lose_objects();
    let fs = env.mount(config);
    let fh = fs.open(&root(), ino, libc::O_RDONLY).expect("open").fh;
    let err = fs.read(fh, 0, 4096).expect_err("read of a lost block");
    assert_eq!(err.errno(), libc::EIO);
    assert!(fs.getattr(InodeId::ROOT).is_ok());
    assert!(!fs.fsck(false).expect("fsck").missing_objects.is_empty());
    fs.release(fh).expect("release");
}

pub fn open_with_o_trunc_cuts_at_the_next_commit_and_reads_as_cut_before(env: &Env) {
    let fs = env.mount(small_config());
    let (fh, ino) = create(&fs, "f");
    fs.write(fh, 0, &vec![1u8; 300_000]).expect("write");
    fs.release(fh).expect("release");
    let w = fs.open(&root(), ino, libc::O_RDWR | libc::O_TRUNC).expect("open O_TRUNC").fh;
    assert_eq!(fs.getattr(ino).expect("getattr").size, 0);
    assert!(fs.read(w, 0, 100).expect("read").is_empty());
    fs.write(w, 10, b"abc").expect("write past a hole");
    assert_eq!(fs.read(w, 0, 100).expect("read"), b"\0\0\0\0\0\0\0\0\0\0abc");
    fs.release(w).expect("release");
    assert_eq!(fs.getattr(ino).expect("getattr").size, 13);
    let r = fs.open(&root(), ino, libc::O_RDONLY).expect("open").fh;
    assert_eq!(fs.read(r, 0, 100).expect("read"), b"\0\0\0\0\0\0\0\0\0\0abc");
    fs.release(r).expect("release");
    // Opening with O_TRUNC and closing without writing still empties the file.
    let w = fs.open(&root(), ino, libc::O_WRONLY | libc::O_TRUNC).expect("open O_TRUNC").fh;
    fs.release(w).expect("release");
    assert_eq!(fs.getattr(ino).expect("getattr").size, 0);
    fs.collect_garbage().expect("gc");
    assert_eq!(env.object_count(), 0, "the truncated file's objects are collected");
}

pub fn the_disk_cache_serves_repeated_reads(env: &Env) {
    let cache = env.dir.path().join("cache");
    let config = FsConfig { memory_cache: 0, disk_cache: Some((cache.clone(), 64 << 20)), ..small_config() };
    let fs = env.mount(config.clone());
    let (fh, ino) = create(&fs, "f");
    fs.write(fh, 0, &vec![2u8; 500_000]).expect("write");
    fs.release(fh).expect("release");
    fs.close().expect("close");
    let fs = env.mount(config);
    let fh = fs.open(&root(), ino, libc::O_RDONLY).expect("open").fh;
    assert!(read_all(&fs, fh, 500_000) == vec![2u8; 500_000], "first read fills the cache");
    assert!(count_files(&cache, &|_| true) >= 500_000 / (64 << 10), "blocks are in the disk cache");
    env.lose_objects();
    assert!(read_all(&fs, fh, 500_000) == vec![2u8; 500_000], "the second read comes from the disk cache");
    fs.release(fh).expect("release");
}
