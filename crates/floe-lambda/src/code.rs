//! Code packages: a zip (uploaded, or made from a directory), checked against the
//! limits, stored by its SHA-256 and unpacked once per node.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::error::{ErrorKind, LambdaError, Result};
use crate::model::Limits;

/// A checked zip package.
#[derive(Clone, Debug)]
pub struct Package {
    pub zip: bytes::Bytes,
    /// Hex SHA-256 of the zip.
    pub sha256: String,
    pub unzipped_bytes: u64,
}

impl Package {
    /// Checks a zip against the limits: its size, its unpacked size, and that every
    /// entry stays inside the package.
    pub fn from_zip(zip: bytes::Bytes, limits: &Limits) -> Result<Package> {
        if zip.len() as u64 > limits.max_zip_bytes {
            return Err(LambdaError::new(
                ErrorKind::RequestTooLarge,
                format!(
                    "Request must be smaller than {} bytes for the CreateFunction operation (zip is {} bytes)",
                    limits.max_zip_bytes,
                    zip.len()
                ),
            ));
        }
        let mut archive = zip::ZipArchive::new(Cursor::new(zip.clone()))
            .map_err(|e| LambdaError::invalid(format!("Could not unzip uploaded file: {e}")))?;
        let mut unzipped = 0u64;
        for i in 0..archive.len() {
            let entry = archive
                .by_index_raw(i)
                .map_err(|e| LambdaError::invalid(format!("Could not unzip uploaded file: {e}")))?;
            if entry.enclosed_name().is_none() {
                return Err(LambdaError::invalid(format!(
                    "Could not unzip uploaded file: entry {:?} leaves the package",
                    entry.name()
                )));
            }
            unzipped = unzipped.saturating_add(entry.size());
        }
        if unzipped > limits.max_unzipped_bytes {
            return Err(LambdaError::invalid(format!(
                "Unzipped size must be smaller than {} bytes",
                limits.max_unzipped_bytes
            )));
        }
        let sha256 = hex(&Sha256::digest(&zip));
        Ok(Package { zip, sha256, unzipped_bytes: unzipped })
    }

    /// Zips a directory (regular files with their modes, directories, symlinks).
    pub fn from_dir(dir: &Path, limits: &Limits) -> Result<Package> {
        let meta =
            fs::metadata(dir).map_err(|e| LambdaError::invalid(format!("code directory {}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(LambdaError::invalid(format!("{} is not a directory", dir.display())));
        }
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let mut total = 0u64;
        add_dir(&mut writer, dir, dir, &mut total, limits)?;
        let zip = writer.finish().map_err(|e| LambdaError::service(format!("zip {}: {e}", dir.display())))?;
        Package::from_zip(zip.into_inner().into(), limits)
    }

    /// Code packages are kept in object storage under this key.
    pub fn object_key(sha256: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("code/{sha256}.zip"))
    }
}

fn add_dir(
    writer: &mut zip::ZipWriter<Cursor<Vec<u8>>>,
    root: &Path,
    dir: &Path,
    total: &mut u64,
    limits: &Limits,
) -> Result<()> {
    let io = |e: std::io::Error, p: &Path| LambdaError::invalid(format!("code directory {}: {e}", p.display()));
    let mut entries: Vec<_> =
        fs::read_dir(dir).map_err(|e| io(e, dir))?.collect::<Result<_, _>>().map_err(|e| io(e, dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path).map_err(|e| io(e, &path))?;
        let mode = meta.permissions().mode() & 0o7777;
        let options = SimpleFileOptions::default().unix_permissions(mode);
        let zerr = |e: zip::result::ZipError| LambdaError::service(format!("zip {}: {e}", path.display()));
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io(e, &path))?;
            writer.add_symlink(rel, target.to_string_lossy(), options).map_err(zerr)?;
        } else if meta.is_dir() {
            writer.add_directory(format!("{rel}/"), options).map_err(zerr)?;
            add_dir(writer, root, &path, total, limits)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > limits.max_unzipped_bytes {
                return Err(LambdaError::invalid(format!(
                    "Unzipped size must be smaller than {} bytes",
                    limits.max_unzipped_bytes
                )));
            }
            writer
                .start_file(
                    rel,
                    options.compression_method(zip::CompressionMethod::Deflated).large_file(meta.len() >= 1 << 32),
                )
                .map_err(zerr)?;
            let mut file = fs::File::open(&path).map_err(|e| io(e, &path))?;
            std::io::copy(&mut file, writer).map_err(|e| io(e, &path))?;
        }
    }
    Ok(())
}

