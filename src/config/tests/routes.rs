//! `routes:` and `defaults:`: providers, requirements, header mappings,
//! output settings and what counts as an identity header.

use super::*;

#[test]
fn a_route_needs_a_provider_unless_anonymous() {
    let yaml = "routes:\n  - {name: r}\n";
    assert!(refuse(yaml).starts_with("routes[0].providers"));
    assert!(Config::from_yaml("routes:\n  - {name: r, anonymous: true}\n", Path::new(".")).is_ok());
}

#[test]
fn identity_headers_default_to_subject_client_and_scopes_and_can_be_turned_off() {
    let names = |config: &Config| -> Vec<String> {
        config.authz.routes[0]
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
fn the_claim_separator_cannot_be_empty() {
    let yaml = format!(
        "defaults: {{claim_separator: ''}}\n{}",
        minimal("", ONE_ROUTE)
    );
    assert!(refuse(&yaml).starts_with("defaults.claim_separator"));
}

#[test]
fn routes_with_path_parameters_need_keep() {
    let odata = "  - {name: r, match: {path: {prefix: '/sap/ZORDERS_SRV;v=0002'}}}\n";
    assert!(refuse(&minimal("", odata)).starts_with("routes[0].match.path"));
    let keep = format!("server: {{path_parameters: keep}}\n{}", minimal("", odata));
    let config = Config::from_yaml(&keep, Path::new(".")).unwrap();
    assert_eq!(config.authz.path_parameters, PathParameters::Keep);
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
    let identity_headers = identity_headers(&config);
    for header in [
        "x-tollgate-identity",
        "x-auth-request-access-token",
        "x-auth-request-user",
    ] {
        assert!(
            identity_headers.contains(&header.to_owned()),
            "{header} in {identity_headers:?}"
        );
    }
    assert!(!config.http_mode(), "HTTP mode is off by default");
    assert_eq!(config.server.admin_listen.port(), 9193);
}
