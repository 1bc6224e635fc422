//! File systems: create (idempotent on the creation token), describe, update the
//! throughput mode, delete (refused while something uses it).

use std::collections::HashMap;
use std::sync::Arc;

use floe_fs::{BlockStore, FsConfig};
use floe_meta::{AccessPointId, Expect, FileSystemInfo, MetaError, TimeSpec};

use super::error::{EfsError, Result};
use super::ids::{self, FsId, Named};
use super::records::{FsRecord, ACCESS_POINT, CLIENT_TOKEN, CREATION_TOKEN, FILE_SYSTEM, POLICY};
use super::tags::{self, Tag, NAME_TAG};
use super::{label, paginate, FileSystems, Page};

/// Longest floe name of a file system (floe-meta's limit).
const NAME_MAX: usize = 64;
/// Longest creation token (EFS's limit).
const TOKEN_MAX: usize = 64;
/// Provisioned throughput bounds, MiB/s (EFS's).
const PROVISIONED_MIN: f64 = 1.0;
const PROVISIONED_MAX: f64 = 3414.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerformanceMode {
    GeneralPurpose,
    MaxIo,
}

impl PerformanceMode {
    pub fn parse(s: &str) -> Result<PerformanceMode> {
        match s {
            "generalPurpose" => Ok(PerformanceMode::GeneralPurpose),
            "maxIO" => Ok(PerformanceMode::MaxIo),
            _ => Err(EfsError::bad(format!("PerformanceMode {s:?} is not one of generalPurpose, maxIO"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PerformanceMode::GeneralPurpose => "generalPurpose",
            PerformanceMode::MaxIo => "maxIO",
        }
    }
}

/// A throughput mode, with its rate when provisioned. Recorded, not enforced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Throughput {
    Bursting,
    Elastic,
    Provisioned { mibps: f64 },
}

impl Throughput {
    /// From `ThroughputMode` (bursting when absent) and `ProvisionedThroughputInMibps`.
    pub fn new(mode: Option<&str>, mibps: Option<f64>) -> Result<Throughput> {
        match (mode.unwrap_or("bursting"), mibps) {
            ("provisioned", Some(mibps)) => Ok(Throughput::Provisioned { mibps: check_rate(mibps)? }),
            ("provisioned", None) => {
                Err(EfsError::bad("ProvisionedThroughputInMibps is required when ThroughputMode is provisioned"))
            }
            ("bursting" | "elastic", Some(_)) => {
                Err(EfsError::bad("ProvisionedThroughputInMibps is only allowed when ThroughputMode is provisioned"))
            }
            ("bursting", None) => Ok(Throughput::Bursting),
            ("elastic", None) => Ok(Throughput::Elastic),
            (other, _) => {
                Err(EfsError::bad(format!("ThroughputMode {other:?} is not one of bursting, provisioned, elastic")))
            }
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Throughput::Bursting => "bursting",
            Throughput::Elastic => "elastic",
            Throughput::Provisioned { .. } => "provisioned",
        }
    }

    pub fn provisioned_mibps(&self) -> Option<f64> {
        match self {
            Throughput::Provisioned { mibps } => Some(*mibps),
            _ => None,
        }
    }
}

fn check_rate(mibps: f64) -> Result<f64> {
    if mibps.is_finite() && (PROVISIONED_MIN..=PROVISIONED_MAX).contains(&mibps) {
        Ok(mibps)
    } else {
        Err(EfsError::bad(format!(
            "ProvisionedThroughputInMibps {mibps} is out of range: {PROVISIONED_MIN} to {PROVISIONED_MAX}"
        )))
    }
}

/// What a new file system is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFileSystem {
    /// Names the request: the same token again finds this file system.
    pub creation_token: String,
    /// floe's name of it (what `floe mount` takes); its EFS id when absent.
    pub name: Option<String>,
    pub performance_mode: PerformanceMode,
    pub throughput: Throughput,
    /// Recorded (floe has no encryption at rest yet).
    pub encrypted: bool,
    pub tags: Vec<Tag>,
}

impl NewFileSystem {
    /// What the CLI creates: `name` is also its creation token and `Name` tag.
    pub fn named(name: &str) -> NewFileSystem {
        NewFileSystem {
            creation_token: name.to_string(),
            name: Some(name.to_string()),
            performance_mode: PerformanceMode::GeneralPurpose,
            throughput: Throughput::Bursting,
            encrypted: false,
            tags: vec![Tag::new(NAME_TAG, name)],
        }
    }
}

/// A file system as EFS describes it, with floe's name and UUID.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSystemDescription {
    pub id: FsId,
    pub arn: String,
    /// floe's name (its id when created through the API).
    pub name: String,
    /// Names its objects.
    pub uuid: String,
    pub creation_token: String,
    pub created: TimeSpec,
    /// Bytes of file data, metered by the metadata engine.
    pub size_bytes: u64,
    /// When `size_bytes` was read.
    pub size_time: TimeSpec,
    pub used_inodes: u64,
    pub performance_mode: PerformanceMode,
    pub throughput: Throughput,
    pub encrypted: bool,
    pub tags: Vec<Tag>,
}