/// Unpacks `zip` into `dest` (which must not exist) atomically: into a sibling
/// temporary directory first, renamed into place when complete. Everything is
/// left readable by every user (environments run as an unprivileged uid) and
/// executable where the package says so.
pub fn unpack(zip: &[u8], dest: &Path) -> std::io::Result<()> {
    let parent = dest.parent().expect("dest has a parent");
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dest.file_name().expect("dest has a name").to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = unpack_into(zip, &tmp).and_then(|()| match fs::rename(&tmp, dest) {
        // Another unpacker of the same package won; its copy is identical.
        Err(e) if dest.is_dir() => {
            tracing::debug!("{} already unpacked: {e}", dest.display());
            fs::remove_dir_all(&tmp)
        }
        r => r,
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn unpack_into(zip: &[u8], root: &Path) -> std::io::Result<()> {
    let invalid = |e: zip::result::ZipError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(invalid)?;
    fs::create_dir(root)?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(invalid)?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "entry leaves the package"));
        };
        let path: PathBuf = root.join(rel);
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            entry.read_to_string(&mut target)?;
            std::os::unix::fs::symlink(target, &path)?;
            continue;
        }
        let exec = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        let mut out = fs::OpenOptions::new().write(true).create_new(true).mode(exec).open(&path)?;
        std::io::copy(&mut entry, &mut out)?;
        out.flush()?;
        fs::set_permissions(&path, fs::Permissions::from_mode(exec))?;
    }
    // Directories made on the way (and by the zip) must be searchable by everyone.
    chmod_dirs(root)
}

fn chmod_dirs(dir: &Path) -> std::io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            chmod_dirs(&entry.path())?;
        }
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_round_trips_with_modes() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("app.py"), "x = 1\n").unwrap();
        fs::create_dir(src.path().join("pkg")).unwrap();
        fs::write(src.path().join("pkg/bootstrap"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.path().join("pkg/bootstrap"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("app.py", src.path().join("link.py")).unwrap();
        let package = Package::from_dir(src.path(), &Limits::default()).unwrap();
        assert_eq!(package.sha256.len(), 64);
        assert_eq!(package.unzipped_bytes, 22, "two files and a symlink");
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("code");
        unpack(&package.zip, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("app.py")).unwrap(), "x = 1\n");
        assert_eq!(fs::read_to_string(dest.join("link.py")).unwrap(), "x = 1\n");
        let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("pkg/bootstrap"), 0o755);
        assert_eq!(mode("app.py"), 0o644);
        assert_eq!(mode("pkg"), 0o755);
        // Same content, same hash.
        assert_eq!(Package::from_dir(src.path(), &Limits::default()).unwrap().sha256, package.sha256);
    }

    #[test]
    fn limits_and_bad_zips_are_refused() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("big"), vec![0u8; 10_000]).unwrap();
        let small = Limits { max_unzipped_bytes: 5_000, ..Limits::default() };
        assert!(Package::from_dir(src.path(), &small).unwrap_err().message.contains("Unzipped size"));
        let package = Package::from_dir(src.path(), &Limits::default()).unwrap();
        assert!(Package::from_zip(package.zip.clone(), &small).is_err());
        let tiny = Limits { max_zip_bytes: 10, ..Limits::default() };
        assert_eq!(Package::from_zip(package.zip, &tiny).unwrap_err().kind, ErrorKind::RequestTooLarge);
        let e = Package::from_zip(bytes::Bytes::from_static(b"not a zip"), &Limits::default()).unwrap_err();
        assert!(e.message.starts_with("Could not unzip uploaded file"), "{e}");
    }

    #[test]
    fn entries_escaping_the_package_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file("../evil", SimpleFileOptions::default()).unwrap();
        writer.write_all(b"x").unwrap();
        let zip = writer.finish().unwrap().into_inner();
        let e = Package::from_zip(zip.into(), &Limits::default()).unwrap_err();
        assert!(e.message.contains("leaves the package"), "{e}");
    }
}
