//! Access points: create (idempotent on the client token), describe, delete.
//! floe-meta keeps the access point itself (what every client enforces); the
//! client token and tags are EFS's, kept in records.

use floe_meta::{AccessPoint, AccessPointId, Caller, Expect, MetaError, RootCreation, TimeSpec};

use super::error::{EfsError, Result};
use super::ids::{self, FsId, Named};
use super::records::{ApRecord, CLIENT_TOKEN};
use super::tags::{self, Tag};
use super::{paginate, FileSystems, Page};

/// Longest client token (EFS's limit).
const TOKEN_MAX: usize = 64;
/// Directories an access point's root may be below `/` (EFS's limit).
const PATH_DEPTH_MAX: usize = 4;
const PATH_MAX_BYTES: usize = floe_meta::ACCESS_POINT_PATH_MAX;
const SECONDARY_GIDS_MAX: usize = 16;
/// Characters EFS refuses in an access point path.
const PATH_FORBIDDEN: &str = "$#<>;`|&?{}^*\n\0";

/// The identity every operation through the access point runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosixUser {
    pub uid: u64,
    pub gid: u64,
    pub secondary_gids: Vec<u64>,
}

/// The access point's root, and how to create it if it does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootDirectory {
    /// `/` when absent.
    pub path: Option<String>,
    /// (owner uid, owner gid, permissions as octal digits such as `750`).
    pub creation: Option<(u64, u64, String)>,
}

/// What a new access point is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccessPoint {
    /// The same token again finds this access point; none from the CLI.
    pub client_token: Option<String>,
    /// By id or ARN.
    pub file_system_id: String,
    /// Required: floe's access points always run as one identity.
    pub posix_user: Option<PosixUser>,
    pub root_directory: RootDirectory,
    pub tags: Vec<Tag>,
}

/// An access point as EFS describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPointDescription {
    pub id: AccessPointId,
    pub arn: String,
    pub file_system_id: FsId,
    /// floe's name of the file system.
    pub file_system_name: String,
    /// The token it was made with (its id when made without one).
    pub client_token: String,
    pub posix_user: Caller,
    pub path: String,
    pub creation: Option<RootCreation>,
    pub tags: Vec<Tag>,
    pub created: TimeSpec,
}

impl AccessPointDescription {
    /// The `Name` tag's value.
    pub fn name(&self) -> Option<&str> {
        tags::name_of(&self.tags)
    }
}

/// Which access points DescribeAccessPoints returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPointQuery {
    pub access_point_id: Option<String>,
    pub file_system_id: Option<String>,
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

fn id_u32(value: u64, field: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| EfsError::bad(format!("{field} {value} is out of range: 0 to {}", u32::MAX)))
}

