//! Claims: reading values out of a token's claim set by path, the scopes a
//! token grants, the requirements a route places on both, and the
//! NumericDate time claims with the clock they are written in.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

/// Verified claims: a JWT's payload, or an introspection answer's members.
pub(crate) type Claims = Arc<Map<String, Value>>;

/// Seconds since the Unix epoch, the clock JWT claims are written in.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a NumericDate claim cannot be read: present, but not a number of
/// seconds since 1970 that fits 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotANumericDate;

/// A NumericDate claim: absent, or a number in `[0, 2^64)`. Anything else
/// is invalid: a negative date, or one so large (`1e300`) that arithmetic
/// on it saturates, was never issued by an IdP and only probes for
/// overflow (as jsonwebtoken, which reads these as `u64`, refused them).
pub(crate) fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<f64>, NotANumericDate> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(at) if (0.0..U64_LIMIT).contains(&at) => Ok(Some(at)),
            _ => Err(NotANumericDate),
        },
    }
}

/// 2^64: the first NumericDate past what a `u64` holds.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// What is left of `ttl` before `exp` (a NumericDate) passes at `now`:
/// zero once it has, or when `exp` is not a finite number.
pub(crate) fn until_exp(ttl: Duration, exp: &Value, now: u64) -> Duration {
    match exp.as_f64() {
        Some(exp) if exp.is_finite() => {
            let left = (exp - now as f64).clamp(0.0, ttl.as_secs_f64());
            Duration::from_secs_f64(left)
        }
        _ => Duration::ZERO,
    }
}

/// A path into nested claims: `realm_access.roles` is `["realm_access", "roles"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// Splits a dotted path. Keys that themselves hold dots (Auth0's
    /// `https://example.com/roles`) are written as a list in config instead.
    pub(crate) fn dotted(path: &str) -> Result<ClaimPath, String> {
        Self::segments(path.split('.').map(str::to_owned).collect())
    }

    /// A path from explicit segments; none may be empty.
    pub(crate) fn segments(segments: Vec<String>) -> Result<ClaimPath, String> {
        if segments.is_empty() || segments.iter().any(String::is_empty) {
            return Err("a claim path needs non-empty segments".to_owned());
        }
        Ok(ClaimPath(segments))
    }

    /// A path of one top-level key, such as `sub`.
    pub(crate) fn key(name: &str) -> ClaimPath {
        ClaimPath(vec![name.to_owned()])
    }

    /// The value at this path, if every step exists.
    pub(crate) fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        rest.iter()
            .try_fold(claims.get(first)?, |value, key| value.as_object()?.get(key))
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// The scopes a token grants, read from the first of `claim_names` that is
/// present: a space-separated string (RFC 8693 `scope`) or an array of
/// strings (`scp` as Okta and Azure AD send it). A claim of any other type,
/// an array holding anything but strings included, grants nothing: no
/// guessing which of its parts the issuer meant.
pub(crate) fn scopes<'a>(claims: &'a Map<String, Value>, claim_names: &[String]) -> Vec<&'a str> {
    let Some(value) = claim_names.iter().find_map(|name| claims.get(name)) else {
        return Vec::new();
    };
    match value {
        Value::String(list) => list.split_ascii_whitespace().collect(),
        Value::Array(items) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What a route demands of a verified token.
#[derive(Debug, Clone, Default)]
pub(crate) struct Requirements {
    /// Every one of these scopes.
    pub all_scopes: Vec<String>,
    /// At least one of these, when non-empty.
    pub any_scopes: Vec<String>,
    /// Every rule must hold.
    pub claims: Vec<ClaimRule>,
}

/// Why requirements were not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unmet {
    /// A scope of `all_scopes` is missing.
    AllScopes,
    /// None of `any_scopes` was granted.
    AnyScopes,
    /// A claim rule failed; names the claim path for the logs.
    Claim(String),
}

