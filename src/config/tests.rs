//! Config loading and validation: every refusal names its field.

// figment::Jail closures return figment::Error by value, as its API requires.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::*;

const KEYS: &str = "../../tests/fixtures/keys/jwks.json";

fn minimal(extra_provider: &str, routes: &str) -> String {
    format!(
        "providers:\n  - name: a\n    issuer: https://a.example\n    jwks_file: {keys}\n{extra_provider}\nroutes:\n{routes}",
        keys = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keys/jwks.json")
            .display(),
    )
}

const ONE_ROUTE: &str = "  - name: r\n    match: { path: { prefix: / } }\n";

/// The minimal config with `setting` (YAML lines) added to its provider.
fn with_provider_setting(setting: &str) -> String {
    minimal("", ONE_ROUTE).replace("jwks_file", &format!("{setting}\n    jwks_file"))
}

fn refuse(yaml: &str) -> String {
    match Config::from_yaml(yaml, Path::new(".")) {
        Ok(_) => panic!("config should be refused:\n{yaml}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn loads_the_quickstart_and_defaults() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = Config::load(&base.join("quickstart.yaml")).unwrap();
    assert_eq!(config.server.grpc_listen.to_string(), "127.0.0.1:9191");
    assert_eq!(config.token_sources, [TokenSource::authorization_bearer()]);
    assert_eq!(config.providers.len(), 1);
    let dev = &config.providers[0];
    assert_eq!(dev.leeway, Duration::from_secs(30));
    assert_eq!(&*dev.scope_claims, ["scope", "scp"]);
    assert!(
        !dev.jwt
            .as_ref()
            .unwrap()
            .algorithms
            .contains(&Algorithm::HS256)
    );
    assert!(
        dev.jwt
            .as_ref()
            .unwrap()
            .algorithms
            .contains(&Algorithm::ES256)
    );
    assert_eq!(config.routes.len(), 3);
    assert!(config.routes[1].policy.remove_token_header);
    assert!(!config.allow_unmatched);
}

#[test]
fn default_listen_address_is_all_interfaces_9191() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(config.server.grpc_listen.to_string(), "0.0.0.0:9191");
}

#[test]
fn relative_key_files_resolve_against_the_config_folder() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let yaml =
        format!("providers:\n  - {{name: a, issuer: x, jwks_file: {KEYS}}}\nroutes:\n{ONE_ROUTE}");
    assert!(Config::from_yaml(&yaml, &base).is_ok());
    assert!(refuse(&yaml).contains("providers[0].jwks_file"));
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let error = refuse("providers:\n  - name: a\n    isuer: x\n");
    assert!(error.contains("isuer"), "{error}");
    let error = refuse("server:\n  grpc_listn: 1.2.3.4:1\n");
    assert!(error.contains("grpc_listn"), "{error}");
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        (with_provider_setting("leeway: 30"), "providers[0].leeway"),
        (with_provider_setting("leeway: 10m"), "providers[0].leeway"),
        (
            with_provider_setting("algorithms: [none]"),
            "providers[0].algorithms",
        ),
        (
            with_provider_setting("algorithms: [HS256]"),
            "providers[0].algorithms",
        ),
        (
            with_provider_setting("algorithms: [RS999]"),
            "providers[0].algorithms",
        ),
        (with_provider_setting("discovery: true"), "providers[0]"),
        (
            minimal(
                "  - {name: b, issuer: y, jwks_uri: 'http://keys.example.com/jwks'}",
                ONE_ROUTE,
            ),
            "providers[1].jwks_uri",
        ),
        (
            minimal("  - {name: a, issuer: y, jwks_uri: 'https://k'}", ONE_ROUTE),
            "providers[1].name",
        ),
        (
            minimal(
                "  - {name: b, issuer: 'https://a.example', jwks_uri: 'https://k'}",
                ONE_ROUTE,
            ),
            "providers[1].issuer",
        ),
        (
            minimal("  - {name: b, issuer: y}", ONE_ROUTE),
            "providers[1]",
        ),
        (
            minimal("", "  - {name: r, match: {path: {regex: '(['}}}\n"),
            "routes[0].match.path",
        ),
        (
            minimal("", "  - {name: r, match: {path: {exact: 'no-slash'}}}\n"),
            "routes[0].match.path",
        ),
        (
            minimal("", "  - {name: r, match: {hosts: ['a.*.com']}}\n"),
            "routes[0].match.hosts",
        ),
        (
            minimal("", "  - {name: r, providers: [nope]}\n"),
            "routes[0].providers",
        ),
        (
            minimal("", "  - {name: r}\n  - {name: r}\n"),
            "routes[1].name",
        ),
        (
            minimal("", "  - {name: r, require: {scopes: ['two words']}}\n"),
            "routes[0].require.scopes",
        ),
        (
            minimal(
                "",
                "  - {name: r, anonymous: true, require: {scopes: [a]}}\n",
            ),
            "routes[0].require",
        ),
        (
            minimal(
                "",
                "  - {name: r, require: {claims: [{claim: a, equals: 1, contains: 2}]}}\n",
            ),
            "routes[0].require.claims[0]",
        ),
        (
            minimal("", "  - {name: r, upstream_headers: {host: sub}}\n"),
            "routes[0].upstream_headers.host",
        ),
        (
            format!("server: {{grpc_listen: nine}}\n{}", minimal("", ONE_ROUTE)),
            "server.grpc_listen",
        ),
        (
            format!("token_sources: []\n{}", minimal("", ONE_ROUTE)),
            "token_sources",
        ),
        (
            format!(
                "token_sources: [{{header: a, query: b}}]\n{}",
                minimal("", ONE_ROUTE)
            ),
            "token_sources[0]",
        ),
        (
            format!(
                "token_sources: [{{query: q, scheme: Bearer}}]\n{}",
                minimal("", ONE_ROUTE)
            ),
            "token_sources[0]",
        ),
    ];
    for (yaml, field) in cases {
        let error = refuse(&yaml);
        assert!(
            error.starts_with(field),
            "expected `{field}` first in: {error}\n{yaml}"
        );
    }
}

