//! Each check of RFC 9449 §4.3, one way to fail it at a time.

use serde_json::{Value, json};

use super::*;
use crate::binding::tests::{Client, TOKEN, request};

const URL: &str = "https://api.example.com/orders/1";

fn verifier() -> DpopVerifier {
    DpopVerifier::new(&DpopSettings::default())
}

fn now() -> u64 {
    crate::claims::unix_now()
}

fn check(verifier: &DpopVerifier, proof: &str) -> Result<String, ProofRefusal> {
    verifier.verify(&[proof], &request(), TOKEN, now() as f64)
}

/// The refusal of a proof with `header` and `claims` signed by `client`.
fn refusal(client: &Client, header: Value, claims: Value) -> ProofRefusal {
    let proof = client.sign(&header, &claims);
    check(&verifier(), &proof).expect_err("refused")
}

fn invalid(problem: ProofProblem) -> ProofRefusal {
    ProofRefusal::Invalid(problem)
}

#[test]
fn a_valid_proof_gives_its_key_thumbprint() {
    let client = Client::new();
    let proof = client.proof("GET", URL, TOKEN);
    assert_eq!(check(&verifier(), &proof), Ok(client.thumbprint()));
}

#[test]
fn the_header_must_say_dpop_jwt_with_an_allowed_public_key() {
    let client = Client::new();
    let claims = Client::claims("GET", URL, TOKEN, now());
    let with = |member: &str, value: Value| {
        let mut header = client.header();
        header[member] = value;
        header
    };
    let cases = [
        (with("typ", json!("JWT")), ProofProblem::WrongType),
        (with("typ", json!(null)), ProofProblem::WrongType),
        (
            with("alg", json!("none")),
            ProofProblem::DisallowedAlgorithm,
        ),
        (
            with("alg", json!("HS256")),
            ProofProblem::DisallowedAlgorithm,
        ),
        // An RSA algorithm with an EC key.
        (
            with("alg", json!("RS256")),
            ProofProblem::DisallowedAlgorithm,
        ),
        (with("jwk", json!("key")), ProofProblem::BadKey),
        (with("crit", json!(["exp"])), ProofProblem::Malformed),
    ];
    for (header, expected) in cases {
        assert_eq!(
            refusal(&client, header.clone(), claims.clone()),
            invalid(expected),
            "{header}"
        );
    }
    let mut private = client.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    assert_eq!(
        refusal(&client, with("jwk", private), claims.clone()),
        invalid(ProofProblem::BadKey)
    );
    let no_jwk = json!({"typ": "dpop+jwt", "alg": "ES256"});
    assert_eq!(
        refusal(&client, no_jwk, claims.clone()),
        invalid(ProofProblem::BadKey)
    );
    // RFC 7515 §4: unknown header members are ignored, whatever their type.
    let mut extra = client.header();
    extra["ver"] = json!(2);
    extra["x"] = json!({"nested": [true, null]});
    let proof = client.sign(&extra, &claims);
    assert_eq!(check(&verifier(), &proof), Ok(client.thumbprint()));
}

#[test]
fn the_signature_must_be_by_the_key_in_the_header() {
    let client = Client::new();
    let thief = Client::new();
    let mut header = thief.header();
    header["jwk"] = client.jwk.clone();
    let claims = Client::claims("GET", URL, TOKEN, now());
    assert_eq!(
        refusal(&thief, header, claims),
        invalid(ProofProblem::BadSignature)
    );
    let proof = client.proof("GET", URL, TOKEN);
    let (signed, _) = proof.rsplit_once('.').unwrap();
    assert_eq!(
        check(&verifier(), &format!("{signed}.AAAA")),
        Err(invalid(ProofProblem::BadSignature))
    );
}

#[test]
fn the_proof_must_be_for_this_method_and_url() {
    let client = Client::new();
    let for_url = |method: &str, url: &str| {
        let proof = client.proof(method, url, TOKEN);
        check(&verifier(), &proof).map(|_| ())
    };
    assert_eq!(
        for_url("POST", URL),
        Err(invalid(ProofProblem::WrongMethod))
    );
    assert_eq!(for_url("get", URL), Err(invalid(ProofProblem::WrongMethod)));
    for url in [
        "http://api.example.com/orders/1",
        "https://api.example.com:8443/orders/1",
        "https://other.example.com/orders/1",
        "https://api.example.com/orders/2",
        "https://api.example.com/orders",
        "https://user@api.example.com/orders/1",
        "/orders/1",
        "api.example.com/orders/1",
    ] {
        assert_eq!(
            for_url("GET", url),
            Err(invalid(ProofProblem::WrongUrl)),
            "{url}"
        );
    }
    // Query and fragment are ignored; RFC 3986 §6.2.2-6.2.3 normalisation applies.
    for url in [
        "https://api.example.com/orders/1?page=2#top",
        "HTTPS://API.Example.COM/orders/1",
        "https://api.example.com:443/orders/1",
        "https://api.example.com/orders/./x/../1",
        "https://api.example.com/%6Frders/1",
    ] {
        assert_eq!(for_url("GET", url), Ok(()), "{url}");
    }
}

