//! The `binding:` section and a route's `require.binding`.

use super::*;
use crate::binding::{BindingSettings, CertificateSource, RouteBinding};

fn with_binding(section: &str, routes: &str) -> String {
    format!("binding:\n{section}\n{}", minimal("", routes))
}

#[test]
fn defaults_read_the_peer_certificate_and_accept_every_asymmetric_algorithm() {
    let config = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert_eq!(config.authz.binding, BindingSettings::default());
    assert_eq!(
        config.authz.binding.certificate_sources,
        [CertificateSource::Peer]
    );
    assert!(
        !config
            .authz
            .binding
            .dpop
            .algorithms
            .contains(&Algorithm::HS256)
    );
    assert_eq!(config.authz.routes[0].policy.binding, RouteBinding::None);
}

#[test]
fn the_section_is_read_as_written() {
    let yaml = with_binding(
        "  client_certificate: {sources: [xfcc, peer]}\n  dpop: {algorithms: [ES256, EdDSA], max_age: 30s, leeway: 2s, replay_cache_entries: 10, nonce: {lifetime: 1m}}",
        "  - {name: r, require: {binding: any_bound}}\n  - {name: d, require: {binding: dpop}}\n  - {name: m, require: {binding: mtls}}\n",
    );
    let config = Config::from_yaml(&yaml, Path::new(".")).unwrap();
    let binding = &config.authz.binding;
    assert_eq!(
        binding.certificate_sources,
        [CertificateSource::ForwardedHeader, CertificateSource::Peer]
    );
    assert_eq!(
        binding.dpop.algorithms,
        [Algorithm::ES256, Algorithm::EdDSA]
    );
    assert_eq!(binding.dpop.max_age, Duration::from_secs(30));
    assert_eq!(binding.dpop.leeway, Duration::from_secs(2));
    assert_eq!(binding.dpop.replay_cache_entries, 10);
    let nonce = binding.dpop.nonce.as_ref().unwrap();
    assert_eq!(
        (nonce.lifetime, nonce.secret.is_some()),
        (Duration::from_secs(60), false)
    );
    let routes: Vec<_> = config
        .authz
        .routes
        .iter()
        .map(|r| r.policy.binding)
        .collect();
    assert_eq!(
        routes,
        [
            RouteBinding::AnyBound,
            RouteBinding::Dpop,
            RouteBinding::Mtls
        ]
    );
}

#[test]
fn refusals_name_the_field() {
    for (section, field) in [
        ("  dpop: {algorithms: [HS256]}", "binding.dpop.algorithms"),
        ("  dpop: {algorithms: [none]}", "binding.dpop.algorithms"),
        ("  dpop: {algorithms: []}", "binding.dpop.algorithms"),
        ("  dpop: {max_age: 0s}", "binding.dpop.max_age"),
        ("  dpop: {max_age: 1h}", "binding.dpop.max_age"),
        ("  dpop: {leeway: 10m}", "binding.dpop.leeway"),
        (
            "  dpop: {replay_cache_entries: 0}",
            "binding.dpop.replay_cache_entries",
        ),
        (
            "  dpop: {nonce: {lifetime: 1s}}",
            "binding.dpop.nonce.lifetime",
        ),
        (
            "  dpop: {nonce: {secret: {env: TOLLGATE_TEST_UNSET_NONCE_SECRET}}}",
            "binding.dpop.nonce.secret",
        ),
    ] {
        let error = refuse(&with_binding(section, ONE_ROUTE));
        assert!(error.starts_with(field), "{section}: {error}");
    }
    let error = refuse(&with_binding(
        "  client_certificate: {sources: [header]}",
        ONE_ROUTE,
    ));
    assert!(
        error.contains("binding.client_certificate.sources"),
        "{error}"
    );
    let error = refuse(&minimal("", "  - {name: r, require: {binding: bearer}}\n"));
    assert!(error.contains("routes[0].require.binding"), "{error}");
    let error = refuse(&minimal(
        "",
        "  - {name: r, anonymous: true, require: {binding: dpop}}\n",
    ));
    assert!(error.starts_with("routes[0].require"), "{error}");
}

#[test]
fn an_mtls_route_without_a_certificate_source_draws_a_warning() {
    let yaml = with_binding(
        "  client_certificate: {sources: []}",
        "  - {name: m, require: {binding: mtls}}\n",
    );
    let config = Config::from_yaml(&yaml, Path::new(".")).unwrap();
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.starts_with("route `m` requires binding `mtls`")),
        "{:?}",
        config.warnings()
    );
    let with_peer = with_binding(
        "  client_certificate: {sources: [peer]}",
        "  - {name: m, require: {binding: mtls}}\n",
    );
    let config = Config::from_yaml(&with_peer, Path::new(".")).unwrap();
    assert!(
        config
            .warnings()
            .iter()
            .all(|w| !w.contains("binding `mtls`"))
    );
}
