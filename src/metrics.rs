//! Prometheus metrics: a small process-wide registry that the rest of the
//! code records into (`metrics::record_check(...)`), rendered on demand in
//! the Prometheus text exposition format (version 0.0.4) by [`render`].
//!
//! Hand-written rather than the `prometheus-client` crate: tollgate needs
//! counters, gauges and fixed-bucket histograms keyed by a few label values,
//! which is this file; the crate would add its own encoder and derive macros
//! for the same output. Label values come from bounded sets only (configured
//! route and provider names, static reason labels), never from requests.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod audit;
mod clients;
mod family;

pub(crate) use clients::{ClientLabels, NO_CLIENT, OTHER_CLIENT};
use family::{
    Counter, Family, Gauge, Histogram, increment, render_counters, render_gauges, render_histograms,
};

/// The `route` label of a check that matched no configured route.
pub(crate) const UNMATCHED_ROUTE: &str = "<unmatched>";

/// Every metric tollgate exports. [`global`] is the one the server renders;
/// tests may build their own.
pub(crate) struct Registry {
    checks: Family<Counter>,
    check_duration: Family<Histogram>,
    jwks_fetches: Family<Counter>,
    jwks_last_success: Family<Gauge>,
    jwks_keys: Family<Gauge>,
    introspection_requests: Family<Counter>,
    introspection_duration: Family<Histogram>,
    cache_hits: Family<Counter>,
    cache_misses: Family<Counter>,
    cache_entries: Family<Gauge>,
    config_reloads: Family<Counter>,
    /// Per-client checks and the audit stream's counts.
    callers: audit::CallerFamilies,
    binding_checks: Family<Counter>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// An empty registry.
    pub(crate) const fn new() -> Registry {
        Registry {
            checks: Family::new(
                "tollgate_checks_total",
                "Authorization checks answered, by decision (allow, deny, error), reason and configured route.",
                &["decision", "reason", "route"],
            ),
            check_duration: Family::new(
                "tollgate_check_duration_seconds",
                "Time to decide one authorization check.",
                &[],
            ),
            jwks_fetches: Family::new(
                "tollgate_jwks_fetches_total",
                "JWKS (and discovery) fetches, by provider and outcome (success, error).",
                &["provider", "outcome"],
            ),
            jwks_last_success: Family::new(
                "tollgate_jwks_last_success_timestamp_seconds",
                "Unix time of the provider's last successful JWKS fetch.",
                &["provider"],
            ),
            jwks_keys: Family::new(
                "tollgate_jwks_keys",
                "Verification keys loaded for the provider.",
                &["provider"],
            ),
            introspection_requests: Family::new(
                "tollgate_introspection_requests_total",
                "RFC 7662 introspection calls, by provider and outcome.",
                &["provider", "outcome"],
            ),
            introspection_duration: Family::new(
                "tollgate_introspection_duration_seconds",
                "Time of one RFC 7662 introspection call, by provider.",
                &["provider"],
            ),
            cache_hits: Family::new(
                "tollgate_cache_hits_total",
                "Cache lookups that found an entry, by cache.",
                &["cache"],
            ),
            cache_misses: Family::new(
                "tollgate_cache_misses_total",
                "Cache lookups that found no entry, by cache.",
                &["cache"],
            ),
            cache_entries: Family::new(
                "tollgate_cache_entries",
                "Entries in the cache.",
                &["cache"],
            ),
            config_reloads: Family::new(
                "tollgate_config_reloads_total",
                "Configuration reloads, by outcome (success, error).",
                &["outcome"],
            ),
            callers: audit::CallerFamilies::new(),
            binding_checks: Family::new(
                "tollgate_binding_checks_total",
                "Sender-constrained token checks, by binding checked (dpop, mtls, dpop+mtls, none) and result (pass or the deny reason).",
                &["binding", "result"],
            ),
        }
    }

    /// Counts one answered check and its latency. `route` is a configured
    /// route name or [`UNMATCHED_ROUTE`]; `reason` a static label.
    pub(crate) fn record_check(
        &self,
        decision: &str,
        reason: &str,
        route: &str,
        duration: Duration,
    ) {
        increment(&self.checks, &[decision, reason, route]);
        self.check_duration.get(&[]).observe(duration);
    }

    /// Counts one JWKS fetch; a success with `keys` also sets the
    /// last-success time and the key count.
    pub(crate) fn record_jwks_fetch(&self, provider: &str, keys: Option<usize>) {
        let outcome = if keys.is_some() { "success" } else { "error" };
        increment(&self.jwks_fetches, &[provider, outcome]);
        if let Some(count) = keys {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            self.jwks_last_success
                .get(&[provider])
                .set(now.as_secs_f64());
            self.set_jwks_keys(provider, count);
        }
    }

    /// Sets the number of keys a provider verifies with (static keys too).
    pub(crate) fn set_jwks_keys(&self, provider: &str, count: usize) {
        self.jwks_keys.get(&[provider]).set(count as f64);
    }

