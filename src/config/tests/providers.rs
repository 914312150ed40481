//! `providers:`: key sources, HMAC secrets, audiences, the validation
//! rules built from them, and the JWKS schedule's floor.

use super::*;

#[test]
fn jwks_skips_unusable_keys_with_a_warning_and_refuses_when_none_remain() {
    let yaml = r#"
providers:
  - name: a
    issuer: x
    jwks: {keys: [{kty: RSA, kid: enc, use: enc, n: AQAB, e: AQAB}]}
routes: [{name: r}]
"#;
    assert!(refuse(yaml).starts_with("providers[0].jwks"));
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/ec-p256-1.jwk.json"),
    )
    .unwrap();
    let yaml = format!(
        "providers:\n  - name: a\n    issuer: x\n    jwks: {{keys: [{good}, {{kty: oct, kid: s, k: c2VjcmV0}}]}}\nroutes: [{{name: r}}]\n"
    );
    let config = Config::from_yaml(&yaml, Path::new(".")).unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("providers[0].jwks") && w.contains("key s skipped")),
        "{:?}",
        config.warnings
    );
}

const SECRET_32: &str = "0123456789abcdef0123456789abcdef";
const SECRET_48: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn hmac_secret_comes_from_env_or_file_and_enables_only_hmac() {
    Jail::expect_with(|jail| {
        jail.set_env("MY_HMAC", SECRET_32);
        jail.create_file("hmac.txt", &format!("{SECRET_48}\n"))?;
        let yaml = "providers:\n  - {name: a, issuer: x, hmac_secret: {env: MY_HMAC}}\n  - {name: b, issuer: y, hmac_secret: {file: hmac.txt}}\nroutes: [{name: r}]\n";
        let config = Config::from_yaml(yaml, jail.directory()).map_err(|e| e.to_string())?;
        let secret = |i: usize| {
            let jwt = config.authz.providers[i].jwt.as_ref().unwrap();
            jwt.hmac_secret.as_ref().map(|s| s.expose().to_vec())
        };
        assert_eq!(secret(0).as_deref(), Some(SECRET_32.as_bytes()));
        assert_eq!(secret(1).as_deref(), Some(SECRET_48.as_bytes()));
        // Each secret enables the HMAC algorithms it is long enough for.
        assert_eq!(
            config.authz.providers[0].jwt.as_ref().unwrap().algorithms,
            [Algorithm::HS256]
        );
        assert_eq!(
            config.authz.providers[1].jwt.as_ref().unwrap().algorithms,
            [Algorithm::HS256, Algorithm::HS384]
        );
        Ok(())
    });
}

#[test]
fn hmac_secrets_shorter_than_the_hash_are_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("SHORT", "s3cret");
        jail.set_env("MID", SECRET_32);
        let short =
            "providers: [{name: a, issuer: x, hmac_secret: {env: SHORT}}]\nroutes: [{name: r}]\n";
        let error = Config::from_yaml(short, jail.directory())
            .err()
            .map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(
                |e| e.starts_with("providers[0].hmac_secret") && e.contains("32 bytes")
            ),
            "{error:?}"
        );
        let hs512 = "providers: [{name: a, issuer: x, hmac_secret: {env: MID}, algorithms: [HS512]}]\nroutes: [{name: r}]\n";
        let error = Config::from_yaml(hs512, jail.directory())
            .err()
            .map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("64 bytes")),
            "{error:?}"
        );
        Ok(())
    });
}

#[test]
fn empty_audiences_are_warned_about() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.starts_with("providers[0].audiences is empty")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn expectations_carry_issuer_audiences_and_leeway() {
    let config =
        Config::from_yaml(&with_provider_setting("audiences: [api]"), Path::new(".")).unwrap();
    let expectations = &config.authz.providers[0].expectations;
    assert_eq!(expectations.issuer.as_deref(), Some("https://a.example"));
    assert_eq!(expectations.audiences, ["api"]);
    assert_eq!(expectations.leeway, std::time::Duration::from_secs(30));
}

#[test]
fn jwks_intervals_have_a_floor() {
    for name in [
        "refresh_interval",
        "min_refresh_interval",
        "retry_interval",
        "unknown_kid_refetch_interval",
    ] {
        let yaml = with_provider_setting(&format!("jwks_cache: {{{name}: 0s}}"));
        assert!(
            refuse(&yaml).starts_with(&format!("providers[0].jwks_cache.{name}")),
            "{name}"
        );
    }
}
