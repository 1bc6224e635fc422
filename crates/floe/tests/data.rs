//! File contents through a real FUSE mount: writes and reads of every size class,
//! overwrites, random writes against an in-memory model, appends, truncation, holes,
//! a sparse file past 10 GiB, and data surviving a remount.

mod common;

use common::{assert_bytes_eq, checksum, pattern, Floe};
use nix::fcntl::{fallocate, FallocateFlags};
use rand::{Rng, RngCore, SeedableRng};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const GIB: u64 = 1 << 30;

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).expect("open for reading");
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], offset + done as u64).expect("pread");
        assert!(n > 0, "unexpected end of file at {} (wanted {} bytes at {offset})", offset + done as u64, len);
        done += n;
    }
    buf
}

#[test]
fn write_and_read_back() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("hello.txt");
    std::fs::write(&path, b"hello, floe\n").expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), b"hello, floe\n");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 12);

    // Read back through the handle that wrote, before closing it.
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(m.join("rw")).expect("open");
    f.write_all(b"0123456789").expect("write");
    f.seek(SeekFrom::Start(3)).expect("seek");
    let mut buf = [0u8; 4];
    f.read_exact(&mut buf).expect("read before close");
    assert_eq!(&buf, b"3456");
    assert_eq!(f.metadata().expect("fstat").len(), 10);
    drop(f);
    assert_eq!(std::fs::read(m.join("rw")).expect("read after close"), b"0123456789");

    // Rewriting a large file with a short one (open with O_TRUNC) leaves only the new bytes.
    std::fs::write(m.join("rw"), pattern(5 * MIB, 1)).expect("write 5 MiB");
    std::fs::write(m.join("rw"), b"abc").expect("rewrite");
    assert_eq!(std::fs::read(m.join("rw")).expect("read"), b"abc");
    assert_eq!(std::fs::metadata(m.join("rw")).expect("stat").len(), 3);
}

#[test]
fn overwrite_in_the_middle() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    // One file stored inline in the metadata, one stored as objects.
    for (name, len) in [("small", 100usize), ("large", 300 * KIB), ("blocks", 9 * MIB)] {
        let path = m.join(name);
        let mut model = pattern(len, 1);
        std::fs::write(&path, &model).expect("write");
        let patch = pattern(len / 3, 2);
        let at = len / 3;
        let f = OpenOptions::new().write(true).open(&path).expect("open for writing");
        f.write_all_at(&patch, at as u64).expect("pwrite");
        // Seen through the same mount before close, then after.
        model[at..at + patch.len()].copy_from_slice(&patch);
        assert_bytes_eq(&read_at(&path, 0, len), &model, &format!("{name} before close"));
        drop(f);
        assert_bytes_eq(&std::fs::read(&path).expect("read"), &model, &format!("{name} after close"));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), len as u64);
    }
}

#[test]
fn random_pwrites_match_a_model() {
    require_fuse!();
    let seed: u64 = match std::env::var("FLOE_TEST_SEED") {
        Ok(s) => s.parse().expect("FLOE_TEST_SEED is a number"),
        Err(_) => rand::rng().random(),
    };
    eprintln!("random_pwrites_match_a_model: seed {seed} (rerun with FLOE_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("random");
    let max = 12 * MIB; // Crosses block (4 MiB) boundaries, stays inside one chunk.
    let mut model: Vec<u8> = Vec::new();
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    for op in 0..400 {
        match rng.random_range(0..100) {
            0..=74 => {
                let len = if rng.random_bool(0.5) { rng.random_range(1..=64) } else { rng.random_range(1..=600 * KIB) };
                let offset = rng.random_range(0..max - len);
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                f.write_all_at(&data, offset as u64).unwrap_or_else(|e| panic!("seed {seed} op {op}: pwrite: {e}"));
                if model.len() < offset + len {
                    model.resize(offset + len, 0);
                }
                model[offset..offset + len].copy_from_slice(&data);
            }
            75..=89 => {
                // Read a random range back, pending writes included.
                let offset = rng.random_range(0..max);
                let len = rng.random_range(1..=MIB);
                let mut buf = vec![0u8; len];
                let mut got = 0;
                while got < len {
                    let n = f.read_at(&mut buf[got..], (offset + got) as u64).expect("pread");
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                let want = model.get(offset.min(model.len())..(offset + len).min(model.len())).unwrap_or(&[]);
                assert_bytes_eq(&buf[..got], want, &format!("seed {seed} op {op}: pread of {len} at {offset}"));
            }
            90..=94 => f.sync_all().expect("fsync"),
            _ => {
                drop(f);
                f = OpenOptions::new().read(true).write(true).open(&path).expect("reopen");
            }
        }
        let size = f.metadata().expect("fstat").len();
        assert_eq!(size, model.len() as u64, "seed {seed} op {op}: file size");
    }
    drop(f);
    assert_bytes_eq(&std::fs::read(&path).expect("read"), &model, &format!("seed {seed}: whole file"));
}

#[test]
fn appends_from_two_descriptors_interleave() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("log");
    std::fs::write(&path, b"start\n").expect("create");
    let mut a = OpenOptions::new().append(true).open(&path).expect("open a");
    let mut b = OpenOptions::new().append(true).open(&path).expect("open b");
    let mut want = b"start\n".to_vec();
    for i in 0..200 {
        // Records of varying sizes, some larger than the inline limit.
        let size = if i % 50 == 49 { 40 * KIB } else { 10 + i % 7 };
        let (fd, tag) = if i % 3 == 0 { (&mut b, b'b') } else { (&mut a, b'a') };
        let mut rec = vec![tag; size];
        rec.extend_from_slice(format!(" {i}\n").as_bytes());
        fd.write_all(&rec).expect("append");
        want.extend_from_slice(&rec);
    }
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), want.len() as u64);
    drop(a);
    drop(b);
    assert_bytes_eq(&std::fs::read(&path).expect("read"), &want, "appended file");
}

