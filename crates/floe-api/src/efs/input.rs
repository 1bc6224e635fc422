//! Reading EFS requests: JSON bodies and query strings, each refusal a
//! `BadRequest` naming the field (botocore validates before sending, other
//! clients may not).

use bytes::Bytes;
use floe_node::filesystems::Tag;
use serde_json::{Map, Value};

use crate::AwsError;

pub fn bad_request(message: impl Into<String>) -> AwsError {
    AwsError::efs(400, "BadRequest", message)
}

/// A JSON object of a request body, or one of its nested objects (`at` is its
/// path, for messages).
#[derive(Debug)]
pub struct Body {
    map: Map<String, Value>,
    at: String,
}

impl Body {
    /// The body as an object; an empty body is an empty object.
    pub fn parse(bytes: &Bytes) -> Result<Body, AwsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body { map: Map::new(), at: String::new() });
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Body { map, at: String::new() }),
            Ok(other) => Err(bad_request(format!("the request body is a JSON object, not {}", kind(&other)))),
            Err(e) => Err(bad_request(format!("the request body is not valid JSON: {e}"))),
        }
    }

    fn name(&self, field: &str) -> String {
        if self.at.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.at)
        }
    }

    /// Refuses fields the operation does not take.
    pub fn only(&self, known: &[&str]) -> Result<(), AwsError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(bad_request(format!(
                "{} is not a field of this request (it takes {})",
                self.name(k),
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn string(&self, field: &str) -> Result<Option<String>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad_request(format!("{} is a string, not {}", self.name(field), kind(other)))),
        }
    }

    pub fn required_string(&self, field: &str) -> Result<String, AwsError> {
        self.string(field)?.ok_or_else(|| bad_request(format!("{} is required", self.name(field))))
    }

    pub fn bool(&self, field: &str) -> Result<Option<bool>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(bad_request(format!("{} is a boolean, not {}", self.name(field), kind(other)))),
        }
    }

    pub fn number(&self, field: &str) -> Result<Option<f64>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(bad_request(format!("{} is a number, not {}", self.name(field), kind(other)))),
        }
    }

    /// A whole number from 0 to 4294967295 (uids and gids); larger ones are left to
    /// the service, which names the range.
    pub fn id(&self, field: &str) -> Result<Option<u64>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => Ok(Some(as_id(v).ok_or_else(|| {
                bad_request(format!("{} is a whole number from 0 to 4294967295, not {v}", self.name(field)))
            })?)),
        }
    }

    pub fn required_id(&self, field: &str) -> Result<u64, AwsError> {
        self.id(field)?.ok_or_else(|| bad_request(format!("{} is required", self.name(field))))
    }

    pub fn ids(&self, field: &str) -> Result<Vec<u64>, AwsError> {
        let name = self.name(field);
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    as_id(v).ok_or_else(|| {
                        bad_request(format!("{name}[{i}] is a whole number from 0 to 4294967295, not {v}"))
                    })
                })
                .collect(),
            Some(other) => Err(bad_request(format!("{name} is a list of numbers, not {}", kind(other)))),
        }
    }

    pub fn object(&self, field: &str) -> Result<Option<Body>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Body { map: map.clone(), at: self.name(field) })),
            Some(other) => Err(bad_request(format!("{} is an object, not {}", self.name(field), kind(other)))),
        }
    }

    /// `Tags`: a list of `{Key, Value}`.
    pub fn tags(&self, field: &str) -> Result<Option<Vec<Tag>>, AwsError> {
        let name = self.name(field);
        let items = match self.get(field) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(bad_request(format!("{name} is a list of {{Key, Value}}, not {}", kind(other)))),
        };
        let mut tags = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(map) = item else {
                return Err(bad_request(format!("{name}[{i}] is an object {{Key, Value}}, not {}", kind(item))));
            };
            let tag = Body { map: map.clone(), at: format!("{name}[{i}]") };
            tag.only(&["Key", "Value"])?;
            tags.push(Tag::new(tag.required_string("Key")?, tag.required_string("Value")?));
        }
        Ok(Some(tags))
    }
}

fn as_id(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A query string's parameters, in order, decoded (repeated names kept).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let decode =
            |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        Query(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    pub fn only(&self, known: &[&str]) -> Result<(), AwsError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => {
                Err(bad_request(format!("{k} is not a parameter of this request (it takes {})", known.join(", "))))
            }
            None => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    pub fn count(&self, name: &str) -> Result<Option<u32>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| bad_request(format!("{name} is a whole number of at least 1, not {v:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_field_that_is_wrong() {
        let body = Body::parse(&Bytes::from_static(br#"{"A":"x","N":{"Uid":-1},"T":[{"Key":1}]}"#)).unwrap();
        assert!(body.required_string("B").unwrap_err().message().contains("B is required"));
        assert!(body.bool("A").unwrap_err().message().contains("A is a boolean, not a string"));
        let nested = body.object("N").unwrap().unwrap();
        assert!(nested.required_id("Uid").unwrap_err().message().contains("N.Uid is a whole number"));
        assert!(body.tags("T").unwrap_err().message().contains("T[0].Key is a string"));
        assert!(body.only(&["A", "N"]).unwrap_err().message().contains("T is not a field"));
        assert!(Body::parse(&Bytes::from_static(b"{oops")).unwrap_err().message().contains("not valid JSON"));
        assert!(Body::parse(&Bytes::from_static(b"[]")).unwrap_err().message().contains("not a list"));
        assert!(Body::parse(&Bytes::new()).is_ok());
    }

    #[test]
    fn queries_keep_repeated_names() {
        let q = Query::parse(Some("tagKeys=a&tagKeys=b%20c&MaxItems=2&x+y=1"));
        assert_eq!(q.all("tagKeys"), ["a", "b c"]);
        assert_eq!(q.count("MaxItems").unwrap(), Some(2));
        assert_eq!(q.get("x y").as_deref(), Some("1"));
        assert!(Query::parse(Some("MaxItems=two")).count("MaxItems").is_err());
    }
}