impl Requirements {
    /// Checks granted scopes and claims against the requirements.
    pub(crate) fn check(&self, granted: &[&str], claims: &Map<String, Value>) -> Result<(), Unmet> {
        let has = |scope: &String| granted.iter().any(|g| g == scope);
        if !self.all_scopes.iter().all(has) {
            return Err(Unmet::AllScopes);
        }
        if !self.any_scopes.is_empty() && !self.any_scopes.iter().any(has) {
            return Err(Unmet::AnyScopes);
        }
        match self.claims.iter().find(|rule| !rule.holds(claims)) {
            Some(rule) => Err(Unmet::Claim(rule.path.to_string())),
            None => Ok(()),
        }
    }

    /// The scopes to name in `WWW-Authenticate: ... scope="..."` for a
    /// scope failure: all of `all_scopes` when one was missing, else the
    /// `any_scopes` list (one of which is needed). `None` for claim failures.
    pub(crate) fn scope_hint(&self, unmet: &Unmet) -> Option<String> {
        match unmet {
            Unmet::AllScopes => Some(self.all_scopes.join(" ")),
            Unmet::AnyScopes => Some(self.any_scopes.join(" ")),
            Unmet::Claim(_) => None,
        }
    }
}

/// One condition on one claim.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRule {
    /// Where the claim is.
    pub path: ClaimPath,
    /// What must be true of it.
    pub test: ClaimTest,
}

/// The condition a claim must meet. A missing claim meets none.
#[derive(Debug, Clone)]
pub(crate) enum ClaimTest {
    /// Equal as JSON (a number is not its string form).
    Equals(Value),
    /// The claim is an array holding the value, or a space-separated string
    /// holding it as a word, or equal to it.
    Contains(Value),
    /// Contains at least one of the values.
    ContainsAny(Vec<Value>),
}