    /// Counts one introspection call with its outcome (a short static
    /// label such as `active`, `inactive` or `error`) and latency.
    pub(crate) fn record_introspection(&self, provider: &str, outcome: &str, duration: Duration) {
        increment(&self.introspection_requests, &[provider, outcome]);
        self.introspection_duration
            .get(&[provider])
            .observe(duration);
    }

    /// Counts a lookup in the named cache.
    pub(crate) fn record_cache_lookup(&self, cache: &str, hit: bool) {
        let family = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        increment(family, &[cache]);
    }

    /// Sets the number of entries in the named cache.
    pub(crate) fn set_cache_entries(&self, cache: &str, entries: u64) {
        self.cache_entries.get(&[cache]).set(entries as f64);
    }

    /// Counts a configuration reload attempt.
    pub(crate) fn record_config_reload(&self, success: bool) {
        let outcome = if success { "success" } else { "error" };
        increment(&self.config_reloads, &[outcome]);
    }

    /// Counts one check of a token's binding; `binding` and `result` are
    /// static labels.
    pub(crate) fn record_binding_check(&self, binding: &str, result: &str) {
        increment(&self.binding_checks, &[binding, result]);
    }

    /// The text exposition of every metric, families in a fixed order and
    /// series sorted by label values.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tollgate_build_info The running tollgate version; always 1.\n");
        out.push_str("# TYPE tollgate_build_info gauge\n");
        let _ = writeln!(
            out,
            "tollgate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        render_counters(&mut out, &self.checks);
        render_histograms(&mut out, &self.check_duration);
        render_counters(&mut out, &self.jwks_fetches);
        render_gauges(&mut out, &self.jwks_last_success);
        render_gauges(&mut out, &self.jwks_keys);
        render_counters(&mut out, &self.introspection_requests);
        render_histograms(&mut out, &self.introspection_duration);
        render_counters(&mut out, &self.cache_hits);
        render_counters(&mut out, &self.cache_misses);
        render_gauges(&mut out, &self.cache_entries);
        render_counters(&mut out, &self.config_reloads);
        self.callers.render(&mut out);
        render_counters(&mut out, &self.binding_checks);
        out
    }
}

static GLOBAL: Registry = Registry::new();

/// The process-wide registry the server renders on `/metrics`.
pub(crate) fn global() -> &'static Registry {
    &GLOBAL
}

/// [`Registry::record_check`] on the [`global`] registry.
pub(crate) fn record_check(decision: &str, reason: &str, route: &str, duration: Duration) {
    global().record_check(decision, reason, route, duration);
}

/// [`Registry::record_jwks_fetch`] on the [`global`] registry.
pub(crate) fn record_jwks_fetch(provider: &str, keys: Option<usize>) {
    global().record_jwks_fetch(provider, keys);
}

/// [`Registry::set_jwks_keys`] on the [`global`] registry.
pub(crate) fn set_jwks_keys(provider: &str, count: usize) {
    global().set_jwks_keys(provider, count);
}

/// [`Registry::record_introspection`] on the [`global`] registry.
pub(crate) fn record_introspection(provider: &str, outcome: &str, duration: Duration) {
    global().record_introspection(provider, outcome, duration);
}

/// [`Registry::record_cache_lookup`] on the [`global`] registry.
pub(crate) fn record_cache_lookup(cache: &str, hit: bool) {
    global().record_cache_lookup(cache, hit);
}

/// [`Registry::set_cache_entries`] on the [`global`] registry.
pub(crate) fn set_cache_entries(cache: &str, entries: u64) {
    global().set_cache_entries(cache, entries);
}

/// [`Registry::record_config_reload`] on the [`global`] registry.
pub(crate) fn record_config_reload(success: bool) {
    global().record_config_reload(success);
}

/// Counts one check under its caller's bounded label (see [`ClientLabels`]).
pub(crate) fn record_client_check(client: &str, decision: &str, route: &str) {
    global()
        .callers
        .record_client_check(client, decision, route);
}

/// Counts `count` audit records exported.
pub(crate) fn record_audit_exported(count: u64) {
    global().callers.record_audit_exported(count);
}

/// Counts `count` audit records dropped for `reason`.
pub(crate) fn record_audit_dropped(reason: &str, count: u64) {
    global().callers.record_audit_dropped(reason, count);
}

/// Sets the number of audit records waiting for export.
pub(crate) fn set_audit_queue(records: usize) {
    global().callers.set_audit_queue(records);
}

/// [`Registry::record_binding_check`] on the [`global`] registry.
pub(crate) fn record_binding_check(binding: &str, result: &str) {
    global().record_binding_check(binding, result);
}

/// The [`global`] registry in the Prometheus text format, for `/metrics`
/// (content type `text/plain; version=0.0.4`).
pub fn render() -> String {
    global().render()
}

#[cfg(test)]
mod tests;
