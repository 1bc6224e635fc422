//! Route keys and how a request picks a route, as API Gateway HTTP APIs do it: the
//! most specific path wins (at the first segment where two routes differ, a literal
//! beats a `{param}`, which beats a greedy `{proxy+}`); between routes of the same
//! path an exact method beats `ANY`; `$default` catches what nothing else does.

use std::cmp::Ordering;

/// The methods a route key may name (`ANY` is [`Method::Any`]).
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Method {
    Any,
    Exact(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: one or more segments, only last.
    Greedy(String),
}

impl Segment {
    /// Specificity at one position: what precedence compares.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

/// A parsed route key: `$default`, or a method (or `ANY`) and a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteKey {
    text: String,
    /// `None` for `$default`.
    template: Option<(Method, Vec<Segment>)>,
}

/// How well a route matches a request; greater is better.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    /// `$default` is below every other route.
    not_default: bool,
    /// The rank of the template's segment at each segment of the request path.
    segments: Vec<u8>,
    exact_method: bool,
}

/// A route that matched, with the values of its path parameters (decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub specificity: Specificity,
    pub params: Vec<(String, String)>,
}

impl RouteKey {
    pub fn parse(text: &str) -> Result<RouteKey, String> {
        if text == "$default" {
            return Ok(RouteKey { text: text.to_string(), template: None });
        }
        let bad = |why: &str| {
            format!(
                "Invalid route key '{text}': {why}. A route key is '$default' or 'METHOD /path' with METHOD one of \
                 ANY, {} and path segments that are literals, {{name}} or a last {{name+}}",
                METHODS.join(", ")
            )
        };
        let (method, path) = text.split_once(' ').ok_or_else(|| bad("no space between method and path"))?;
        let method = match method {
            "ANY" => Method::Any,
            m if METHODS.contains(&m) => Method::Exact(m.to_string()),
            m => return Err(bad(&format!("unknown method '{m}'"))),
        };
        let rest = path.strip_prefix('/').ok_or_else(|| bad("the path must start with /"))?;
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                segments.push(parse_segment(part, i + 1 == parts.len()).map_err(|why| bad(&why))?);
            }
        }
        let mut names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) | Segment::Greedy(n) => Some(n.as_str()),
                Segment::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(&format!("the parameter {{{}}} appears twice", w[0])));
        }
        Ok(RouteKey { text: text.to_string(), template: Some((method, segments)) })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_default(&self) -> bool {
        self.template.is_none()
    }

    /// The key without its parameter names: two keys of the same shape would match
    /// the same requests equally well.
    pub fn shape(&self) -> String {
        match &self.template {
            None => "$default".to_string(),
            Some((method, segments)) => {
                let mut out = match method {
                    Method::Any => "ANY ".to_string(),
                    Method::Exact(m) => format!("{m} "),
                };
                if segments.is_empty() {
                    out.push('/');
                }
                for s in segments {
                    out.push('/');
                    match s {
                        Segment::Literal(l) => out.push_str(l),
                        Segment::Param(_) => out.push_str("{}"),
                        Segment::Greedy(_) => out.push_str("{+}"),
                    }
                }
                out
            }
        }
    }

    /// Whether the key matches a request.
    pub fn matches(&self, method: &str, path: &RequestPath) -> Option<Match> {
        let Some((route_method, template)) = &self.template else {
            return Some(Match {
                specificity: Specificity { not_default: false, segments: Vec::new(), exact_method: false },
                params: Vec::new(),
            });
        };
        let exact_method = match route_method {
            Method::Any => false,
            Method::Exact(m) if m == method => true,
            Method::Exact(_) => return None,
        };
        let request = path.segments.as_ref()?;
        let mut ranks = Vec::with_capacity(request.len());
        let mut params = Vec::new();
        for (i, segment) in template.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = request.get(i..).filter(|r| !r.is_empty())?;
                    if rest.iter().all(String::is_empty) {
                        return None;
                    }
                    ranks.extend(std::iter::repeat_n(segment.rank(), rest.len()));
                    params.push((name.clone(), rest.join("/")));
                    return Some(Match {
                        specificity: Specificity { not_default: true, segments: ranks, exact_method },
                        params,
                    });
                }
                Segment::Literal(literal) => {
                    if request.get(i)? != literal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = request.get(i).filter(|v| !v.is_empty())?;
                    params.push((name.clone(), value.clone()));
                }
            }
            ranks.push(segment.rank());
        }
        if request.len() != template.len() {
            return None;
        }
        Some(Match { specificity: Specificity { not_default: true, segments: ranks, exact_method }, params })
    }
}

/// A request's path, split into percent-decoded segments once for every route.
pub struct RequestPath {
    /// `None` for a path that does not start with `/` (it matches only `$default`).
    segments: Option<Vec<String>>,
}

impl RequestPath {
    /// `path` as received, percent-encoded.
    pub fn new(path: &str) -> RequestPath {
        let segments = path.strip_prefix('/').map(|rest| match rest {
            "" => Vec::new(),
            rest => rest.split('/').map(decode).collect(),
        });
        RequestPath { segments }
    }
}

