//! Prometheus metrics: a small process-wide registry that the rest of the
//! code records into (`metrics::record_check(...)`), rendered on demand in
//! the Prometheus text exposition format (version 0.0.4) by [`render`].
//!
//! Hand-written rather than the `prometheus-client` crate: tollgate needs
//! counters, gauges and fixed-bucket histograms keyed by a few label values,
//! which is this file; the crate would add its own encoder and derive macros
//! for the same output. Label values come from bounded sets only (configured
//! route and provider names, static reason labels), never from requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `route` label of a check that matched no configured route.
pub(crate) const UNMATCHED_ROUTE: &str = "<unmatched>";

/// Upper bounds (seconds) of the latency histograms: a local JWT check takes
/// well under a millisecond, an IdP round trip tens of milliseconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Label values, in the order of the family's label names.
type Labels = Box<[String]>;

/// One metric name with its series, one per distinct label set.
struct Family<M> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    // Read on every record to find the series, written once per new label
    // set; held only to look up or insert an `Arc`, never across an await.
    series: RwLock<BTreeMap<Labels, Arc<M>>>,
}

impl<M: Default> Family<M> {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            labels,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn get(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key: Labels = values.iter().map(|v| (*v).to_owned()).collect();
        let found = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(Arc::clone);
        if let Some(metric) = found {
            return metric;
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(series.entry(key).or_default())
    }

    fn snapshot(&self) -> Vec<(Labels, Arc<M>)> {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, metric)| (key.clone(), Arc::clone(metric)))
            .collect()
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` with `extra` appended (for `le`), or nothing.
    fn label_text(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
        let pairs: Vec<String> = self
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| (*name, value.as_str()))
            .chain(extra)
            .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
            .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", pairs.join(","))
        }
    }
}

/// A monotonically increasing count.
#[derive(Default)]
struct Counter(AtomicU64);

/// A value that goes up and down, stored as `f64` bits.
#[derive(Default)]
struct Gauge(AtomicU64);

impl Gauge {
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into [`LATENCY_BUCKETS`].
#[derive(Default)]
struct Histogram {
    /// Non-cumulative count per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

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
        render_counters(&mut out, &self.binding_checks);
        out
    }
}

fn increment(family: &Family<Counter>, values: &[&str]) {
    family.get(values).0.fetch_add(1, Ordering::Relaxed);
}

fn render_counters(out: &mut String, family: &Family<Counter>) {
    family.header(out, "counter");
    for (labels, counter) in family.snapshot() {
        let value = counter.0.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{}{} {value}",
            family.name,
            family.label_text(&labels, None)
        );
    }
}

fn render_gauges(out: &mut String, family: &Family<Gauge>) {
    family.header(out, "gauge");
    for (labels, gauge) in family.snapshot() {
        let _ = writeln!(
            out,
            "{}{} {}",
            family.name,
            family.label_text(&labels, None),
            gauge.value()
        );
    }
}

fn render_histograms(out: &mut String, family: &Family<Histogram>) {
    family.header(out, "histogram");
    let name = family.name;
    for (labels, histogram) in family.snapshot() {
        let mut cumulative = 0;
        let bounds = LATENCY_BUCKETS.iter().map(f64::to_string);
        for (slot, bound) in bounds.chain(["+Inf".to_owned()]).enumerate() {
            cumulative += histogram.buckets[slot].load(Ordering::Relaxed);
            let labels = family.label_text(&labels, Some(("le", &bound)));
            let _ = writeln!(out, "{name}_bucket{labels} {cumulative}");
        }
        let plain = family.label_text(&labels, None);
        let sum = Duration::from_nanos(histogram.sum_nanos.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{plain} {}", sum.as_secs_f64());
        let count = histogram.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_count{plain} {count}");
    }
}

/// Label value escaping of the text format: `\`, `"` and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
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