#[test]
fn files_of_boundary_sizes_round_trip() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let sizes =
        [0, 1, 4095, 4096, 16 * KIB - 1, 16 * KIB, 16 * KIB + 1, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 64 * MIB + 1];
    for (i, &len) in sizes.iter().enumerate() {
        let path = m.join(format!("size-{len}"));
        let data = pattern(len, 100 + i as u64);
        std::fs::write(&path, &data).expect("write");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), len as u64, "size of a {len}-byte file");
        assert_bytes_eq(&std::fs::read(&path).expect("read"), &data, &format!("{len}-byte file"));
    }
    // And once more from a fresh mount, where no cache of this client can serve them.
    let mut keep = m;
    let dir = keep.keep_dir().expect("temporary mount point");
    keep.unmount();
    let m = floe.mount_at("data", dir.path(), &["--cache-size", "0"]);
    for (i, &len) in sizes.iter().enumerate() {
        let data = pattern(len, 100 + i as u64);
        let got = std::fs::read(m.join(format!("size-{len}"))).expect("read after remount");
        assert_bytes_eq(&got, &data, &format!("{len}-byte file after remount"));
    }
}

#[test]
fn truncate_down_and_up() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    for (name, len, cut, grow) in [
        ("inline", 10 * KIB, 3000, 12 * KIB),
        ("objects", 5 * MIB, 1_234_567, 9 * MIB),
        ("to-zero", 200 * KIB, 0, 50),
        // Across the 64 MiB chunks of the chunk map.
        ("second-chunk", 70 * MIB, 64 * MIB + 5, 72 * MIB),
        ("chunk-edge", 66 * MIB, 64 * MIB, 65 * MIB),
        ("first-chunk", 66 * MIB, 10, 65 * MIB),
    ] {
        let path = m.join(name);
        let data = pattern(len, 7);
        std::fs::write(&path, &data).expect("write");
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(cut as u64).expect("truncate down");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), cut as u64);
        assert_bytes_eq(&std::fs::read(&path).expect("read"), &data[..cut], &format!("{name} cut to {cut}"));
        f.set_len(grow as u64).expect("truncate up");
        drop(f);
        let mut want = data[..cut].to_vec();
        want.resize(grow, 0);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), grow as u64);
        assert_bytes_eq(&std::fs::read(&path).expect("read"), &want, &format!("{name} grown to {grow}"));
    }

    // Truncating by path (not through a handle), and a cut while writes are still buffered.
    let path = m.join("pending");
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    f.write_all(&pattern(3 * MIB, 9)).expect("write");
    f.set_len(MIB as u64 + 5).expect("ftruncate with buffered writes");
    f.write_all_at(b"tail", 2 * MIB as u64).expect("write past the cut");
    drop(f);
    let mut want = pattern(3 * MIB, 9);
    want.truncate(MIB + 5);
    want.resize(2 * MIB, 0);
    want.extend_from_slice(b"tail");
    assert_bytes_eq(&std::fs::read(&path).expect("read"), &want, "truncated while buffered");
    nix::unistd::truncate(&path, 10).expect("truncate(2) by path");
    assert_eq!(std::fs::read(&path).expect("read"), &want[..10]);
}

