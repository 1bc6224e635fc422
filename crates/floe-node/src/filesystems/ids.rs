//! EFS's identifiers: `fs-` + 17 hex digits for a file system (derived from the
//! UUID that names its objects, so every node derives the same one without storing
//! it), `fsap-` + 17 for an access point ([`floe_meta::AccessPointId`]), and the
//! ARNs of both in a deployment.

use floe_meta::AccessPointId;

use super::error::{EfsError, Result};
use crate::Deployment;

/// The EFS service name in ARNs.
pub const EFS: &str = "elasticfilesystem";

/// Hex digits after `fs-` / `fsap-` in floe's ids (EFS's own length).
const ID_DIGITS: usize = 17;

/// A file system's EFS id: `fs-` and 17 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FsId(String);

impl FsId {
    /// The id of the file system whose objects are named by `uuid`: its first 17
    /// hex digits (a string with fewer is hashed, so any stored UUID has an id).
    pub fn from_uuid(uuid: &str) -> FsId {
        let digits: String = uuid.chars().filter(char::is_ascii_hexdigit).map(|c| c.to_ascii_lowercase()).collect();
        if digits.len() >= ID_DIGITS {
            return FsId(format!("fs-{}", &digits[..ID_DIGITS]));
        }
        // FNV-1a, widened to 68 bits by hashing twice with different seeds.
        let fnv = |seed: u64| uuid.bytes().fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
        let wide = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4));
        FsId(format!("fs-{:017x}", wide & ((1u128 << 68) - 1)))
    }

    /// Any id of EFS's form (`fs-` + 8 to 40 lowercase hex digits); floe's own have 17.
    pub fn parse(s: &str) -> Option<FsId> {
        let digits = s.strip_prefix("fs-")?;
        is_hex_id(digits).then(|| FsId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 8 to 40 lowercase hex digits, as EFS's id patterns say.
fn is_hex_id(digits: &str) -> bool {
    (8..=40).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a user names: an id that may exist, or one that cannot (another length or
/// another deployment's ARN), which is simply not found.
pub(crate) enum Named<T> {
    Ours(T),
    Foreign(String),
}

/// A `FileSystemId` as given: `fs-…` or its ARN. `field` names it in the error.
pub(crate) fn file_system_id(deployment: &Deployment, given: &str, field: &str) -> Result<Named<FsId>> {
    let id = strip_arn(deployment, given, "file-system/", field)?;
    let Some(id) = id else { return Ok(Named::Foreign(given.to_string())) };
    match FsId::parse(id) {
        Some(fs) if fs.0.len() == 3 + ID_DIGITS => Ok(Named::Ours(fs)),
        Some(_) => Ok(Named::Foreign(given.to_string())),
        None => Err(EfsError::bad(format!(
            "{field} {given:?} is not a file system id (fs- and 8 to 40 lowercase hex digits, or its ARN)"
        ))),
    }
}

/// An `AccessPointId` as given: `fsap-…` or its ARN.
pub(crate) fn access_point_id(deployment: &Deployment, given: &str, field: &str) -> Result<Named<AccessPointId>> {
    let id = strip_arn(deployment, given, "access-point/", field)?;
    let Some(id) = id else { return Ok(Named::Foreign(given.to_string())) };
    match id.strip_prefix("fsap-") {
        Some(digits) if is_hex_id(digits) => Ok(match AccessPointId::parse(id) {
            Ok(ap) => Named::Ours(ap),
            Err(_) => Named::Foreign(given.to_string()),
        }),
        _ => Err(EfsError::bad(format!(
            "{field} {given:?} is not an access point id (fsap- and 8 to 40 lowercase hex digits, or its ARN)"
        ))),
    }
}

/// The id inside an ARN of `kind` (`file-system/`), the string itself when it is
/// no ARN, `None` for an ARN of another deployment.
fn strip_arn<'a>(deployment: &Deployment, given: &'a str, kind: &str, field: &str) -> Result<Option<&'a str>> {
    if !given.starts_with("arn:") {
        return Ok(Some(given));
    }
    let resource = match deployment.resource(EFS, given) {
        Some(resource) => resource,
        // Well-formed but of another region or account: nothing of ours.
        None if given.starts_with(&format!("arn:aws:{EFS}:")) => return Ok(None),
        None => return Err(EfsError::bad(format!("{field} {given:?} is not an Amazon EFS ARN"))),
    };
    match resource.strip_prefix(kind) {
        Some(id) => Ok(Some(id)),
        None => Err(EfsError::bad(format!("{field} {given:?} is not the ARN of a {}", kind.trim_end_matches('/')))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment { region: "eu-west-3".into(), account_id: "123456789012".into() }
    }

    #[test]
    fn ids_derive_from_uuids() {
        let id = FsId::from_uuid("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff");
        assert_eq!(id.as_str(), "fs-0f1e2d3c4b5a49788");
        let odd = FsId::from_uuid("not a uuid");
        assert_eq!(odd.as_str().len(), 20);
        assert_eq!(odd, FsId::from_uuid("not a uuid"), "the same every time");
        assert_ne!(odd, FsId::from_uuid("not a uuid either"));
    }

    #[test]
    fn file_system_ids_and_arns() {
        let d = deployment();
        let ours = |s: &str| matches!(file_system_id(&d, s, "FileSystemId"), Ok(Named::Ours(_)));
        let foreign = |s: &str| matches!(file_system_id(&d, s, "FileSystemId"), Ok(Named::Foreign(_)));
        let bad = |s: &str| matches!(file_system_id(&d, s, "FileSystemId"), Err(EfsError::BadRequest(_)));
        assert!(ours("fs-0123456789abcdef0"));
        assert!(ours("arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/fs-0123456789abcdef0"));
        assert!(foreign("fs-12345678"));
        assert!(foreign("arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"));
        assert!(bad("fs-XYZ"));
        assert!(bad("demo"));
        assert!(bad("arn:aws:s3:::bucket"));
        assert!(bad("arn:aws:elasticfilesystem:eu-west-3:123456789012:access-point/fsap-0123456789abcdef0"));
    }

    #[test]
    fn access_point_ids_and_arns() {
        let d = deployment();
        let ours = |s: &str| matches!(access_point_id(&d, s, "AccessPointId"), Ok(Named::Ours(_)));
        let bad = |s: &str| matches!(access_point_id(&d, s, "AccessPointId"), Err(EfsError::BadRequest(_)));
        assert!(ours("fsap-0123456789abcdef0"));
        assert!(ours("arn:aws:elasticfilesystem:eu-west-3:123456789012:access-point/fsap-0123456789abcdef0"));
        assert!(matches!(access_point_id(&d, "fsap-12345678", "AccessPointId"), Ok(Named::Foreign(_))));
        assert!(bad("fsap-"));
        assert!(bad("fs-0123456789abcdef0"));
    }
}
