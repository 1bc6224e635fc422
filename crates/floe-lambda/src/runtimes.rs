//! floe's own bootstraps (written in this project, under `runtime/`), embedded in
//! the binary and written once per node to the directory every environment sees
//! read-only at `/var/runtime`.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const FILES: &[(&str, &str)] = &[
    ("python/bootstrap.py", include_str!("../runtime/python/bootstrap.py")),
    ("python/_floe_lambda_runtime.py", include_str!("../runtime/python/_floe_lambda_runtime.py")),
    ("node/bootstrap.js", include_str!("../runtime/node/bootstrap.js")),
];

/// Writes the bootstraps under `base/<content hash>/` (unless there already),
/// compiles the Python runtime's bytecode with `python` (environments see the
/// directory read-only, so they could not cache it: 4–8 ms per cold start), and
/// returns that directory.
pub fn install(base: &Path, python: &Path) -> std::io::Result<PathBuf> {
    let dir = write_files(base)?;
    // Once per interpreter (path and modification time): every `floe fn` command
    // opens the service, and compileall costs ≈100 ms even when there is nothing to do.
    let stamp = python
        .metadata()
        .and_then(|m| m.modified())
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    let marker = dir.join(format!(".compiled-{}-{stamp}", python.display().to_string().replace('/', "_")));
    if python.is_file() && !marker.exists() {
        let status = std::process::Command::new(python)
            .args(["-m", "compileall", "-q"])
            .arg(dir.join("python"))
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            tracing::warn!("{} -m compileall failed on {}", python.display(), dir.display());
        }
        make_readable(&dir)?;
        if status.success() {
            fs::write(&marker, b"")?;
        }
    }
    Ok(dir)
}

fn make_readable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            make_readable(&path)?;
        } else {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

fn write_files(base: &Path) -> std::io::Result<PathBuf> {
    let mut hash = Sha256::new();
    for (name, content) in FILES {
        hash.update(name.as_bytes());
        hash.update(content.as_bytes());
    }
    let dir = base.join(&crate::code::hex(&hash.finalize())[..16]);
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = base.join(format!(".tmp-{}", rand::random::<u64>()));
    for (name, content) in FILES {
        let path = tmp.join(name);
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        fs::write(&path, content)?;
    }
    use std::os::unix::fs::PermissionsExt;
    for d in [tmp.clone(), tmp.join("python"), tmp.join("node")] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
    }
    match fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}