#[test]
fn sparse_holes_read_as_zeros() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("sparse");
    let writes: [(u64, &[u8]); 4] = [
        (0, b"head"),
        (5 * MIB as u64 + 7, b"middle"),
        (70 * MIB as u64, b"next chunk"),
        (70 * MIB as u64 + 4 * MIB as u64 + 1, b"end"),
    ];
    let f = OpenOptions::new().write(true).create(true).truncate(true).open(&path).expect("create");
    for (at, bytes) in writes {
        f.write_all_at(bytes, at).expect("pwrite");
    }
    drop(f);
    let size = 74 * MIB + 1 + 3;
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), size as u64);
    let mut want = vec![0u8; size];
    for (at, bytes) in writes {
        want[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    }
    assert_bytes_eq(&std::fs::read(&path).expect("read"), &want, "sparse file");
    // A hole read on its own.
    assert!(read_at(&path, 10 * MIB as u64, MIB).iter().all(|b| *b == 0));
}

/// lseek(2) with SEEK_DATA or SEEK_HOLE on `f`: the offset, or the errno.
fn seek(f: &File, offset: u64, whence: libc::c_int) -> Result<u64, i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor `f` keeps open.
    let at = unsafe { libc::lseek(f.as_raw_fd(), offset as libc::off_t, whence) };
    if at < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(at as u64)
    }
}

#[test]
fn seek_data_and_seek_hole_find_the_holes() {
    require_fuse!();
    use libc::{ENXIO, SEEK_DATA, SEEK_HOLE};
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("sparse");
    let (mid, next, last) = (5 * MIB as u64 + 7, 70 * MIB as u64, 74 * MIB as u64 + 1);
    let f = OpenOptions::new().write(true).create(true).truncate(true).open(&path).expect("create");
    for (at, bytes) in [(0, &b"head"[..]), (mid, b"middle"), (next, b"next chunk"), (last, b"end")] {
        f.write_all_at(bytes, at).expect("pwrite");
    }
    drop(f);
    let size = last + 3;
    let f = File::open(&path).expect("open");
    // Data and holes alternate, within a chunk and across the 64 MiB chunk boundary.
    assert_eq!(seek(&f, 0, SEEK_DATA), Ok(0));
    assert_eq!(seek(&f, 2, SEEK_DATA), Ok(2), "an offset in data is data");
    assert_eq!(seek(&f, 2, SEEK_HOLE), Ok(4));
    assert_eq!(seek(&f, 4, SEEK_HOLE), Ok(4), "an offset in a hole is a hole");
    assert_eq!(seek(&f, 4, SEEK_DATA), Ok(mid));
    assert_eq!(seek(&f, mid, SEEK_HOLE), Ok(mid + 6));
    assert_eq!(seek(&f, mid + 6, SEEK_DATA), Ok(next));
    assert_eq!(seek(&f, next, SEEK_HOLE), Ok(next + 10));
    assert_eq!(seek(&f, next + 10, SEEK_DATA), Ok(last));
    assert_eq!(seek(&f, last, SEEK_HOLE), Ok(size), "the end of the file is a hole");
    assert_eq!(seek(&f, size, SEEK_DATA), Err(ENXIO));
    assert_eq!(seek(&f, size, SEEK_HOLE), Err(ENXIO));
    assert_eq!(seek(&f, size + MIB as u64, SEEK_HOLE), Err(ENXIO));

    // While the file is open for writing, all of it is data: a shared mapping's dirty
    // pages have not reached floe, and a copy that skipped holes would lose them.
    let w = OpenOptions::new().read(true).write(true).open(&path).expect("open for writing");
    let at = 20 * MIB as u64;
    // SAFETY: a shared mapping of the open descriptor, unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            {
                use std::os::fd::AsRawFd;
                w.as_raw_fd()
            },
            at as libc::off_t,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "mmap");
    // SAFETY: the mapping is 4096 bytes long.
    unsafe { std::ptr::write_bytes(map as *mut u8, 0, 4096) };
    assert_eq!(seek(&f, mid + 6, SEEK_DATA), Ok(mid + 6), "a hole under a dirty mapping");
    assert_eq!(seek(&f, 4, SEEK_HOLE), Ok(size));
    // SAFETY: unmapping what was mapped above.
    assert_eq!(unsafe { libc::munmap(map, 4096) }, 0, "munmap");

    // A punched hole is a hole; zeros written are data.
    fallocate(&w, FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE, mid as i64, 6)
        .expect("punch a hole");
    drop(w);
    assert_eq!(seek(&f, 4, SEEK_DATA), Ok(at));
    assert_eq!(seek(&f, at, SEEK_HOLE), Ok(at + 4096));

    // Bytes cut by truncating down stay a hole when the file grows again.
    drop(f);
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(3).expect("truncate down");
    f.set_len(MIB as u64).expect("truncate up");
    drop(f);
    let f = File::open(&path).expect("open");
    assert_eq!(seek(&f, 0, SEEK_HOLE), Ok(3));
    assert_eq!(seek(&f, 3, SEEK_DATA), Err(ENXIO), "only a hole follows");

    // Across 160 empty chunks of a file past 10 GiB.
    let huge = OpenOptions::new().write(true).create(true).truncate(true).open(m.join("huge")).expect("create");
    huge.write_all_at(b"far away", 10 * GIB + 123).expect("pwrite far");
    huge.write_all_at(b"near", 0).expect("pwrite near");
    drop(huge);
    let huge = File::open(m.join("huge")).expect("open");
    assert_eq!(seek(&huge, 4, SEEK_DATA), Ok(10 * GIB + 123));
    assert_eq!(seek(&huge, 10 * GIB + 123, SEEK_HOLE), Ok(10 * GIB + 131));
}

