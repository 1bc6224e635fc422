//! The API's credentials: one key pair per deployment, kept in the metadata engine
//! (so every node of a deployment verifies the same signatures), made by the first
//! `floe up`, and handed to the user as a named profile the aws CLI and boto3 read.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use floe_api::Credential;
use floe_meta::{Expect, Meta, MetaError};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::DataDir;

const KIND: &str = "api-key";
const NAME: &str = "default";
pub const PROFILE: &str = "floe";

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    access_key_id: String,
    secret_access_key: String,
}

fn random(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

fn new_key() -> Credential {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Credential { access_key_id: format!("AKIA{}", random(16, UPPER)), secret_access_key: random(40, SECRET) }
}

/// The deployment's key pair, made and stored on first use; also written to
/// `<data>/credentials` (mode 600) in the aws credentials file format.
pub fn ensure(meta: &Meta, paths: &DataDir) -> Result<Credential> {
    let key = loop {
        if let Some(record) = meta.record(KIND, NAME).context("read the API credentials")? {
            let k: KeyRecord =
                serde_json::from_str(&record.body).context("the stored API credentials are unreadable")?;
            break Credential { access_key_id: k.access_key_id, secret_access_key: k.secret_access_key };
        }
        let key = new_key();
        let body = serde_json::to_string(&KeyRecord {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key.clone(),
        })?;
        match meta.put_record(KIND, NAME, &body, Expect::Absent) {
            Ok(_) => break key,
            // Another node made one at the same moment: use that one.
            Err(MetaError::Exists) => continue,
            Err(e) => return Err(e).context("store the API credentials"),
        }
    };
    let file = paths.root.join("credentials");
    let text = section_text(&format!("[{PROFILE}]"), &credential_lines(&key));
    write_private(&file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(key)
}

/// The deployment's key, for the CLI talking to a running node.
pub fn load(meta: &Meta) -> Result<Option<Credential>> {
    let Some(record) = meta.record(KIND, NAME).context("read the API credentials")? else { return Ok(None) };
    let k: KeyRecord = serde_json::from_str(&record.body).context("the stored API credentials are unreadable")?;
    Ok(Some(Credential { access_key_id: k.access_key_id, secret_access_key: k.secret_access_key }))
}

fn credential_lines(key: &Credential) -> Vec<String> {
    vec![
        format!("aws_access_key_id = {}", key.access_key_id),
        format!("aws_secret_access_key = {}", key.secret_access_key),
    ]
}

fn section_text(header: &str, lines: &[String]) -> String {
    let mut s = format!("{header}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("floe-tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
}

/// `text` with section `header` replaced by (or appended as) `lines`; other
/// sections are kept as they are.
pub fn set_section(text: &str, header: &str, lines: &[String]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if skipping {
                skipping = false;
            }
            if trimmed == header {
                skipping = true;
                done = true;
                out.push_str(&section_text(header, lines));
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&section_text(header, lines));
    }
    out
}

/// Where the profile went, or why it could not be written.
pub struct Profile {
    pub written: Result<String, String>,
}

fn aws_file(env: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

/// Writes the `floe` profile (credentials, region, endpoint_url) into the aws
/// CLI's files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, else `~/.aws/`),
/// leaving every other profile alone.
pub fn write_profile(key: &Credential, region: &str, endpoint: &str) -> Profile {
    let written = (|| -> std::io::Result<String> {
        let creds = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
            .ok_or_else(|| std::io::Error::other("HOME is not set"))?;
        let config = aws_file("AWS_CONFIG_FILE", "config").ok_or_else(|| std::io::Error::other("HOME is not set"))?;
        let old = std::fs::read_to_string(&creds).unwrap_or_default();
        write_private(&creds, &set_section(&old, &format!("[{PROFILE}]"), &credential_lines(key)))?;
        let old = std::fs::read_to_string(&config).unwrap_or_default();
        let lines = vec![format!("region = {region}"), format!("endpoint_url = {endpoint}")];
        write_private(&config, &set_section(&old, &format!("[profile {PROFILE}]"), &lines))?;
        Ok(format!("{} and {}", creds.display(), config.display()))
    })();
    Profile { written: written.map_err(|e| e.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_and_others_kept() {
        let text = "[default]\na = 1\n\n[floe]\nold = yes\n[other]\nb = 2\n";
        let out = set_section(text, "[floe]", &["new = 1".to_string()]);
        assert_eq!(out, "[default]\na = 1\n\n[floe]\nnew = 1\n[other]\nb = 2\n");
        let out = set_section("[default]\na = 1\n", "[floe]", &["x = 1".to_string()]);
        assert_eq!(out, "[default]\na = 1\n\n[floe]\nx = 1\n");
        assert_eq!(set_section("", "[floe]", &["x = 1".to_string()]), "[floe]\nx = 1\n");
    }

    #[test]
    fn keys_look_like_aws_keys() {
        let k = new_key();
        assert!(k.access_key_id.starts_with("AKIA") && k.access_key_id.len() == 20);
        assert_eq!(k.secret_access_key.len(), 40);
    }
}
