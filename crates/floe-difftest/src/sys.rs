//! Thin wrappers over the system calls the tester makes. Each returns its result or the
//! errno as a value: errors are what the tester compares, never something to unwrap.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An errno value.
pub type Errno = i32;
/// The result of one system call.
pub type SysResult<T> = Result<T, Errno>;

fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(ret: libc::c_int) -> SysResult<()> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn check_long(ret: libc::c_long) -> SysResult<()> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn check_size(ret: isize) -> SysResult<usize> {
    usize::try_from(ret).map_err(|_| errno())
}

fn cpath(p: &Path) -> SysResult<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

fn cbytes(b: &[u8]) -> SysResult<CString> {
    CString::new(b).map_err(|_| libc::EINVAL)
}

fn off(o: u64) -> SysResult<libc::off_t> {
    libc::off_t::try_from(o).map_err(|_| libc::EFBIG)
}

/// open(2); `O_CLOEXEC` is always added.
pub fn open(p: &Path, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by open(2), so it is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// close(2), reporting its error (a FUSE file system reports flush errors here).
pub fn close(fd: OwnedFd) -> SysResult<()> {
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` came from an OwnedFd we gave up, so nobody else closes it.
    check(unsafe { libc::close(raw) })
}

/// pwrite(2).
pub fn pwrite(fd: BorrowedFd<'_>, data: &[u8], at: u64) -> SysResult<usize> {
    let at = off(at)?;
    // SAFETY: the pointer and length describe the live slice `data`.
    check_size(unsafe { libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), at) })
}

/// write(2).
pub fn write(fd: BorrowedFd<'_>, data: &[u8]) -> SysResult<usize> {
    // SAFETY: the pointer and length describe the live slice `data`.
    check_size(unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) })
}

/// pread(2) of up to `len` bytes.
pub fn pread(fd: BorrowedFd<'_>, len: usize, at: u64) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = pread_into(fd, &mut buf, at)?;
    buf.truncate(n);
    Ok(buf)
}

/// pread(2) into `buf`, returning how many bytes were read.
pub fn pread_into(fd: BorrowedFd<'_>, buf: &mut [u8], at: u64) -> SysResult<usize> {
    let at = off(at)?;
    // SAFETY: the pointer and length describe the live, writable buffer `buf`.
    check_size(unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), at) })
}

/// read(2) of up to `len` bytes.
pub fn read(fd: BorrowedFd<'_>, len: usize) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // SAFETY: the pointer and length describe the live, writable buffer `buf`.
    let n = check_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len) })?;
    buf.truncate(n);
    Ok(buf)
}

/// lseek(2).
pub fn lseek(fd: BorrowedFd<'_>, at: u64, whence: i32) -> SysResult<u64> {
    let at = off(at)?;
    // SAFETY: lseek takes no pointers.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), at, whence) };
    u64::try_from(r).map_err(|_| errno())
}

/// ftruncate(2).
pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> SysResult<()> {
    let len = off(len)?;
    // SAFETY: ftruncate takes no pointers.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })
}

/// truncate(2).
pub fn truncate(p: &Path, len: u64) -> SysResult<()> {
    let (c, len) = (cpath(p)?, off(len)?);
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::truncate(c.as_ptr(), len) })
}

/// fsync(2).
pub fn fsync(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: fsync takes no pointers.
    check(unsafe { libc::fsync(fd.as_raw_fd()) })
}

/// fallocate(2).
pub fn fallocate(fd: BorrowedFd<'_>, mode: i32, at: u64, len: u64) -> SysResult<()> {
    let (at, len) = (off(at)?, off(len)?);
    // SAFETY: fallocate takes no pointers.
    check(unsafe { libc::fallocate(fd.as_raw_fd(), mode, at, len) })
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: `struct stat` is plain old data for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> SysResult<libc::stat> {
    let mut st = zeroed_stat();
    // SAFETY: `st` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// stat(2) (`follow`) or lstat(2).
pub fn stat(p: &Path, follow: bool) -> SysResult<libc::stat> {
    let c = cpath(p)?;
    let mut st = zeroed_stat();
    let ret = if follow {
        // SAFETY: `c` is NUL-terminated and `st` is a valid, writable `struct stat`.
        unsafe { libc::stat(c.as_ptr(), &mut st) }
    } else {
        // SAFETY: `c` is NUL-terminated and `st` is a valid, writable `struct stat`.
        unsafe { libc::lstat(c.as_ptr(), &mut st) }
    };
    check(ret)?;
    Ok(st)
}

/// mkdir(2).
pub fn mkdir(p: &Path, mode: u32) -> SysResult<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::mkdir(c.as_ptr(), mode as libc::mode_t) })
}

/// rmdir(2).
pub fn rmdir(p: &Path) -> SysResult<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::rmdir(c.as_ptr()) })
}

/// unlink(2).
pub fn unlink(p: &Path) -> SysResult<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::unlink(c.as_ptr()) })
}

/// renameat2(2) relative to the working directory (the paths are absolute).
pub fn renameat2(from: &Path, to: &Path, flags: u32) -> SysResult<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both strings are NUL-terminated and live across the call; the other
    // arguments are plain integers, as the renameat2 system call expects.
    check_long(unsafe {
        libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), flags)
    })
}

/// link(2).
pub fn link(from: &Path, to: &Path) -> SysResult<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both strings are NUL-terminated and live across the call.
    check(unsafe { libc::link(f.as_ptr(), t.as_ptr()) })
}

/// symlink(2).
pub fn symlink(target: &[u8], p: &Path) -> SysResult<()> {
    let (t, c) = (cbytes(target)?, cpath(p)?);
    // SAFETY: both strings are NUL-terminated and live across the call.
    check(unsafe { libc::symlink(t.as_ptr(), c.as_ptr()) })
}

/// readlink(2).
pub fn readlink(p: &Path) -> SysResult<Vec<u8>> {
    let c = cpath(p)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `c` is NUL-terminated; the pointer and length describe the writable `buf`.
    let n = check_size(unsafe { libc::readlink(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
    buf.truncate(n);
    Ok(buf)
}

/// chmod(2).
pub fn chmod(p: &Path, mode: u32) -> SysResult<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::chmod(c.as_ptr(), mode as libc::mode_t) })
}

/// chown(2) (`follow`) or lchown(2); `None` leaves that id unchanged.
pub fn chown(p: &Path, uid: Option<u32>, gid: Option<u32>, follow: bool) -> SysResult<()> {
    let c = cpath(p)?;
    let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    check(unsafe { libc::fchownat(libc::AT_FDCWD, c.as_ptr(), u, g, flags) })
}

/// utimensat(2) with the two given times (atime, mtime).
pub fn utimensat(p: &Path, times: [libc::timespec; 2], follow: bool) -> SysResult<()> {
    let c = cpath(p)?;
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `c` is NUL-terminated and `times` points to two valid timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) })
}

/// faccessat2(2) with `AT_EACCESS`, so the check uses the thread's file-system ids
/// (plain access(2) would use the real uid, which the tester never changes).
pub fn access_as_fs_ids(p: &Path, mode: i32) -> SysResult<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call; the other
    // arguments are plain integers, as the faccessat2 system call expects.
    check_long(unsafe { libc::syscall(libc::SYS_faccessat2, libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) })
}

/// The names in a directory, sorted, without "." and "..".
pub fn list_dir(p: &Path) -> SysResult<Vec<Vec<u8>>> {
    let io = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(p).map_err(io)? {
        names.push(entry.map_err(io)?.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

/// setxattr(2).
pub fn setxattr(p: &Path, name: &[u8], value: &[u8], flags: i32) -> SysResult<()> {
    let (c, n) = (cpath(p)?, cbytes(name)?);
    // SAFETY: both strings are NUL-terminated; pointer and length describe `value`.
    check(unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags) })
}

/// Calls `get(buf)` (an xattr call filling `buf`, or asking for the size when it is
/// empty) with a buffer of the size the kernel asks for; ERANGE (the value grew in
/// between) retries with the larger size.
fn sized(mut get: impl FnMut(&mut [u8]) -> isize) -> SysResult<Vec<u8>> {
    loop {
        let size = check_size(get(&mut []))?;
        let mut buf = vec![0u8; size];
        match check_size(get(&mut buf)) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// getxattr(2) (`follow`) or lgetxattr(2).
pub fn getxattr(p: &Path, name: &[u8], follow: bool) -> SysResult<Vec<u8>> {
    let (c, n) = (cpath(p)?, cbytes(name)?);
    sized(|buf| {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        if follow {
            // SAFETY: both strings are NUL-terminated; pointer and length describe `buf`
            // (a zero length only asks for the size).
            unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), ptr, len) }
        } else {
            // SAFETY: as above.
            unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), ptr, len) }
        }
    })
}

/// listxattr(2) (`follow`) or llistxattr(2): the names, sorted.
pub fn listxattr(p: &Path, follow: bool) -> SysResult<Vec<Vec<u8>>> {
    let c = cpath(p)?;
    let buf = sized(|buf| {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        if follow {
            // SAFETY: `c` is NUL-terminated; pointer and length describe `buf` (a zero
            // length only asks for the size).
            unsafe { libc::listxattr(c.as_ptr(), ptr, len) }
        } else {
            // SAFETY: as above.
            unsafe { libc::llistxattr(c.as_ptr(), ptr, len) }
        }
    })?;
    let mut names: Vec<Vec<u8>> = buf.split(|&b| b == 0).filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect();
    names.sort();
    Ok(names)
}

/// removexattr(2).
pub fn removexattr(p: &Path, name: &[u8]) -> SysResult<()> {
    let (c, n) = (cpath(p)?, cbytes(name)?);
    // SAFETY: both strings are NUL-terminated and live across the call.
    check(unsafe { libc::removexattr(c.as_ptr(), n.as_ptr()) })
}

/// Gives the calling thread its own working directory, root and umask (unshare(2)
/// with `CLONE_FS`), so that [`umask`] changes only this thread.
pub fn unshare_fs() -> SysResult<()> {
    // SAFETY: unshare takes a plain flag word.
    check(unsafe { libc::unshare(libc::CLONE_FS) })
}

/// umask(2): sets the mask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask takes a plain integer and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) }
}

/// The symbolic name of an errno, for messages.
pub fn errno_name(e: Errno) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENODATA => "ENODATA",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENXIO => "ENXIO",
        libc::ETXTBSY => "ETXTBSY",
        libc::EBUSY => "EBUSY",
        libc::E2BIG => "E2BIG",
        libc::EOVERFLOW => "EOVERFLOW",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}