/// How many pages of the first `len` bytes of the file `f` has open are in the page
/// cache (mincore on a mapping, which faults nothing in).
fn resident_pages(f: &File, len: usize) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: a read-only shared mapping of an open descriptor, unmapped below.
    let map = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0) };
    assert_ne!(map, libc::MAP_FAILED, "mmap");
    let mut vec = vec![0u8; len.div_ceil(4096)];
    // SAFETY: `vec` has a byte for each page of the mapping.
    assert_eq!(unsafe { libc::mincore(map, len, vec.as_mut_ptr()) }, 0, "mincore");
    // SAFETY: unmapping what was mapped above.
    assert_eq!(unsafe { libc::munmap(map, len) }, 0, "munmap");
    vec.iter().filter(|b| *b & 1 == 1).count()
}

/// A write-only handle's writes go around the kernel's page cache (ADR 17), where a
/// read-write handle's fill it; readers open before or after see the new bytes.
#[test]
fn write_only_handles_bypass_the_page_cache() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("big");
    std::fs::write(&path, b"").expect("create");
    let reader = File::open(&path).expect("open for reading");
    let len = 4 * MIB;

    let rw = OpenOptions::new().read(true).write(true).open(&path).expect("open read-write");
    rw.write_all_at(&pattern(len, 1), 0).expect("write through a read-write handle");
    drop(rw);
    assert_eq!(resident_pages(&reader, len), len / 4096, "a read-write handle's writes fill the cache");

    std::fs::write(&path, pattern(len, 2)).expect("write through a write-only handle");
    assert_eq!(resident_pages(&reader, len), 0, "a write-only handle's writes are not cached");
    assert_bytes_eq(&read_at(&path, 0, len), &pattern(len, 2), "a new reader");
    let mut seen = vec![0u8; len];
    reader.read_exact_at(&mut seen, 0).expect("read through the reader open before");
    assert_bytes_eq(&seen, &pattern(len, 2), "the reader open before the write");
}

#[test]
fn sparse_file_larger_than_10_gib() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("data");
    let path = m.join("huge");
    let far = 10 * GIB + 123;
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    f.write_all_at(b"far away", far).expect("pwrite at 10 GiB + 123");
    f.write_all_at(b"near", 0).expect("pwrite at 0");
    f.sync_all().expect("fsync");
    drop(f);
    let md = std::fs::metadata(&path).expect("stat");
    assert_eq!(md.len(), far + 8);
    assert!(read_at(&path, 5 * GIB, MIB).iter().all(|b| *b == 0), "bytes at 5 GiB are zeros");
    assert_eq!(read_at(&path, 0, 8), b"near\0\0\0\0");
    assert_eq!(read_at(&path, far - 4, 12), b"\0\0\0\0far away");
    // Reading past the end returns nothing.
    let f = File::open(&path).expect("open");
    let mut buf = [0u8; 16];
    assert_eq!(f.read_at(&mut buf, far + 8).expect("pread at EOF"), 0);
    assert_eq!(f.read_at(&mut buf, far + 4).expect("pread across EOF"), 4);
    assert_eq!(&buf[..4], b"away");
}

