//! Memory-mapped files through a real FUSE mount.

mod common;

use common::{assert_bytes_eq, pattern, Floe};
use std::fs::{self, OpenOptions};

#[test]
fn write_through_a_shared_mapping() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("mmap");
    let path = m.join("mapped");
    let len = 3 * 4096 + 100;
    let mut want = pattern(len, 1);
    fs::write(&path, &want).expect("write");
    {
        let f = OpenOptions::new().read(true).write(true).open(&path).expect("open read-write");
        // SAFETY: nothing else changes the file while it is mapped.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.expect("mmap shared writable");
        assert_bytes_eq(&map, &want, "mapping before writing");
        map[0..5].copy_from_slice(b"HELLO");
        map[4096 + 7..4096 + 12].copy_from_slice(b"world");
        map[len - 3..].copy_from_slice(b"END");
        map.flush().expect("msync");
        drop(map); // munmap
        drop(f); // close
    }
    want[0..5].copy_from_slice(b"HELLO");
    want[4096 + 7..4096 + 12].copy_from_slice(b"world");
    want[len - 3..].copy_from_slice(b"END");
    assert_eq!(fs::metadata(&path).expect("stat").len(), len as u64);
    assert_bytes_eq(&fs::read(&path).expect("read"), &want, "file after writing through the mapping");

    // A file grown with set_len and filled only through a mapping.
    let path = m.join("filled");
    let len = 2 << 20;
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    f.set_len(len as u64).expect("ftruncate");
    let data = pattern(len, 2);
    // SAFETY: nothing else changes the file while it is mapped.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.expect("mmap");
    map.copy_from_slice(&data);
    map.flush().expect("msync");
    drop(map);
    drop(f);
    assert_bytes_eq(&fs::read(&path).expect("read"), &data, "file filled through a mapping");

    // And it is all still there after a remount.
    let mut m = m;
    let dir = m.keep_dir().expect("temporary mount point");
    m.unmount();
    let m = floe.mount_at("mmap", dir.path(), &[]);
    assert_bytes_eq(&fs::read(m.join("mapped")).expect("read"), &want, "mapped file after remount");
    assert_bytes_eq(&fs::read(m.join("filled")).expect("read"), &data, "filled file after remount");
}

#[test]
fn read_a_file_through_a_mapping() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("mmap");
    for (name, len) in [("small", 1000usize), ("large", (5 << 20) + 123)] {
        let path = m.join(name);
        let data = pattern(len, 3);
        fs::write(&path, &data).expect("write");
        let f = fs::File::open(&path).expect("open");
        // SAFETY: nothing changes the file while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&f) }.expect("mmap read-only");
        assert_eq!(map.len(), len);
        assert_bytes_eq(&map, &data, &format!("{name} read through a mapping"));
    }
}