/// EFS's rules for a root directory path, each refusal naming what to fix.
fn check_path(path: &str) -> Result<()> {
    let field = "RootDirectory.Path";
    if !path.starts_with('/') {
        return Err(EfsError::bad(format!("{field} {path:?} is not absolute: an access point path is absolute")));
    }
    if path.len() > PATH_MAX_BYTES {
        return Err(EfsError::bad(format!(
            "{field} has {} bytes: an access point path has at most {PATH_MAX_BYTES} bytes",
            path.len()
        )));
    }
    if let Some(c) = path.chars().find(|c| PATH_FORBIDDEN.contains(*c)) {
        return Err(EfsError::bad(format!(
            "{field} {path:?} contains {c:?}; access point paths may not contain $#<>;`|&?{{}}^*, NUL or newlines"
        )));
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if let Some(c) = components.iter().find(|c| c.starts_with('.')) {
        return Err(EfsError::bad(format!(
            "{field} {path:?} has the component {c:?}: no component may be '.' or '..' or start with '.'"
        )));
    }
    if components.len() > PATH_DEPTH_MAX {
        return Err(EfsError::bad(format!(
            "{field} {path:?} is {} directories deep, at most {PATH_DEPTH_MAX}",
            components.len()
        )));
    }
    Ok(())
}

fn creation(given: &Option<(u64, u64, String)>) -> Result<Option<RootCreation>> {
    let Some((uid, gid, permissions)) = given else { return Ok(None) };
    let mode = match u16::from_str_radix(permissions, 8) {
        Ok(mode) if (3..=4).contains(&permissions.len()) && permissions.bytes().all(|b| b.is_ascii_digit()) => mode,
        _ => {
            return Err(EfsError::bad(format!(
                "RootDirectory.CreationInfo.Permissions {permissions:?} is not 3 or 4 octal digits, as 750 or 0755"
            )))
        }
    };
    Ok(Some(RootCreation {
        uid: id_u32(*uid, "RootDirectory.CreationInfo.OwnerUid")?,
        gid: id_u32(*gid, "RootDirectory.CreationInfo.OwnerGid")?,
        mode,
    }))
}

fn identity(user: &Option<PosixUser>) -> Result<Caller> {
    let Some(user) = user else {
        return Err(EfsError::bad(
            "PosixUser is required: every operation through a floe access point runs as its PosixUser",
        ));
    };
    if user.secondary_gids.len() > SECONDARY_GIDS_MAX {
        return Err(EfsError::bad(format!(
            "PosixUser.SecondaryGids has {} groups, at most {SECONDARY_GIDS_MAX}",
            user.secondary_gids.len()
        )));
    }
    Ok(Caller {
        uid: id_u32(user.uid, "PosixUser.Uid")?,
        gid: id_u32(user.gid, "PosixUser.Gid")?,
        groups: user
            .secondary_gids
            .iter()
            .map(|g| id_u32(*g, "PosixUser.SecondaryGids"))
            .collect::<Result<Vec<u32>>>()?,
    })
}

impl FileSystems {
    /// Creates an access point. A client token used before gives
    /// `AccessPointAlreadyExists` with the id of the access point it made.
    pub fn create_access_point(&self, new: NewAccessPoint) -> Result<AccessPointDescription> {
        if let Some(token) = &new.client_token {
            let chars = token.chars().count();
            if !(1..=TOKEN_MAX).contains(&chars) {
                return Err(EfsError::bad(format!("ClientToken has 1 to {TOKEN_MAX} characters, not {chars}")));
            }
        }
        let identity = identity(&new.posix_user)?;
        let path = new.root_directory.path.clone().unwrap_or_else(|| "/".to_string());
        check_path(&path)?;
        let creation = creation(&new.root_directory.creation)?;
        tags::validate(&new.tags)?;
        let info = self.lookup(&new.file_system_id, "FileSystemId")?;
        let id = AccessPointId::from_entropy(uuid::Uuid::new_v4().as_u128());
        if let Some(token) = &new.client_token {
            self.claim_client_token(token, &id)?;
        }
        let record = ApRecord { client_token: new.client_token.clone(), tags: new.tags.clone() };
        let unclaim = || {
            let _ = self.forget(super::records::ACCESS_POINT, id.as_str());
            if let Some(token) = &new.client_token {
                let _ = self.forget(CLIENT_TOKEN, token);
            }
        };
        if let Err(e) = self.store(super::records::ACCESS_POINT, id.as_str(), &record, Expect::Absent) {
            unclaim();
            return Err(EfsError::meta("access point record", e));
        }
        let made = self
            .inner
            .meta
            .create_access_point(&info.name, &floe_meta::NewAccessPoint { id: id.clone(), path, identity, creation });
        let ap = match made {
            Ok(ap) => ap,
            Err(e) => {
                unclaim();
                return Err(match e {
                    MetaError::NoFileSystem(_) => EfsError::FileSystemNotFound(new.file_system_id.clone()),
                    MetaError::Invalid(why) => EfsError::bad(format!("RootDirectory.Path: {why}")),
                    MetaError::NameTooLong => {
                        EfsError::bad("RootDirectory.Path: a component is longer than 255 bytes".to_string())
                    }
                    e => EfsError::meta("create access point", e),
                });
            }
        };
        tracing::info!(access_point = %ap.id, fs = %info.name, "access point created");
        self.describe_access_point(ap, &info.name, FsId::from_uuid(&info.uuid), record)
    }

    /// Claims a client token for `id`, or says which access point has it. A claim
    /// of an access point that no longer exists is taken over.
    fn claim_client_token(&self, token: &str, id: &AccessPointId) -> Result<()> {
        for _ in 0..3 {
            match self.store(CLIENT_TOKEN, token, &id.to_string(), Expect::Absent) {
                Ok(()) => return Ok(()),
                Err(MetaError::Exists) => {}
                Err(e) => return Err(EfsError::meta("client token", e)),
            }
            let Some((claimed, revision)) = self.load::<String>(CLIENT_TOKEN, token)? else { continue };
            if let Ok(existing) = AccessPointId::parse(&claimed) {
                if self.inner.meta.access_point(&existing).is_ok() {
                    return Err(EfsError::AccessPointAlreadyExists { token: token.to_string(), id: existing });
                }
            }
            match self.inner.meta.delete_record(CLIENT_TOKEN, token, Expect::Revision(revision)) {
                Ok(_) | Err(MetaError::NotFound | MetaError::Stale) => {}
                Err(e) => return Err(EfsError::meta("client token", e)),
            }
        }
        Err(EfsError::Conflict(format!("client token {token:?} is being used by another request")))
    }

    fn describe_access_point(
        &self,
        ap: AccessPoint,
        fs_name: &str,
        fs_id: FsId,
        record: ApRecord,
    ) -> Result<AccessPointDescription> {
        Ok(AccessPointDescription {
            arn: self.inner.deployment.arn(ids::EFS, &format!("access-point/{}", ap.id)),
            client_token: record.client_token.unwrap_or_else(|| ap.id.to_string()),
            id: ap.id,
            file_system_id: fs_id,
            file_system_name: fs_name.to_string(),
            posix_user: ap.identity,
            path: ap.path,
            creation: ap.creation,
            tags: record.tags,
            created: ap.created,
        })
    }

    /// One access point, by id or ARN.
    pub fn access_point(&self, given: &str) -> Result<AccessPointDescription> {
        let id = match ids::access_point_id(&self.inner.deployment, given, "AccessPointId")? {
            Named::Ours(id) => id,
            Named::Foreign(given) => return Err(EfsError::AccessPointNotFound(given)),
        };
        let ap = match self.inner.meta.access_point(&id) {
            Ok(ap) => ap,
            Err(MetaError::NoAccessPoint(_)) => return Err(EfsError::AccessPointNotFound(given.to_string())),
            Err(e) => return Err(EfsError::meta("access point", e)),
        };
        let info = self
            .all_info()?
            .into_iter()
            .find(|i| i.id == ap.fs)
            .ok_or_else(|| EfsError::AccessPointNotFound(given.to_string()))?;
        let record = self.ap_record(&id)?;
        self.describe_access_point(ap, &info.name, FsId::from_uuid(&info.uuid), record)
    }

    /// DescribeAccessPoints: one by id, those of a file system, or all; a page at
    /// a time, in id order.
    pub fn describe_access_points(&self, query: &AccessPointQuery) -> Result<Page<AccessPointDescription>> {
        let max = tags::page_size(query.max_results, "MaxResults")?;
        let all = match (&query.access_point_id, &query.file_system_id) {
            (Some(_), Some(_)) => return Err(EfsError::bad("give AccessPointId or FileSystemId, not both")),
            (Some(id), None) => vec![self.access_point(id)?],
            (None, fs) => {
                let only = fs.as_deref().map(|given| self.lookup(given, "FileSystemId")).transpose()?;
                let infos = self.all_info()?;
                let records: std::collections::HashMap<String, ApRecord> =
                    self.load_all(super::records::ACCESS_POINT)?.into_iter().collect();
                let listed = self.inner.meta.list_access_points(only.as_ref().map(|i| i.name.as_str())).map_err(
                    |e| match e {
                        MetaError::NoFileSystem(name) => EfsError::FileSystemNotFound(name),
                        e => EfsError::meta("access points", e),
                    },
                )?;
                let mut all = Vec::with_capacity(listed.len());
                for ap in listed {
                    let Some(info) = infos.iter().find(|i| i.id == ap.fs) else { continue };
                    let record = records.get(ap.id.as_str()).cloned().unwrap_or_default();
                    all.push(self.describe_access_point(ap, &info.name, FsId::from_uuid(&info.uuid), record)?);
                }
                all
            }
        };
        Ok(paginate(all, |d| d.id.to_string(), query.next_token.as_deref(), max))
    }

    /// Deletes an access point and releases this node's mounts of it. Its root
    /// directory and files stay.
    pub fn delete_access_point(&self, given: &str) -> Result<AccessPointDescription> {
        let description = self.access_point(given)?;
        match self.inner.meta.delete_access_point(&description.id) {
            Ok(_) => {}
            Err(MetaError::NoAccessPoint(_)) => return Err(EfsError::AccessPointNotFound(given.to_string())),
            Err(e) => return Err(EfsError::meta("delete access point", e)),
        }
        self.forget_access_point(&description.id)?;
        tracing::info!(access_point = %description.id, "access point deleted");
        Ok(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_efs_rules() {
        for ok in ["/", "/message", "/a/b/c/d", "/with space/x_y-z.1"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        let refused = |p: &str, says: &str| {
            let e = check_path(p).expect_err(p).to_string();
            assert!(e.contains("RootDirectory.Path") && e.contains(says), "{p}: {e}");
        };
        refused("rel", "absolute");
        refused(&"/x".repeat(51), "100 bytes");
        refused("/a/../b", "..");
        refused("/.hidden", "start with '.'");
        refused("/a/b/c/d/e", "at most 4");
        refused("/a;b", "';'");
    }

    #[test]
    fn permissions_are_octal_strings() {
        let c = |p: &str| creation(&Some((1001, 1001, p.to_string())));
        assert_eq!(c("750").unwrap(), Some(RootCreation { uid: 1001, gid: 1001, mode: 0o750 }));
        assert_eq!(c("0755").unwrap().map(|c| c.mode), Some(0o755));
        for bad in ["75", "75x", "0999", "12345", "+75", ""] {
            assert!(c(bad).is_err(), "{bad}");
        }
        assert!(creation(&Some((1 << 32, 0, "750".into()))).is_err());
    }
}