#[test]
fn data_survives_unmount_and_remount() {
    require_fuse!();
    let floe = Floe::new();
    let mut m = floe.create_and_mount("data");
    let files: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("small".into(), pattern(1000, 1)),
        ("one-mib".into(), pattern(MIB, 2)),
        ("nine-mib".into(), pattern(9 * MIB + 17, 3)),
    ];
    std::fs::create_dir(m.join("dir")).expect("mkdir");
    for (name, data) in &files {
        std::fs::write(m.join("dir").join(name), data).expect("write");
    }
    let sparse = m.join("dir/sparse");
    let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&sparse).expect("create");
    f.write_all_at(b"x", 3 * GIB).expect("pwrite");
    drop(f);
    let sums: Vec<u64> = files.iter().map(|(_, d)| checksum(d)).collect();
    let dir = m.keep_dir().expect("temporary mount point");
    m.unmount();

    let m = floe.mount_at("data", dir.path(), &[]);
    for ((name, data), sum) in files.iter().zip(&sums) {
        let got = std::fs::read(m.join("dir").join(name)).expect("read after remount");
        assert_eq!(got.len(), data.len(), "{name}: size after remount");
        assert_eq!(checksum(&got), *sum, "{name}: checksum after remount");
    }
    let md = std::fs::metadata(&sparse).expect("stat");
    assert_eq!(md.len(), 3 * GIB + 1);
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777, 0o640);
    assert_eq!(read_at(&sparse, 3 * GIB - 3, 4), b"\0\0\0x");
    let mut names: Vec<String> = std::fs::read_dir(m.join("dir"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    names.sort();
    assert_eq!(names, ["empty", "nine-mib", "one-mib", "small", "sparse"]);
}

#[test]
fn read_only_mount_refuses_changes() {
    require_fuse!();
    let floe = Floe::new();
    let mut m = floe.create_and_mount("data");
    std::fs::write(m.join("f"), b"frozen").expect("write");
    std::fs::create_dir(m.join("d")).expect("mkdir");
    let dir = m.keep_dir().expect("temporary mount point");
    m.unmount();
    let m = floe.mount_at("data", dir.path(), &["--read-only"]);
    assert_eq!(std::fs::read(m.join("f")).expect("read"), b"frozen");
    let erofs = |r: std::io::Result<()>, what: &str| assert_eq!(common::errno_of(r), libc::EROFS, "{what}");
    erofs(std::fs::write(m.join("f"), b"x"), "write");
    erofs(std::fs::write(m.join("new"), b"x"), "create");
    erofs(std::fs::create_dir(m.join("d2")), "mkdir");
    erofs(std::fs::remove_file(m.join("f")), "unlink");
    erofs(std::fs::remove_dir(m.join("d")), "rmdir");
    erofs(std::fs::rename(m.join("f"), m.join("g")), "rename");
    erofs(std::fs::set_permissions(m.join("f"), std::os::unix::fs::PermissionsExt::from_mode(0o600)), "chmod");
    erofs(OpenOptions::new().write(true).open(m.join("f")).map(drop), "open for writing");
    assert_eq!(std::fs::read(m.join("f")).expect("read"), b"frozen");
}

#[test]
fn two_mounts_see_each_others_writes() {
    require_fuse!();
    // Two clients of one file system, with no kernel caching of names and attributes
    // (--ttl 0): what one closes, the other opens.
    let floe = Floe::new();
    floe.create("shared");
    let a = floe.mount_with("shared", &["--ttl", "0"]);
    let b = floe.mount_with("shared", &["--ttl", "0"]);
    std::fs::write(a.join("from-a"), pattern(5 * MIB, 1)).expect("write on a");
    assert_bytes_eq(&std::fs::read(b.join("from-a")).expect("read on b"), &pattern(5 * MIB, 1), "a's file on b");
    std::fs::write(b.join("from-a"), b"replaced by b").expect("rewrite on b");
    assert_eq!(std::fs::read(a.join("from-a")).expect("read on a"), b"replaced by b");
    std::fs::create_dir(b.join("dir")).expect("mkdir on b");
    std::fs::write(a.join("dir/f"), b"in b's directory").expect("write on a");
    assert_eq!(std::fs::read(b.join("dir/f")).expect("read on b"), b"in b's directory");
    std::fs::remove_file(b.join("dir/f")).expect("unlink on b");
    assert_eq!(common::errno_of(std::fs::metadata(a.join("dir/f"))), libc::ENOENT);
    // Appends from both clients all land.
    for i in 0..10 {
        let m = if i % 2 == 0 { &a } else { &b };
        let mut f = OpenOptions::new().append(true).create(true).open(m.join("log")).expect("open");
        f.write_all(format!("{i}\n").as_bytes()).expect("append");
    }
    let want: String = (0..10).map(|i| format!("{i}\n")).collect();
    assert_eq!(std::fs::read_to_string(a.join("log")).expect("read"), want);
    assert_eq!(std::fs::read_to_string(b.join("log")).expect("read"), want);
}
