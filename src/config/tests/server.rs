//! The `server:` section: listener defaults, limits, TLS and the IdP CA.

use super::*;

#[test]
fn default_listen_address_is_all_interfaces_9191() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(config.server.grpc_listen.to_string(), "0.0.0.0:9191");
}

#[test]
fn operations_settings_have_defaults_and_refusals_name_their_field() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(config.authz.limits.max_headers, 200);
    assert_eq!(config.server.limits.max_concurrent, 10_000);
    assert_eq!(config.server.limits.timeout, Duration::from_secs(10));
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(10));
    assert!(config.server.tls.is_none());
    assert!(config.server.idp_roots.is_empty());

    let server = |lines: &str| format!("server:\n{lines}\n{}", minimal("", ONE_ROUTE));
    let set = Config::from_yaml(
        &server("  shutdown_grace: 500ms\n  check_timeout: 2s\n  max_headers: 50"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(set.server.shutdown_grace, Duration::from_millis(500));
    assert_eq!(set.server.limits.timeout, Duration::from_secs(2));
    assert_eq!(set.authz.limits.max_headers, 50);

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
    let loaded = config.server.tls.as_ref().expect("TLS settings");
    assert_eq!(loaded.settings().client_ca_file, Some(tls.join("ca.crt")));
    assert!(loaded.mutual());
    // The server's roots are what every IdP client it builds trusts.
    assert_eq!(config.server.idp_roots.len(), 1);

    let error = Config::from_yaml(&yaml("server.crt", "server-2.key"), &tls)
        .err()
        .expect("a key of another certificate is refused")
        .to_string();
    assert!(error.starts_with("server.tls"), "{error}");
}