impl FileSystemDescription {
    /// The `Name` tag's value: EFS's `Name` of the file system.
    pub fn name_tag(&self) -> Option<&str> {
        tags::name_of(&self.tags)
    }
}

/// Which file systems DescribeFileSystems returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSystemQuery {
    pub file_system_id: Option<String>,
    pub creation_token: Option<String>,
    pub marker: Option<String>,
    pub max_items: Option<u32>,
}

/// What deleting a file system takes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteScope {
    /// Refused while it has access points (EFS).
    Empty,
    /// Its access points go with it (`floe fs delete`).
    WithAccessPoints,
}

fn check_token(token: &str) -> Result<()> {
    let chars = token.chars().count();
    if (1..=TOKEN_MAX).contains(&chars) {
        Ok(())
    } else {
        Err(EfsError::bad(format!("CreationToken has 1 to {TOKEN_MAX} characters, not {chars}")))
    }
}

impl FileSystems {
    /// Creates a file system. A creation token used before gives
    /// `FileSystemAlreadyExists` with the id of the file system it made.
    pub fn create_file_system(&self, new: NewFileSystem) -> Result<FileSystemDescription> {
        // The rest of a name's rules are floe-meta's, checked when it is created.
        if let Some(name) = new.name.as_deref().filter(|n| n.is_empty() || n.len() > NAME_MAX) {
            return Err(EfsError::bad(format!("file system name {name:?}: a name has 1 to {NAME_MAX} characters")));
        }
        check_token(&new.creation_token)?;
        tags::validate(&new.tags)?;
        let token = new.creation_token.as_str();
        self.check_token_unused(token)?;
        let existing = self.all_info()?;
        if let Some(name) = &new.name {
            if let Some(info) = existing.iter().find(|i| &i.name == name) {
                return Err(EfsError::FileSystemAlreadyExists {
                    token: token.to_string(),
                    id: FsId::from_uuid(&info.uuid),
                });
            }
        }
        // A fresh UUID whose id no file system has (68 random bits: a retry is
        // astronomically rare, but ids must be unique).
        let (uuid, id) = loop {
            let uuid = uuid::Uuid::new_v4().to_string();
            let id = FsId::from_uuid(&uuid);
            if !existing.iter().any(|i| FsId::from_uuid(&i.uuid) == id) {
                break (uuid, id);
            }
        };
        match self.store(CREATION_TOKEN, token, &id.to_string(), Expect::Absent) {
            Ok(()) => {}
            Err(MetaError::Exists) => {
                return Err(self.check_token_unused(token).err().unwrap_or_else(|| {
                    EfsError::Conflict(format!("creation token {token:?} is being used by another request"))
                }))
            }
            Err(e) => return Err(EfsError::meta("creation token", e)),
        }
        let record = FsRecord {
            creation_token: token.to_string(),
            performance_mode: new.performance_mode.as_str().to_string(),
            throughput_mode: new.throughput.mode().to_string(),
            provisioned_mibps: new.throughput.provisioned_mibps(),
            encrypted: new.encrypted,
            tags: new.tags.clone(),
        };
        let name = new.name.clone().unwrap_or_else(|| id.to_string());
        let created = self
            .store(FILE_SYSTEM, id.as_str(), &record, Expect::Absent)
            .and_then(|()| self.inner.meta.create_fs(&name, &uuid));
        if let Err(e) = created {
            let _ = self.forget(FILE_SYSTEM, id.as_str());
            let _ = self.forget(CREATION_TOKEN, token);
            return Err(match e {
                MetaError::Invalid(why) => EfsError::bad(format!("file system name {name:?}: {why}")),
                MetaError::FileSystemExists(_) => match self.inner.meta.fs_by_name(&name) {
                    Ok(info) => {
                        EfsError::FileSystemAlreadyExists { token: token.to_string(), id: FsId::from_uuid(&info.uuid) }
                    }
                    Err(e) => EfsError::meta("file system", e),
                },
                e => EfsError::meta("create file system", e),
            });
        }
        tracing::info!(fs = %id, name = %name, "file system created");
        self.file_system(id.as_str())
    }

