//! Reading the file: the quickstart and the annotated example, relative
//! paths, environment overrides, shape errors and the field they name.

use super::*;

#[test]
fn loads_the_quickstart_and_defaults() {
    // In a jail: `load` reads `TOLLGATE_*` variables, which jailed tests
    // set for the whole process while they run.
    Jail::expect_with(|_| {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let config = Config::load(&base.join("quickstart.yaml")).map_err(|e| e.to_string())?;
        assert_eq!(config.server.grpc_listen.to_string(), "127.0.0.1:9191");
        assert_eq!(
            config.authz.token_sources,
            [TokenSource::authorization_bearer()]
        );
        assert_eq!(config.authz.providers.len(), 1);
        let dev = &config.authz.providers[0];
        assert_eq!(dev.expectations.leeway, Duration::from_secs(30));
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
        assert_eq!(config.authz.routes.len(), 3);
        assert!(config.authz.routes[1].policy.remove_token_header);
        assert!(!config.authz.unmatched.allow);
        Ok(())
    });
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
fn bad_provider_values_name_their_field() {
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
fn bad_route_and_source_values_name_their_field() {
    let cases = [
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
        assert_eq!(config.telemetry.log.format, LogFormat::Json);
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
fn the_annotated_example_loads() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "TOLLGATE_INTERNAL_HMAC",
            "a-secret-of-at-least-thirty-two-bytes",
        );
        jail.set_env("TOLLGATE_INTROSPECTION_SECRET", "introspection-secret");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tollgate.yaml");
        let config = Config::load(&path).map_err(|e| e.to_string())?;
        assert_eq!(config.authz.providers.len(), 5);
        assert!(config.authz.providers[3].introspection.is_some());
        assert_eq!(config.authz.token_sources.len(), 5);
        assert!(config.authz.identity.is_some());
        assert!(config.authz.routes[1].policy.output.identity.is_some());
        Ok(())
    });
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
