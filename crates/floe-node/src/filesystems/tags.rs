//! Tags of file systems and access points, with EFS's limits: keys of 1–128
//! characters not starting with `aws:`, values of at most 256, at most 50 tags on a
//! resource, letters, digits, spaces and `_.:/=+-@` only. The `Name` tag is the
//! resource's name in descriptions.

use floe_meta::MetaError;

use super::error::{EfsError, Result};
use super::ids::{self, Named};
use super::{FileSystems, Page};

pub const MAX_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;
/// The tag whose value is a resource's `Name`.
pub const NAME_TAG: &str = "Name";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag { key: key.into(), value: value.into() }
    }
}

/// The value of the `Name` tag.
pub fn name_of(tags: &[Tag]) -> Option<&str> {
    tags.iter().find(|t| t.key == NAME_TAG).map(|t| t.value.as_str())
}

fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// Checks one request's tags: each valid, no key twice, at most 50.
pub fn validate(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(EfsError::bad(format!("Tags: at most {MAX_TAGS} tags, not {}", tags.len())));
    }
    for (i, tag) in tags.iter().enumerate() {
        validate_key(&tag.key)?;
        let chars = tag.value.chars().count();
        if chars > MAX_VALUE_CHARS {
            return Err(EfsError::bad(format!(
                "Tags: the value of tag {:?} has {chars} characters, at most {MAX_VALUE_CHARS}",
                tag.key
            )));
        }
        if let Some(c) = tag.value.chars().find(|c| !allowed_char(*c)) {
            return Err(EfsError::bad(format!(
                "Tags: the value of tag {:?} contains {c:?}; values hold letters, digits, spaces and _.:/=+-@",
                tag.key
            )));
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(EfsError::bad(format!("Tags: the key {:?} is given twice", tag.key)));
        }
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<()> {
    let chars = key.chars().count();
    if !(1..=MAX_KEY_CHARS).contains(&chars) {
        return Err(EfsError::bad(format!("Tags: a tag key has 1 to {MAX_KEY_CHARS} characters, {key:?} has {chars}")));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(EfsError::bad(format!("Tags: the key {key:?} starts with aws:, which is reserved")));
    }
    if let Some(c) = key.chars().find(|c| !allowed_char(*c)) {
        return Err(EfsError::bad(format!(
            "Tags: the key {key:?} contains {c:?}; keys hold letters, digits, spaces and _.:/=+-@"
        )));
    }
    Ok(())
}

/// `tags` with `new` laid over them (a key given again takes the new value).
pub fn merge(tags: &mut Vec<Tag>, new: Vec<Tag>) -> Result<()> {
    for tag in new {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value,
            None => tags.push(tag),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(EfsError::bad(format!(
            "Tags: a resource has at most {MAX_TAGS} tags; this would make {}",
            tags.len()
        )));
    }
    Ok(())
}

/// What a `ResourceId` of the tagging operations names.
enum Target {
    FileSystem(floe_meta::FileSystemInfo),
    AccessPoint(floe_meta::AccessPointId),
}

impl FileSystems {
    /// Adds `tags` to a file system or access point, replacing the values of keys it has.
    pub fn tag_resource(&self, resource_id: &str, tags: Vec<Tag>) -> Result<()> {
        if tags.is_empty() {
            return Err(EfsError::bad("Tags: give at least one tag"));
        }
        validate(&tags)?;
        self.change_tags(resource_id, |current| merge(current, tags.clone()))
    }

    /// Removes the tags with these keys (keys it does not have are ignored).
    pub fn untag_resource(&self, resource_id: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() || keys.len() > MAX_TAGS {
            return Err(EfsError::bad(format!("TagKeys: give 1 to {MAX_TAGS} keys, not {}", keys.len())));
        }
        for key in keys {
            validate_key(key).map_err(|e| EfsError::bad(e.to_string().replacen("Tags:", "TagKeys:", 1)))?;
        }
        self.change_tags(resource_id, |current| {
            current.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
    }

    /// A resource's tags, a page at a time (`next_token` from the previous page).
    pub fn list_tags_for_resource(
        &self,
        resource_id: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<Tag>> {
        let tags = match self.target(resource_id)? {
            Target::FileSystem(info) => self.fs_record(&info)?.tags,
            Target::AccessPoint(id) => self.ap_record(&id)?.tags,
        };
        let start = match next_token {
            None => 0,
            Some(token) => token
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= tags.len())
                .ok_or_else(|| EfsError::bad(format!("NextToken {token:?} is not one this operation returned")))?,
        };
        let max = page_size(max_results, "MaxResults")?;
        let end = (start + max).min(tags.len());
        let next = (end < tags.len()).then(|| end.to_string());
        Ok(Page { items: tags[start..end].to_vec(), next })
    }

    fn change_tags(&self, resource_id: &str, change: impl Fn(&mut Vec<Tag>) -> Result<()>) -> Result<()> {
        match self.target(resource_id)? {
            Target::FileSystem(info) => self.update_fs_record(&info, |r| change(&mut r.tags)),
            Target::AccessPoint(id) => self.update_ap_record(&id, |r| change(&mut r.tags)),
        }
    }

    /// The existing resource a `ResourceId` names.
    fn target(&self, given: &str) -> Result<Target> {
        if !(given.starts_with("fsap-") || given.contains(":access-point/")) {
            return Ok(Target::FileSystem(self.lookup(given, "ResourceId")?));
        }
        let id = match ids::access_point_id(&self.inner.deployment, given, "ResourceId")? {
            Named::Ours(id) => id,
            Named::Foreign(given) => return Err(EfsError::AccessPointNotFound(given)),
        };
        match self.inner.meta.access_point(&id) {
            Ok(_) => Ok(Target::AccessPoint(id)),
            Err(MetaError::NoAccessPoint(_)) => Err(EfsError::AccessPointNotFound(given.to_string())),
            Err(e) => Err(EfsError::meta("access point", e)),
        }
    }
}

/// `MaxItems`/`MaxResults`: at least 1, 100 when absent.
pub(crate) fn page_size(given: Option<u32>, field: &str) -> Result<usize> {
    match given {
        None => Ok(100),
        Some(0) => Err(EfsError::bad(format!("{field} is at least 1"))),
        Some(n) => Ok(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert!(validate(&[Tag::new("Name", "my data"), Tag::new("team", "")]).is_ok());
        assert!(validate(&[Tag::new("", "v")]).is_err());
        assert!(validate(&[Tag::new("k".repeat(129), "v")]).is_err());
        assert!(validate(&[Tag::new("k".repeat(128), "v".repeat(256))]).is_ok());
        assert!(validate(&[Tag::new("k", "v".repeat(257))]).is_err());
        assert!(validate(&[Tag::new("aws:thing", "v")]).is_err());
        assert!(validate(&[Tag::new("semi;colon", "v")]).is_err());
        assert!(validate(&[Tag::new("a", "1"), Tag::new("a", "2")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| Tag::new(format!("k{i}"), "v")).collect();
        assert!(validate(&many).is_err());
        assert!(validate(&many[..50]).is_ok());
    }

    #[test]
    fn merging_replaces_values_and_counts_the_result() {
        let mut tags = vec![Tag::new("a", "1"), Tag::new("b", "2")];
        merge(&mut tags, vec![Tag::new("b", "3"), Tag::new("c", "4")]).unwrap();
        assert_eq!(tags, vec![Tag::new("a", "1"), Tag::new("b", "3"), Tag::new("c", "4")]);
        let mut full: Vec<Tag> = (0..50).map(|i| Tag::new(format!("k{i}"), "v")).collect();
        assert!(merge(&mut full, vec![Tag::new("k0", "again")]).is_ok());
        assert!(merge(&mut full, vec![Tag::new("one-more", "v")]).is_err());
    }
}