    /// `FileSystemAlreadyExists` if a file system was made with `token`; a claim
    /// left by a deleted one (or a create that died half-way) is dropped.
    fn check_token_unused(&self, token: &str) -> Result<()> {
        if let Some((claimed, revision)) = self.load::<String>(CREATION_TOKEN, token)? {
            let id = FsId::parse(&claimed).filter(|id| matches!(self.info(id), Ok(Some(_))));
            match id {
                Some(id) => return Err(EfsError::FileSystemAlreadyExists { token: token.to_string(), id }),
                None => match self.inner.meta.delete_record(CREATION_TOKEN, token, Expect::Revision(revision)) {
                    Ok(_) | Err(MetaError::NotFound | MetaError::Stale) => {}
                    Err(e) => return Err(EfsError::meta("creation token", e)),
                },
            }
        }
        // A file system from before records: its name is its token.
        if let Ok(info) = self.inner.meta.fs_by_name(token) {
            let id = FsId::from_uuid(&info.uuid);
            if self.load::<FsRecord>(FILE_SYSTEM, id.as_str())?.is_none() {
                return Err(EfsError::FileSystemAlreadyExists { token: token.to_string(), id });
            }
        }
        Ok(())
    }

    fn describe(&self, info: &FileSystemInfo, record: FsRecord) -> FileSystemDescription {
        let id = FsId::from_uuid(&info.uuid);
        let throughput = match record.throughput_mode.as_str() {
            "provisioned" => Throughput::Provisioned { mibps: record.provisioned_mibps.unwrap_or(PROVISIONED_MIN) },
            "elastic" => Throughput::Elastic,
            _ => Throughput::Bursting,
        };
        FileSystemDescription {
            arn: self.fs_arn(&id),
            id,
            name: info.name.clone(),
            uuid: info.uuid.clone(),
            creation_token: record.creation_token,
            created: info.created,
            size_bytes: info.used_bytes,
            size_time: TimeSpec::now(),
            used_inodes: info.used_inodes,
            performance_mode: PerformanceMode::parse(&record.performance_mode)
                .unwrap_or(PerformanceMode::GeneralPurpose),
            throughput,
            encrypted: record.encrypted,
            tags: record.tags,
        }
    }

    /// One file system, by id or ARN.
    pub fn file_system(&self, id: &str) -> Result<FileSystemDescription> {
        let info = self.lookup(id, "FileSystemId")?;
        let record = self.fs_record(&info)?;
        Ok(self.describe(&info, record))
    }

