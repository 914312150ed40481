//! Repeated member names in JOSE JSON. RFC 7515 §5.2 and RFC 7519 §4 let a
//! parser either refuse a JOSE header or claims set that repeats a name, or
//! keep the last one. serde_json keeps the last; an IdP or another
//! validator may keep the first, and then one token means two things (two
//! `alg`s, two `scope`s). tollgate refuses such tokens instead of choosing.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Whether `json` is one JSON text in which no object, at any depth,
/// repeats a member name. Names are compared unescaped, so `"sc\u006fpe"`
/// repeats `"scope"`. Text serde_json refuses (bad UTF-8, nesting deeper
/// than its limit) is not unique either.
pub(crate) fn has_unique_members(json: &[u8]) -> bool {
    serde_json::from_slice::<Unique>(json).is_ok()
}

/// A JSON value whose objects all have distinct member names.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value without repeated member names")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Unique, A::Error> {
        while items.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Unique, A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = members.next_key::<String>()? {
            if !names.insert(name) {
                return Err(de::Error::custom("repeated member name"));
            }
            members.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::has_unique_members;

    #[test]
    fn distinct_names_at_every_depth_are_unique() {
        for json in [
            r#"{"alg":"ES256","kid":"k1"}"#,
            r#"{"scope":"read","realm_access":{"roles":["a","b"]},"aud":["x","y"]}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#"{"a":{"a":{"a":null}}}"#,
            r#""just a string""#,
        ] {
            assert!(has_unique_members(json.as_bytes()), "{json}");
        }
    }

    #[test]
    fn a_repeated_name_anywhere_is_refused() {
        for json in [
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"scope":"read","exp":1,"scope":"admin"}"#,
            r#"{"realm_access":{"roles":["user"],"roles":["admin"]}}"#,
            r#"{"list":[{"a":1,"a":2}]}"#,
            // The same name once escaped: serde_json unescapes both.
            r#"{"scope":"read","sc\u006fpe":"admin"}"#,
        ] {
            assert!(!has_unique_members(json.as_bytes()), "{json}");
        }
    }

    #[test]
    fn what_is_not_one_json_text_is_refused() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        for json in [
            b"{\"a\":1}{\"b\":2}".as_slice(),
            b"{\"a\":\"\xff\"}",
            b"{\"a\":",
            deep.as_bytes(),
        ] {
            assert!(
                !has_unique_members(json),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