#[test]
fn a_route_needs_a_provider_unless_anonymous() {
    let yaml = "routes:\n  - {name: r}\n";
    assert!(refuse(yaml).starts_with("routes[0].providers"));
    assert!(Config::from_yaml("routes:\n  - {name: r, anonymous: true}\n", Path::new(".")).is_ok());
}

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
            let jwt = config.providers[i].jwt.as_ref().unwrap();
            jwt.hmac_secret.as_ref().map(|s| s.expose().to_vec())
        };
        assert_eq!(secret(0).as_deref(), Some(SECRET_32.as_bytes()));
        assert_eq!(secret(1).as_deref(), Some(SECRET_48.as_bytes()));
        // Each secret enables the HMAC algorithms it is long enough for.
        assert_eq!(
            config.providers[0].jwt.as_ref().unwrap().algorithms,
            [Algorithm::HS256]
        );
        assert_eq!(
            config.providers[1].jwt.as_ref().unwrap().algorithms,
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
fn environment_overrides_scalar_settings() {
    Jail::expect_with(|jail| {
        jail.create_file("tollgate.yaml", &minimal("", ONE_ROUTE))?;
        jail.set_env("TOLLGATE_SERVER__GRPC_LISTEN", "127.0.0.1:7000");
        jail.set_env("TOLLGATE_LOG__FORMAT", "json");
        // Not a config section: must be ignored, not refused as unknown.
        jail.set_env("TOLLGATE_ENVOY_BIN", "/nowhere");
        let config =
            Config::load(&jail.directory().join("tollgate.yaml")).map_err(|e| e.to_string())?;
        assert_eq!(config.server.grpc_listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.log.format, LogFormat::Json);
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error_not_an_empty_config() {
    // The CLI puts the path in front; the error says what went wrong.
    let error = Config::load(Path::new("/definitely/not/here.yaml")).err();
    assert!(
        matches!(&error, Some(ConfigError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
}

#[test]
fn validation_is_explicit() {
    let config =
        Config::from_yaml(&with_provider_setting("audiences: [api]"), Path::new(".")).unwrap();
    let v = config.providers[0].validation(Algorithm::ES256);
    assert!(v.validate_nbf && v.validate_exp);
    assert_eq!(v.leeway, 30);
    assert_eq!(v.algorithms, [Algorithm::ES256]);
    assert!(v.required_spec_claims.contains("aud") && v.required_spec_claims.contains("iss"));
    assert!(
        v.iss
            .as_ref()
            .is_some_and(|i| i.contains("https://a.example"))
    );
}

#[test]
fn the_annotated_example_loads() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "TOLLGATE_INTERNAL_HMAC",
            "a-secret-of-at-least-thirty-two-bytes",
        );
        jail.set_env("TOLLGATE_INTROSPECTION_SECRET", "introspection-secret");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tollgate.yaml");
        let config = Config::load(&path).map_err(|e| e.to_string())?;
        assert_eq!(config.providers.len(), 5);
        assert!(config.providers[3].introspection.is_some());
        assert_eq!(config.token_sources.len(), 5);
        assert!(config.identity.is_some());
        assert!(config.routes[1].policy.output.identity.is_some());
        Ok(())
    });
}

#[test]
fn identity_headers_default_to_subject_client_and_scopes_and_can_be_turned_off() {
    let names = |config: &Config| -> Vec<String> {
        config.routes[0]
            .policy
            .upstream_headers
            .iter()
            .map(|m| format!("{}<-{}", m.header, m.claim))
            .collect()
    };
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(
        names(&config),
        [
            "x-auth-client-id<-client_id",
            "x-auth-scopes<-scope",
            "x-auth-subject<-sub"
        ]
    );
    let off = format!(
        "defaults: {{upstream_headers: {{}}}}\n{}",
        minimal("", ONE_ROUTE)
    );
    let config = Config::from_yaml(&off, Path::new(".")).unwrap();
    assert!(names(&config).is_empty());
}

#[test]
fn likely_typos_in_routes_draw_warnings() {
    let routes = concat!(
        "  - {name: a, match: {methods: [PSOT], path: {prefix: '/api/*'}}}\n",
        "  - {name: b, match: {methods: [get, PROPFIND], path: {exact: '/x'}}}\n",
    );
    let config = Config::from_yaml(&minimal("", routes), Path::new(".")).unwrap();
    let about = |field: &str| {
        config
            .warnings
            .iter()
            .filter(|w| w.starts_with(field))
            .count()
    };
    assert_eq!(about("routes[0].match.methods"), 1, "{:?}", config.warnings);
    assert_eq!(about("routes[0].match.path"), 1, "{:?}", config.warnings);
    assert_eq!(about("routes[1]"), 0, "{:?}", config.warnings);
}

#[test]
fn log_levels_are_levels_or_filters() {
    let with_level = |level: &str| format!("log: {{level: '{level}'}}\n{}", minimal("", ONE_ROUTE));
    for good in ["info", "WARN", "tollgate=debug,info", "off"] {
        assert!(
            Config::from_yaml(&with_level(good), Path::new(".")).is_ok(),
            "{good}"
        );
    }
    for bad in ["infoo", "verbose", "tollgate=[", "info,loud"] {
        assert!(refuse(&with_level(bad)).starts_with("log.level"), "{bad}");
    }
}

#[test]
fn the_claim_separator_cannot_be_empty() {
    let yaml = format!(
        "defaults: {{claim_separator: ''}}\n{}",
        minimal("", ONE_ROUTE)
    );
    assert!(refuse(&yaml).starts_with("defaults.claim_separator"));
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

#[test]
fn routes_with_path_parameters_need_keep() {
    let odata = "  - {name: r, match: {path: {prefix: '/sap/ZORDERS_SRV;v=0002'}}}\n";
    assert!(refuse(&minimal("", odata)).starts_with("routes[0].match.path"));
    let keep = format!("server: {{path_parameters: keep}}\n{}", minimal("", odata));
    let config = Config::from_yaml(&keep, Path::new(".")).unwrap();
    assert_eq!(config.server.path_parameters, PathParameters::Keep);
    let regex = "  - {name: r, match: {path: {regex: '/cars;color=[a-z]+'}}}\n";
    let config = Config::from_yaml(&minimal("", regex), Path::new(".")).unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.starts_with("routes[0].match.path"))
    );
}

#[test]
fn output_settings_errors_name_the_field() {
    let cases = [
        (
            "routes:\n  - name: r\n    anonymous: true\n    static_headers: {x-a: \"bad\\r\\nvalue\"}\n",
            "routes[0].static_headers.x-a",
        ),
        (
            "routes:\n  - name: r\n    anonymous: true\n    remove_headers: [host]\n",
            "routes[0].remove_headers",
        ),
        (
            "defaults:\n  deny: {realm: 'a\"b'}\nroutes: []\n",
            "defaults.deny.realm",
        ),
        (
            "routes:\n  - name: r\n    anonymous: true\n    upstream_identity: {audience: orders}\n",
            "routes[0].upstream_identity",
        ),
        (
            "identity: {issuer: tg, signing_key: {file: tests/fixtures/keys/rsa-2048.pem}, algorithm: RS256, kid: k}\n",
            "identity.algorithm",
        ),
        (
            "identity: {issuer: tg, signing_key: {file: tests/fixtures/keys/rsa-2048.pem}, algorithm: ES256, kid: k}\n",
            "identity.signing_key",
        ),
        (
            "server: {http_enabled: true, http_listen: nope}\n",
            "server.http_listen",
        ),
        (
            "server: {http_path_prefix: authz}\n",
            "server.http_path_prefix",
        ),
    ];
    for (yaml, field) in cases {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        match Config::from_yaml(yaml, base) {
            Err(ConfigError::Invalid { field: got, .. }) => assert_eq!(got, field, "{yaml}"),
            Err(other) => panic!("{yaml}: expected an invalid {field}, got {other}"),
            Ok(_) => panic!("{yaml}: accepted"),
        }
    }
}

#[test]
fn identity_and_preset_headers_are_identity_headers() {
    let yaml = "identity: {issuer: tg, signing_key: {file: tests/fixtures/keys/ed25519.pem}, algorithm: EdDSA, kid: k}\n\
                providers: [{name: p, issuer: 'https://p', jwks_file: tests/fixtures/keys/jwks.json}]\n\
                routes:\n  - name: r\n    header_preset: oauth2_proxy\n    upstream_identity: {audience: orders}\n";
    let config = Config::from_yaml(yaml, std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    for header in [
        "x-tollgate-identity",
        "x-auth-request-access-token",
        "x-auth-request-user",
    ] {
        assert!(
            config.identity_headers.contains(&header.to_owned()),
            "{header} in {:?}",
            config.identity_headers
        );
    }
    assert_eq!(
        config.server.http_listen, None,
        "HTTP mode is off by default"
    );
    assert_eq!(config.server.admin_listen.port(), 9193);
}

#[test]
fn operations_settings_have_defaults_and_refusals_name_their_field() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(config.server.max_headers, 200);
    assert_eq!(config.server.max_concurrent_checks, 10_000);
    assert_eq!(config.server.check_timeout, Duration::from_secs(10));
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(10));
    assert!(config.server.tls.is_none());
    assert!(config.server.idp_ca_certificates.is_empty());

    let server = |lines: &str| format!("server:\n{lines}\n{}", minimal("", ONE_ROUTE));
    let set = Config::from_yaml(
        &server("  shutdown_grace: 500ms\n  check_timeout: 2s\n  max_headers: 50"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(set.server.shutdown_grace, Duration::from_millis(500));
    assert_eq!(set.server.check_timeout, Duration::from_secs(2));
    assert_eq!(set.server.max_headers, 50);

    for (lines, field) in [
        ("  max_concurrent_checks: 0", "server.max_concurrent_checks"),
        ("  max_headers: 0", "server.max_headers"),
        ("  check_timeout: 0s", "server.check_timeout"),
        ("  shutdown_grace: 10", "server.shutdown_grace"),
        (
            "  tls: { cert_file: missing.crt, key_file: missing.key }",
            "server.tls",
        ),
        ("  tls: { cert_file: a.crt }", "server.tls"),
        ("  idp_ca_file: missing.pem", "server.idp_ca_file"),
    ] {
        let error = refuse(&server(lines));
        assert!(error.starts_with(field), "{lines}: {error}");
    }
}

#[test]
fn tls_files_load_and_a_key_that_does_not_match_is_refused() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let yaml = |cert: &str, key: &str| {
        format!(
            "server:\n  tls: {{ cert_file: {cert}, key_file: {key}, client_ca_file: ca.crt }}\n  idp_ca_file: ca.crt\n{}",
            minimal("", ONE_ROUTE)
        )
    };
    let config = Config::from_yaml(&yaml("server.crt", "server.key"), &tls).unwrap();
    let settings = config.server.tls.expect("TLS settings");
    assert_eq!(settings.client_ca_file, Some(tls.join("ca.crt")));
    assert_eq!(config.server.idp_ca_certificates.len(), 1);
    assert_eq!(config.providers[0].idp_ca_certificates.len(), 1);

    let error = Config::from_yaml(&yaml("server.crt", "server-2.key"), &tls)
        .err()
        .expect("a key of another certificate is refused")
        .to_string();
    assert!(error.starts_with("server.tls"), "{error}");
}
