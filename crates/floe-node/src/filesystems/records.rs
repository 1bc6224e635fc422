//! The JSON records that hold what EFS has beyond floe-meta (see the table in the
//! module above), read and written compare-and-set so that two nodes changing one
//! resource's tags cannot lose each other's change.

use floe_meta::{AccessPointId, Expect, FileSystemInfo, MetaError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{EfsError, Result};
use super::ids::FsId;
use super::tags::{Tag, NAME_TAG};
use super::FileSystems;

pub(super) const FILE_SYSTEM: &str = "efs-file-system";
pub(super) const CREATION_TOKEN: &str = "efs-creation-token";
pub(super) const ACCESS_POINT: &str = "efs-access-point";
pub(super) const CLIENT_TOKEN: &str = "efs-client-token";
pub(super) const POLICY: &str = "efs-policy";

/// Writes lost to a concurrent writer are retried this many times.
const RETRIES: usize = 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct TagRecord {
    pub key: String,
    pub value: String,
}

/// A file system's EFS settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct FsRecord {
    pub creation_token: String,
    /// `generalPurpose` | `maxIO`.
    pub performance_mode: String,
    /// `bursting` | `provisioned` | `elastic`.
    pub throughput_mode: String,
    #[serde(default)]
    pub provisioned_mibps: Option<f64>,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default, with = "tag_list")]
    pub tags: Vec<Tag>,
}

impl FsRecord {
    /// What a file system without a record is: made by the CLI under its name.
    pub fn legacy(info: &FileSystemInfo) -> FsRecord {
        FsRecord {
            creation_token: info.name.clone(),
            performance_mode: "generalPurpose".into(),
            throughput_mode: "bursting".into(),
            provisioned_mibps: None,
            encrypted: false,
            tags: vec![Tag::new(NAME_TAG, info.name.clone())],
        }
    }
}

/// An access point's EFS settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct ApRecord {
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default, with = "tag_list")]
    pub tags: Vec<Tag>,
}

mod tag_list {
    use super::{Tag, TagRecord};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(tags: &[Tag], s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<TagRecord> =
            tags.iter().map(|t| TagRecord { key: t.key.clone(), value: t.value.clone() }).collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Tag>, D::Error> {
        let list = Vec::<TagRecord>::deserialize(d)?;
        Ok(list.into_iter().map(|t| Tag { key: t.key, value: t.value }).collect())
    }
}

impl FileSystems {
    /// A record and its revision.
    pub(super) fn load<T: DeserializeOwned>(&self, kind: &str, name: &str) -> Result<Option<(T, u64)>> {
        let Some(record) = self.inner.meta.record(kind, name).map_err(|e| EfsError::meta(kind, e))? else {
            return Ok(None);
        };
        let value = serde_json::from_str(&record.body)
            .map_err(|e| EfsError::Internal(format!("stored {kind} record {name} is unreadable: {e}")))?;
        Ok(Some((value, record.revision)))
    }

    /// Every record of a kind, by name.
    pub(super) fn load_all<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<(String, T)>> {
        let records = self.inner.meta.records(kind).map_err(|e| EfsError::meta(kind, e))?;
        records
            .into_iter()
            .map(|r| {
                let value = serde_json::from_str(&r.body)
                    .map_err(|e| EfsError::Internal(format!("stored {kind} record {} is unreadable: {e}", r.name)))?;
                Ok((r.name, value))
            })
            .collect()
    }

    pub(super) fn store<T: Serialize>(
        &self,
        kind: &str,
        name: &str,
        value: &T,
        expect: Expect,
    ) -> Result<(), MetaError> {
        let body = serde_json::to_string(value).map_err(|e| MetaError::Backend(format!("encode {kind}: {e}")))?;
        self.inner.meta.put_record(kind, name, &body, expect).map(|_| ())
    }

    /// Deletes a record if it is there.
    pub(super) fn forget(&self, kind: &str, name: &str) -> Result<()> {
        match self.inner.meta.delete_record(kind, name, Expect::Present) {
            Ok(_) | Err(MetaError::NotFound) => Ok(()),
            Err(e) => Err(EfsError::meta(kind, e)),
        }
    }

    /// Reads, changes and writes back a record (starting from `initial` when there
    /// is none), again if another writer got in between.
    fn update<T: Serialize + DeserializeOwned>(
        &self,
        kind: &str,
        name: &str,
        initial: impl Fn() -> T,
        mut change: impl FnMut(&mut T) -> Result<()>,
    ) -> Result<T> {
        for _ in 0..RETRIES {
            let (mut value, expect) = match self.load::<T>(kind, name)? {
                Some((value, revision)) => (value, Expect::Revision(revision)),
                None => (initial(), Expect::Absent),
            };
            change(&mut value)?;
            match self.store(kind, name, &value, expect) {
                Ok(()) => return Ok(value),
                Err(MetaError::Stale | MetaError::Exists | MetaError::NotFound) => continue,
                Err(e) => return Err(EfsError::meta(kind, e)),
            }
        }
        Err(EfsError::Conflict(format!("{kind} {name} kept changing; try again")))
    }

    /// The EFS settings of a file system.
    pub(super) fn fs_record(&self, info: &FileSystemInfo) -> Result<FsRecord> {
        let id = FsId::from_uuid(&info.uuid);
        Ok(self.load(FILE_SYSTEM, id.as_str())?.map(|(r, _)| r).unwrap_or_else(|| FsRecord::legacy(info)))
    }

    pub(super) fn update_fs_record(
        &self,
        info: &FileSystemInfo,
        mut change: impl FnMut(&mut FsRecord) -> Result<()>,
    ) -> Result<()> {
        let id = FsId::from_uuid(&info.uuid);
        // A change is applied to a fresh copy at every attempt.
        self.update(FILE_SYSTEM, id.as_str(), || FsRecord::legacy(info), |r| change(r)).map(|_| ())
    }

    pub(super) fn ap_record(&self, id: &AccessPointId) -> Result<ApRecord> {
        Ok(self.load(ACCESS_POINT, id.as_str())?.map(|(r, _)| r).unwrap_or_default())
    }

    pub(super) fn update_ap_record(
        &self,
        id: &AccessPointId,
        mut change: impl FnMut(&mut ApRecord) -> Result<()>,
    ) -> Result<()> {
        self.update(ACCESS_POINT, id.as_str(), ApRecord::default, |r| change(r)).map(|_| ())
    }
}
