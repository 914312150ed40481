//! The machinery of the registry: metric families keyed by label values,
//! counters, gauges and fixed-bucket histograms, and their text exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms: a local JWT check takes
/// well under a millisecond, an IdP round trip tens of milliseconds.
pub(super) const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Label values, in the order of the family's label names.
pub(super) type Labels = Box<[String]>;

/// One metric name with its series, one per distinct label set.
pub(super) struct Family<M> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    // Read on every record to find the series, written once per new label
    // set; held only to look up or insert an `Arc`, never across an await.
    series: RwLock<BTreeMap<Labels, Arc<M>>>,
}

impl<M: Default> Family<M> {
    pub(super) const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            labels,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    pub(super) fn get(&self, values: &[&str]) -> Arc<M> {
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

    pub(super) fn snapshot(&self) -> Vec<(Labels, Arc<M>)> {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, metric)| (key.clone(), Arc::clone(metric)))
            .collect()
    }

    pub(super) fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` with `extra` appended (for `le`), or nothing.
    pub(super) fn label_text(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
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
pub(super) struct Counter(pub(super) AtomicU64);

/// A value that goes up and down, stored as `f64` bits.
#[derive(Default)]
pub(super) struct Gauge(AtomicU64);

impl Gauge {
    pub(super) fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub(super) fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into [`LATENCY_BUCKETS`].
#[derive(Default)]
pub(super) struct Histogram {
    /// Non-cumulative count per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub(super) fn observe(&self, duration: Duration) {
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

pub(super) fn increment(family: &Family<Counter>, values: &[&str]) {
    family.get(values).0.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn render_counters(out: &mut String, family: &Family<Counter>) {
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

pub(super) fn render_gauges(out: &mut String, family: &Family<Gauge>) {
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

pub(super) fn render_histograms(out: &mut String, family: &Family<Histogram>) {
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
pub(super) fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