    /// Every file system, in id order.
    pub fn list_file_systems(&self) -> Result<Vec<FileSystemDescription>> {
        let records: HashMap<String, FsRecord> = self.load_all(FILE_SYSTEM)?.into_iter().collect();
        let mut all: Vec<FileSystemDescription> = self
            .all_info()?
            .iter()
            .map(|info| {
                let id = FsId::from_uuid(&info.uuid);
                let record = records.get(id.as_str()).cloned().unwrap_or_else(|| FsRecord::legacy(info));
                self.describe(info, record)
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// DescribeFileSystems: one by id, those made with a creation token, or all; a
    /// page at a time.
    pub fn describe_file_systems(&self, query: &FileSystemQuery) -> Result<Page<FileSystemDescription>> {
        let max = tags::page_size(query.max_items, "MaxItems")?;
        let all = match (&query.file_system_id, &query.creation_token) {
            (Some(_), Some(_)) => {
                return Err(EfsError::bad("give FileSystemId or CreationToken, not both"));
            }
            (Some(id), None) => vec![self.file_system(id)?],
            (None, Some(token)) => {
                check_token(token)?;
                self.list_file_systems()?.into_iter().filter(|d| &d.creation_token == token).collect()
            }
            (None, None) => self.list_file_systems()?,
        };
        Ok(paginate(all, |d| d.id.to_string(), query.marker.as_deref(), max))
    }

    /// UpdateFileSystem: the throughput mode and rate. A rate alone changes a
    /// provisioned file system's rate.
    pub fn update_file_system(
        &self,
        id: &str,
        mode: Option<&str>,
        mibps: Option<f64>,
    ) -> Result<FileSystemDescription> {
        let info = self.lookup(id, "FileSystemId")?;
        if mode.is_some() || mibps.is_some() {
            self.update_fs_record(&info, |record| {
                let mode = mode.unwrap_or(record.throughput_mode.as_str()).to_string();
                let throughput = Throughput::new(Some(&mode), mibps)?;
                record.throughput_mode = throughput.mode().to_string();
                record.provisioned_mibps = throughput.provisioned_mibps();
                Ok(())
            })?;
        }
        self.file_system(id)
    }

    /// Deletes a file system, its data and its EFS records. Refused
    /// (`FileSystemInUse`) while a function's `FileSystemConfigs` names one of its
    /// access points, while it has access points (with [`DeleteScope::Empty`]), or
    /// while a client other than this node's own idle ones has it mounted.
    pub fn delete_file_system(&self, id: &str, scope: DeleteScope) -> Result<FileSystemDescription> {
        let info = self.lookup(id, "FileSystemId")?;
        let description = self.describe(&info, self.fs_record(&info)?);
        let meta = &self.inner.meta;
        let access_points =
            meta.list_access_points(Some(&info.name)).map_err(|e| EfsError::meta("access points", e))?;
        self.check_no_function_mounts(&info, &access_points.iter().map(|a| a.id.clone()).collect::<Vec<_>>())?;
        if scope == DeleteScope::Empty && !access_points.is_empty() {
            let ids: Vec<&str> = access_points.iter().map(|a| a.id.as_str()).collect();
            return Err(EfsError::FileSystemInUse(format!(
                "File system {} has {} access point(s) ({}); delete them first",
                label(&info),
                ids.len(),
                ids.join(", ")
            )));
        }
        if let Some(mounts) = &self.inner.mounts {
            mounts.release_file_system(&info.name);
        }
        let live =
            meta.live_sessions(info.id, FsConfig::default().session_ttl).map_err(|e| EfsError::meta("sessions", e))?;
        if live > 0 {
            return Err(EfsError::FileSystemInUse(format!(
                "File system {} is mounted by {live} client(s); unmount it first",
                label(&info)
            )));
        }
        for ap in &access_points {
            self.forget_access_point(&ap.id)?;
        }
        let blocks = BlockStore::new(Arc::clone(&self.inner.objects), &info.uuid, &FsConfig::default())
            .map_err(|e| EfsError::Internal(format!("object storage: {e}")))?;
        blocks.delete_all().map_err(|e| EfsError::Internal(format!("delete the objects of {}: {e}", label(&info))))?;
        match meta.delete_fs(&info.name) {
            Ok(_) | Err(MetaError::NoFileSystem(_)) => {}
            Err(e) => return Err(EfsError::meta("delete file system", e)),
        }
        let id = &description.id;
        if matches!(self.load::<String>(CREATION_TOKEN, &description.creation_token)?, Some((c, _)) if c == id.as_str())
        {
            self.forget(CREATION_TOKEN, &description.creation_token)?;
        }
        self.forget(FILE_SYSTEM, id.as_str())?;
        self.forget(POLICY, id.as_str())?;
        tracing::info!(fs = %id, name = %info.name, "file system deleted");
        Ok(description)
    }

    /// `FileSystemInUse` if a function mounts one of `access_points`.
    fn check_no_function_mounts(&self, info: &FileSystemInfo, access_points: &[AccessPointId]) -> Result<()> {
        let Some(functions) = &self.inner.functions else { return Ok(()) };
        let all = functions.list_functions().map_err(|e| EfsError::Internal(format!("functions: {e}")))?;
        for function in all {
            for mount in &function.mounts {
                let Ok(Named::Ours(ap)) = ids::access_point_id(&self.inner.deployment, &mount.source, "Arn") else {
                    continue;
                };
                if access_points.contains(&ap) {
                    return Err(EfsError::FileSystemInUse(format!(
                        "File system {} is in use: function {} mounts its access point {ap} at {}",
                        label(info),
                        function.name,
                        mount.local_mount_path
                    )));
                }
            }
        }
        Ok(())
    }

    /// Drops what floe keeps of an access point beside floe-meta, and this node's
    /// mounts of it.
    pub(super) fn forget_access_point(&self, id: &AccessPointId) -> Result<()> {
        if let Some(mounts) = &self.inner.mounts {
            mounts.release_access_point(id);
        }
        if let Some(token) = self.ap_record(id)?.client_token {
            if matches!(self.load::<String>(CLIENT_TOKEN, &token)?, Some((c, _)) if c == id.as_str()) {
                self.forget(CLIENT_TOKEN, &token)?;
            }
        }
        self.forget(ACCESS_POINT, id.as_str())
    }
}