#[test]
fn iat_must_be_recent_and_not_in_the_future() {
    let client = Client::new();
    let settings = DpopSettings::default();
    let (max_age, leeway) = (settings.max_age.as_secs(), settings.leeway.as_secs());
    for (iat, ok) in [
        (now() - max_age - leeway - 2, false),
        (now() - max_age + 1, true),
        (now() + leeway - 1, true),
        (now() + leeway + 2, false),
    ] {
        let proof = client.sign(&client.header(), &Client::claims("GET", URL, TOKEN, iat));
        let outcome = check(&verifier(), &proof);
        assert_eq!(outcome.is_ok(), ok, "iat {iat}: {outcome:?}");
        if !ok {
            assert_eq!(outcome, Err(invalid(ProofProblem::Stale)));
        }
    }
}

#[test]
fn ath_must_hash_the_token_sent_with_the_proof() {
    let client = Client::new();
    let other_token = client.proof("GET", URL, "another-token");
    assert_eq!(
        check(&verifier(), &other_token),
        Err(invalid(ProofProblem::WrongTokenHash))
    );
    let mut claims = Client::claims("GET", URL, TOKEN, now());
    claims.as_object_mut().unwrap().remove("ath");
    assert_eq!(
        refusal(&client, client.header(), claims),
        invalid(ProofProblem::WrongTokenHash)
    );
}

#[test]
fn required_claims_must_be_there_and_strings() {
    let client = Client::new();
    for (name, value) in [
        ("jti", None),
        ("jti", Some(json!(""))),
        ("jti", Some(json!("j".repeat(300)))),
        ("htm", None),
        ("htu", Some(json!(["https://api.example.com/orders/1"]))),
        ("iat", Some(json!("now"))),
    ] {
        let mut claims = Client::claims("GET", URL, TOKEN, now());
        match value {
            Some(value) => claims[name] = value,
            None => {
                claims.as_object_mut().unwrap().remove(name);
            }
        }
        assert_eq!(
            refusal(&client, client.header(), claims),
            invalid(ProofProblem::Malformed),
            "{name}"
        );
    }
}

#[test]
fn exactly_one_well_formed_proof() {
    let client = Client::new();
    let verifier = verifier();
    let one = client.proof("GET", URL, TOKEN);
    let two = client.proof("GET", URL, TOKEN);
    let request = request();
    let at = now() as f64;
    assert_eq!(
        verifier.verify(&[], &request, TOKEN, at),
        Err(invalid(ProofProblem::Missing))
    );
    assert_eq!(
        verifier.verify(&[&one, &two], &request, TOKEN, at),
        Err(invalid(ProofProblem::Malformed))
    );
    let joined = format!("{one}, {two}");
    assert_eq!(
        verifier.verify(&[&joined], &request, TOKEN, at),
        Err(invalid(ProofProblem::Malformed))
    );
    for junk in ["", "a.b", "a.b.c", &"x".repeat(MAX_PROOF_BYTES + 1)] {
        assert_eq!(
            verifier.verify(&[junk], &request, TOKEN, at),
            Err(invalid(ProofProblem::Malformed)),
            "{junk}"
        );
    }
    let repeated = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"dpop+jwt","alg":"none","alg":"ES256"}"#),
        URL_SAFE_NO_PAD.encode("{}")
    );
    assert_eq!(
        verifier.verify(&[&repeated], &request, TOKEN, at),
        Err(invalid(ProofProblem::Malformed))
    );
}

#[test]
fn a_proof_is_accepted_once_and_only_after_it_verified() {
    let client = Client::new();
    let verifier = verifier();
    let claims = Client::claims("GET", URL, TOKEN, now());
    // A forgery carrying the real proof's jti does not use it up.
    let thief = Client::new();
    let mut forged_header = thief.header();
    forged_header["jwk"] = client.jwk.clone();
    let forged = thief.sign(&forged_header, &claims);
    assert_eq!(
        check(&verifier, &forged),
        Err(invalid(ProofProblem::BadSignature))
    );
    let proof = client.sign(&client.header(), &claims);
    assert!(check(&verifier, &proof).is_ok());
    assert_eq!(
        check(&verifier, &proof),
        Err(invalid(ProofProblem::Replayed))
    );
    // The same jti from another key is another proof.
    let other = thief.sign(&thief.header(), &claims);
    assert!(check(&verifier, &other).is_ok());
}
