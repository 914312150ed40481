//! Peeking at headers, refusing what is not a JWS, and time claims at
//! the leeway boundary.

use super::*;

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn peeks_header_and_issuer() {
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"ES256","kid":"k1"}"#),
        b64(r#"{"iss":"https://idp","sub":"x"}"#)
    );
    let peeked = peek(&token).unwrap();
    assert_eq!(peeked.algorithm, Algorithm::ES256);
    assert_eq!(peeked.kid.as_deref(), Some("k1"));
    assert_eq!(peeked.issuer.as_deref(), Some("https://idp"));
}

#[test]
fn refuses_what_is_not_a_jws() {
    let h = b64(r#"{"alg":"RS256"}"#);
    let p = b64(r#"{"iss":"x"}"#);
    for token in [
        "abc".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}.s.x.y"),
        format!("{h}.!!!.sig"),
        format!("{}.{p}.sig", b64("not json")),
    ] {
        assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed), "{token}");
    }
}

/// Found by the `jws` fuzz target: `peek` took headers that
/// `is_jws_shaped` refuses: invalid UTF-8 in a member `peek` skips
/// (the repeated-member check now reads every member) and a JSON array.
#[test]
fn header_and_payload_must_be_utf8_json_objects() {
    let payload = b64(r#"{"iss":"x"}"#);
    let bad_utf8 = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"x\":\"\xff\"}");
    let array = b64(r#"["RS256","k1"]"#);
    for header in [bad_utf8, array] {
        let token = format!("{header}.{payload}.sig");
        assert!(!is_jws_shaped(&token));
        assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
    }
    let header = b64(r#"{"alg":"RS256"}"#);
    let bad_payload = URL_SAFE_NO_PAD.encode(b"{\"iss\":\"x\",\"y\":\"\xff\"}");
    for payload in [bad_payload, b64(r#"["x"]"#)] {
        let token = format!("{header}.{payload}.sig");
        assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
    }
}

#[test]
fn alg_none_in_any_casing_is_disallowed() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
        assert_eq!(peek(&token).err(), Some(TokenProblem::DisallowedAlgorithm));
    }
}

#[test]
fn crit_header_is_refused() {
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"ES256","crit":["exp"]}"#),
        b64("{}")
    );
    assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
}

#[test]
fn repeated_member_names_are_malformed() {
    for (header, payload) in [
        (
            r#"{"alg":"none","alg":"ES256"}"#,
            r#"{"iss":"https://idp"}"#,
        ),
        (
            r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
            r#"{"iss":"https://idp"}"#,
        ),
        (
            r#"{"alg":"ES256"}"#,
            r#"{"iss":"https://idp","scope":"a","scope":"b"}"#,
        ),
        (
            r#"{"alg":"ES256"}"#,
            r#"{"iss":"https://idp","x":{"r":1,"r":2}}"#,
        ),
    ] {
        let token = format!("{}.{}.sig", b64(header), b64(payload));
        assert_eq!(
            peek(&token).err(),
            Some(TokenProblem::Malformed),
            "{header} {payload}"
        );
        // Still a JWS, never mistaken for an opaque token.
        assert!(is_jws_shaped(&token));
    }
}

fn times(claims: serde_json::Value) -> Map<String, Value> {
    match claims {
        Value::Object(map) => map,
        _ => panic!("claims must be an object"),
    }
}

#[test]
fn time_claims_count_as_written_at_the_leeway_boundary() {
    use serde_json::json;
    let (now, leeway) = (1_000_000, 30);
    let check = |claims| check_times(&times(claims), now, leeway);
    assert_eq!(check(json!({"exp": now - leeway})), Ok(()));
    assert_eq!(
        check(json!({"exp": now - leeway - 1})),
        Err(TokenProblem::Expired)
    );
    // jsonwebtoken would round this up to `now - leeway` and accept it.
    assert_eq!(
        check(json!({"exp": (now - leeway) as f64 - 0.5})),
        Err(TokenProblem::Expired)
    );
    assert_eq!(check(json!({"exp": (now + 300) as f64 + 0.5})), Ok(()));
    for name in ["nbf", "iat"] {
        assert_eq!(check(json!({"exp": now + 300, name: now + leeway})), Ok(()));
        assert_eq!(
            check(json!({"exp": now + 300, name: now + leeway + 1})),
            Err(TokenProblem::NotYetValid)
        );
        // jsonwebtoken would round this down to `now + leeway` and accept it.
        assert_eq!(
            check(json!({"exp": now + 300, name: (now + leeway) as f64 + 0.4})),
            Err(TokenProblem::NotYetValid)
        );
        assert_eq!(
            check(json!({"exp": now + 300, name: "soon"})),
            Err(TokenProblem::InvalidClaims)
        );
    }
}

#[test]
fn non_string_issuer_is_invalid() {
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"ES256"}"#),
        b64(r#"{"iss":["a"]}"#)
    );
    assert_eq!(peek(&token).err(), Some(TokenProblem::InvalidClaims));
}