impl ClaimRule {
    /// Whether the rule holds for these claims.
    pub(crate) fn holds(&self, claims: &Map<String, Value>) -> bool {
        let Some(actual) = self.path.lookup(claims) else {
            return false;
        };
        match &self.test {
            ClaimTest::Equals(expected) => actual == expected,
            ClaimTest::Contains(expected) => contains(actual, expected),
            ClaimTest::ContainsAny(expected) => expected.iter().any(|e| contains(actual, e)),
        }
    }
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Array(items), _) => items.contains(expected),
        (Value::String(words), Value::String(word)) => {
            words.split_ascii_whitespace().any(|w| w == word)
        }
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test claims must be an object"),
        }
    }

    #[test]
    fn looks_up_nested_keycloak_roles() {
        let c = claims(json!({
            "realm_access": {"roles": ["admin", "user"]},
            "resource_access": {"my.client": {"roles": ["reader"]}}
        }));
        let realm = ClaimPath::dotted("realm_access.roles").unwrap();
        assert_eq!(realm.lookup(&c), Some(&json!(["admin", "user"])));
        let client = ClaimPath::segments(vec![
            "resource_access".into(),
            "my.client".into(),
            "roles".into(),
        ])
        .unwrap();
        assert_eq!(client.lookup(&c), Some(&json!(["reader"])));
        assert_eq!(
            ClaimPath::dotted("realm_access.nope").unwrap().lookup(&c),
            None
        );
        assert_eq!(
            ClaimPath::dotted("realm_access.roles.x")
                .unwrap()
                .lookup(&c),
            None
        );
    }

    #[test]
    fn rejects_empty_path_segments() {
        assert!(ClaimPath::dotted("").is_err());
        assert!(ClaimPath::dotted("a..b").is_err());
        assert!(ClaimPath::segments(vec![]).is_err());
    }

    #[test]
    fn reads_scope_string_and_scp_array() {
        let names = ["scope".to_owned(), "scp".to_owned()];
        assert_eq!(
            scopes(&claims(json!({"scope": "read  write"})), &names),
            ["read", "write"]
        );
        assert_eq!(
            scopes(&claims(json!({"scp": ["read", "write"]})), &names),
            ["read", "write"]
        );
        // An array with anything but strings is the wrong type as a whole.
        assert!(scopes(&claims(json!({"scp": ["read", 7, "write"]})), &names).is_empty());
        assert!(scopes(&claims(json!({"scp": ["read", {"admin": true}]})), &names).is_empty());
        assert!(scopes(&claims(json!({"scp": [1, 2]})), &names).is_empty());
        assert_eq!(scopes(&claims(json!({"scp": "read"})), &names), ["read"]);
        assert!(scopes(&claims(json!({"scope": 42})), &names).is_empty());
        assert!(scopes(&claims(json!({"scope": {"read": true}})), &names).is_empty());
        assert!(scopes(&claims(json!({})), &names).is_empty());
    }

    #[test]
    fn first_present_scope_claim_wins() {
        let names = ["scope".to_owned(), "scp".to_owned()];
        let c = claims(json!({"scope": "read", "scp": ["write"]}));
        assert_eq!(scopes(&c, &names), ["read"]);
    }

    #[test]
    fn checks_all_and_any_scopes() {
        let req = Requirements {
            all_scopes: vec!["read".into()],
            any_scopes: vec!["a".into(), "b".into()],
            claims: vec![],
        };
        let none = Map::new();
        assert_eq!(req.check(&["read", "b"], &none), Ok(()));
        assert_eq!(req.check(&["read"], &none), Err(Unmet::AnyScopes));
        assert_eq!(req.check(&["b"], &none), Err(Unmet::AllScopes));
        assert_eq!(req.scope_hint(&Unmet::AllScopes).as_deref(), Some("read"));
        assert_eq!(req.scope_hint(&Unmet::AnyScopes).as_deref(), Some("a b"));
        assert_eq!(req.scope_hint(&Unmet::Claim("x".into())), None);
    }

    #[test]
    fn checks_claim_rules() {
        let rule = |path: &str, test| ClaimRule {
            path: ClaimPath::dotted(path).unwrap(),
            test,
        };
        let c = claims(json!({
            "azp": "client-a",
            "realm_access": {"roles": ["admin"]},
            "groups": "ops dev",
            "level": 3
        }));
        assert!(rule("azp", ClaimTest::Equals(json!("client-a"))).holds(&c));
        assert!(!rule("azp", ClaimTest::Equals(json!("client-b"))).holds(&c));
        assert!(rule("realm_access.roles", ClaimTest::Contains(json!("admin"))).holds(&c));
        assert!(!rule("realm_access.roles", ClaimTest::Contains(json!("root"))).holds(&c));
        assert!(rule("groups", ClaimTest::Contains(json!("dev"))).holds(&c));
        assert!(!rule("groups", ClaimTest::Contains(json!("de"))).holds(&c));
        assert!(rule("level", ClaimTest::Equals(json!(3))).holds(&c));
        assert!(!rule("level", ClaimTest::Equals(json!("3"))).holds(&c));
        assert!(
            rule(
                "realm_access.roles",
                ClaimTest::ContainsAny(vec![json!("x"), json!("admin")])
            )
            .holds(&c)
        );
        assert!(!rule("missing", ClaimTest::Contains(json!("x"))).holds(&c));

        let req = Requirements {
            claims: vec![rule("azp", ClaimTest::Equals(json!("other")))],
            ..Requirements::default()
        };
        assert_eq!(req.check(&[], &c), Err(Unmet::Claim("azp".into())));
    }

    proptest! {
        #[test]
        fn granted_superset_always_satisfies_all_scopes(
            required in proptest::collection::vec("[a-z:]{1,8}", 0..5),
            extra in proptest::collection::vec("[a-z:]{1,8}", 0..5),
        ) {
            let req = Requirements { all_scopes: required.clone(), ..Requirements::default() };
            let granted: Vec<&str> = required.iter().chain(&extra).map(String::as_str).collect();
            prop_assert_eq!(req.check(&granted, &Map::new()), Ok(()));
        }

        #[test]
        fn scope_string_round_trips(words in proptest::collection::vec("[!-~]{1,12}", 0..6)) {
            let names = ["scope".to_owned()];
            let c = claims(json!({"scope": words.join(" ")}));
            prop_assert_eq!(scopes(&c, &names), words.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