fn parse_segment(part: &str, last: bool) -> Result<Segment, String> {
    if part.is_empty() {
        return Err("empty path segment (// or a trailing /)".to_string());
    }
    if let Some(inner) = part.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or_else(|| format!("segment '{part}' opens {{ without closing it"))?;
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return Err(format!("parameter name '{name}' must be letters, digits, _, - or ."));
        }
        if greedy && !last {
            return Err(format!("the greedy parameter {{{name}+}} must be the last segment"));
        }
        return Ok(if greedy { Segment::Greedy(name.to_string()) } else { Segment::Param(name.to_string()) });
    }
    if let Some(c) = part.chars().find(|c| matches!(c, '{' | '}' | '?' | '#' | ' ') || c.is_control()) {
        return Err(format!("segment '{part}' contains '{c}'"));
    }
    Ok(Segment::Literal(part.to_string()))
}

/// A path segment, percent-decoded (bytes that do not form UTF-8 are replaced).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The best of several matches; `None` when none matched. Keys of the same shape
/// are refused at creation, so two matches never tie.
pub fn best<T>(candidates: impl IntoIterator<Item = (T, Match)>) -> Option<(T, Match)> {
    candidates.into_iter().fold(None, |best, (item, m)| match &best {
        Some((_, b)) if b.specificity.cmp(&m.specificity) != Ordering::Less => best,
        _ => Some((item, m)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RequestPath {
        RequestPath::new(p)
    }

    fn pick(keys: &[&str], method: &str, path: &str) -> Option<String> {
        let parsed: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k).unwrap()).collect();
        best(
            parsed.iter().filter_map(|k| k.matches(method, &RequestPath::new(path)).map(|m| (k.text().to_string(), m))),
        )
        .map(|(k, _)| k)
    }

    #[test]
    fn precedence_table() {
        let keys = [
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /pets/dog/{id}",
            "ANY /{proxy+}",
            "POST /",
            "$default",
        ];
        let table = [
            ("GET", "/pets/dog/1", "GET /pets/dog/1"),
            ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),
            ("PUT", "/pets/dog/2", "ANY /pets/dog/{id}"),
            ("PUT", "/pets/dog/1", "ANY /pets/dog/{id}"),
            ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),
            ("GET", "/pets/dog/1/toys", "GET /pets/{proxy+}"),
            ("POST", "/pets/cat", "ANY /{proxy+}"),
            ("DELETE", "/x", "ANY /{proxy+}"),
            ("POST", "/", "POST /"),
            ("GET", "/", "$default"),
            ("HEAD", "/pets/dog/1", "ANY /pets/dog/{id}"),
        ];
        for (method, path, want) in table {
            assert_eq!(pick(&keys, method, path).as_deref(), Some(want), "{method} {path}");
        }
        assert_eq!(pick(&keys[..5], "GET", "/"), None, "greedy needs at least one segment");
        // The path decides before the method: a literal ANY route beats an exact
        // method on a parameter.
        let keys = ["GET /pets/{id}", "ANY /pets/dog", "GET /{kind}/dog"];
        assert_eq!(pick(&keys, "GET", "/pets/dog").as_deref(), Some("ANY /pets/dog"));
        assert_eq!(pick(&keys, "GET", "/pets/cat").as_deref(), Some("GET /pets/{id}"));
        // The first segment where routes differ decides.
        assert_eq!(pick(&keys, "GET", "/cats/dog").as_deref(), Some("GET /{kind}/dog"));
        let keys = ["GET /{a}/b/c", "GET /a/{b}/{c}"];
        assert_eq!(pick(&keys, "GET", "/a/b/c").as_deref(), Some("GET /a/{b}/{c}"));
    }

    #[test]
    fn parameters_are_decoded_and_greedy_takes_the_rest() {
        let k = RouteKey::parse("GET /files/{bucket}/{key+}").unwrap();
        let m = k.matches("GET", &path("/files/my%20b/a/b%2Fc.txt")).unwrap();
        assert_eq!(m.params, vec![("bucket".into(), "my b".into()), ("key".into(), "a/b/c.txt".into())]);
        assert!(k.matches("GET", &path("/files/b")).is_none());
        assert!(k.matches("GET", &path("/files//x")).is_none(), "an empty parameter does not match");
        let d = RouteKey::parse("DELETE /items/{id}").unwrap();
        assert!(d.matches("DELETE", &path("/items/")).is_none());
        assert!(d.matches("DELETE", &path("/items/4/5")).is_none());
        assert!(d.matches("GET", &path("/items/4")).is_none());
    }

    #[test]
    fn keys_are_checked() {
        for bad in [
            "GET",
            "get /x",
            "FETCH /x",
            "GET x",
            "GET /a//b",
            "GET /a/",
            "GET /{proxy+}/x",
            "GET /{a}/{a}",
            "GET /{}",
            "GET /{a",
            "GET /a?b",
            "$DEFAULT",
        ] {
            let e = RouteKey::parse(bad).expect_err(bad);
            assert!(e.contains("Invalid route key"), "{e}");
        }
        for good in ["$default", "ANY /", "GET /", "POST /messages", "GET /a/{b}/{c+}", "OPTIONS /v1.0/x-y_z"] {
            RouteKey::parse(good).expect(good);
        }
    }

    #[test]
    fn shapes_ignore_parameter_names() {
        let a = RouteKey::parse("GET /pets/{id}").unwrap();
        let b = RouteKey::parse("GET /pets/{name}").unwrap();
        let c = RouteKey::parse("ANY /pets/{name}").unwrap();
        assert_eq!(a.shape(), b.shape());
        assert_ne!(a.shape(), c.shape());
        assert_eq!(RouteKey::parse("GET /").unwrap().shape(), "GET /");
    }
}
