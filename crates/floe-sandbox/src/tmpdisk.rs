//! Disk-backed `/tmp` for sandboxes: ext4 file systems in sparse image files on
//! loop devices, made ahead of time (a few per size) and thrown away after use.
//!
//! Why not a tmpfs: its pages are charged to the memory cgroup of the process that
//! writes them and cannot be reclaimed without swap, so a function could not fill
//! more of `/tmp` than its memory limit leaves (ADR 9). Page cache of a disk file
//! system is charged too, but clean pages are reclaimable and dirty ones are
//! written back under pressure, so `/tmp` has its own size, as on Lambda.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An ext4 file system on a loop device, ready to be mounted once. The device is
/// attached with autoclear and its image file already unlinked: once this handle is
/// dropped and the sandbox's mount is gone, the kernel detaches the device and frees
/// the space, even if floe dies.
#[derive(Debug)]
pub struct TmpDisk {
    pub device: PathBuf,
    _fd: std::os::fd::OwnedFd,
}

/// Makes and keeps [`TmpDisk`]s.
#[derive(Debug)]
pub struct TmpDisks {
    dir: PathBuf,
    ready: Mutex<HashMap<u64, Vec<TmpDisk>>>,
    /// How many to keep ready per size once a size has been asked for.
    keep: usize,
    next: AtomicU64,
    refilling: Mutex<std::collections::HashSet<u64>>,
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> std::io::Result<String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).stderr(Stdio::piped()).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!("{program}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl TmpDisks {
    /// Uses `dir` for the images; detaches and deletes what a previous process left
    /// there. `None` (with the reason) when this host cannot make them (no loop
    /// devices, no `mkfs.ext4`): sandboxes then get a tmpfs.
    pub fn new(dir: &Path, keep: usize) -> Result<Arc<TmpDisks>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Images are unlinked as soon as they are attached: what is left here was
        // being made when a floe process died.
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let disks = Arc::new(TmpDisks {
            dir: dir.to_path_buf(),
            ready: Mutex::new(HashMap::new()),
            keep,
            next: AtomicU64::new(0),
            refilling: Mutex::new(Default::default()),
        });
        // Probe: one small disk, made and thrown away.
        let probe = disks.make(1).map_err(|e| format!("loop-mounted /tmp unavailable: {e}"))?;
        disks.discard(probe);
        Ok(disks)
    }

    fn make(&self, size_mb: u64) -> std::io::Result<TmpDisk> {
        let image =
            self.dir.join(format!("tmp-{}-{}.img", std::process::id(), self.next.fetch_add(1, Ordering::Relaxed)));
        // ext4's own structures take a few percent; give the file system that much more.
        let bytes = (size_mb << 20) + (size_mb << 20) / 25 + (8 << 20);
        let made = (|| {
            let file = std::fs::File::create(&image)?;
            file.set_len(bytes)?;
            drop(file);
            run(
                "mkfs.ext4",
                &[
                    "-q".as_ref(),
                    "-F".as_ref(),
                    "-m".as_ref(),
                    "0".as_ref(),
                    "-O".as_ref(),
                    "^has_journal".as_ref(),
                    "-E".as_ref(),
                    "lazy_itable_init=1,nodiscard".as_ref(),
                    image.as_os_str(),
                ],
            )?;
            loop_attach(&image)
        })();
        let _ = std::fs::remove_file(&image);
        made
    }

    /// Whether disks are being made in the background.
    pub fn is_refilling(&self) -> bool {
        !self.refilling.lock().expect("tmp disks").is_empty()
    }

    /// A disk of `size_mb`, ready or made now; more of that size are made in the
    /// background.
    pub fn take(self: &Arc<Self>, size_mb: u64) -> std::io::Result<TmpDisk> {
        let ready = self.ready.lock().expect("tmp disks").get_mut(&size_mb).and_then(Vec::pop);
        self.refill(size_mb);
        match ready {
            Some(disk) => Ok(disk),
            None => self.make(size_mb),
        }
    }

    /// Lets the disk go: the kernel detaches it once no mount uses it.
    pub fn discard(&self, disk: TmpDisk) {
        drop(disk);
    }

    fn refill(self: &Arc<Self>, size_mb: u64) {
        if self.keep == 0 || !self.refilling.lock().expect("tmp disks").insert(size_mb) {
            return;
        }
        let disks = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("tmp-disks".into()).spawn(move || {
            crate::set_idle_priority(true);
            while let Some(disks) = disks.upgrade() {
                let have = disks.ready.lock().expect("tmp disks").get(&size_mb).map_or(0, Vec::len);
                if have >= disks.keep {
                    break;
                }
                match disks.make(size_mb) {
                    Ok(disk) => disks.ready.lock().expect("tmp disks").entry(size_mb).or_default().push(disk),
                    Err(e) => {
                        tracing::warn!("cannot make a /tmp disk: {e}");
                        break;
                    }
                }
            }
            if let Some(disks) = disks.upgrade() {
                disks.refilling.lock().expect("tmp disks").remove(&size_mb);
            }
        });
        if spawned.is_err() {
            self.refilling.lock().expect("tmp disks").remove(&size_mb);
        }
    }
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attaches `image` to a free loop device with autoclear; returns the device and
/// an open descriptor of it (closing it, with no mount left, detaches the device).
fn loop_attach(image: &Path) -> std::io::Result<TmpDisk> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let control = std::fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control")?;
    let backing = std::fs::OpenOptions::new().read(true).write(true).open(image)?;
    for _ in 0..16 {
        // SAFETY: an ioctl without an argument on an fd we own.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let device = PathBuf::from(format!("/dev/loop{n}"));
        let path = std::ffi::CString::new(device.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: open(2) on a NUL-terminated path; the fd is owned below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = backing.as_raw_fd() as u32;
        config.info.flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: LOOP_CONFIGURE reads a loop_config that lives on our stack.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), LOOP_CONFIGURE as _, &config as *const LoopConfig) };
        if rc == 0 {
            return Ok(TmpDisk { device, _fd: fd });
        }
        let e = std::io::Error::last_os_error();
        // Someone else took that device between the two calls: try another.
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(e);
        }
    }
    Err(std::io::Error::other("no free loop device"))
}
