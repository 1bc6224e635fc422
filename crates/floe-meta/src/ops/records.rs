//! Control-plane records: the definitions floe keeps besides file systems (functions
//! and their settings, later triggers), one JSON document per kind and name, in the
//! same metadata engine so that every node of a deployment sees the same ones.
//!
//! Writes are compare-and-set on a revision, so that two nodes updating one record
//! cannot silently overwrite each other.

use super::Meta;
use crate::{MetaError, Result};

/// A stored record: its name, its document and the revision of its last write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub body: String,
    /// 1 at creation, +1 at every write.
    pub revision: u64,
}

/// What a write expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No record of that name (a create).
    Absent,
    /// The record at exactly this revision (an update of what was read).
    Revision(u64),
    /// An existing record, whatever its revision.
    Present,
}

impl Meta {
    pub fn record(&self, kind: &str, name: &str) -> Result<Option<Record>> {
        self.read(|t| t.get_record(kind, name))
    }

    pub fn records(&self, kind: &str) -> Result<Vec<Record>> {
        self.read(|t| t.list_records(kind))
    }

    /// Writes `body` under (kind, name) if the stored record matches `expect`;
    /// returns the new revision. `Exists` when a create finds one, `NotFound` when an
    /// update finds none, `Conflict` when the revision moved on.
    pub fn put_record(&self, kind: &str, name: &str, body: &str, expect: Expect) -> Result<u64> {
        self.write(|t| {
            let current = t.get_record(kind, name)?;
            let revision = check(current.as_ref(), expect)? + 1;
            t.put_record(kind, &Record { name: name.to_string(), body: body.to_string(), revision })?;
            Ok(revision)
        })
    }

    /// Deletes the record if it matches `expect`; returns what was deleted.
    pub fn delete_record(&self, kind: &str, name: &str, expect: Expect) -> Result<Record> {
        self.write(|t| {
            let current = t.get_record(kind, name)?;
            check(current.as_ref(), expect)?;
            let record = current.ok_or(MetaError::NotFound)?;
            t.delete_record(kind, name)?;
            Ok(record)
        })
    }
}

/// The stored revision (0 for none) if it matches `expect`.
fn check(current: Option<&Record>, expect: Expect) -> Result<u64> {
    match (current, expect) {
        (None, Expect::Absent) => Ok(0),
        (Some(_), Expect::Absent) => Err(MetaError::Exists),
        (None, _) => Err(MetaError::NotFound),
        (Some(r), Expect::Revision(rev)) if r.revision != rev => Err(MetaError::Stale),
        (Some(r), _) => Ok(r.revision),
    }
}
