//! One audit record: what was decided about which request, for whom, with
//! which key and how fast; its time-ordered decision id; masking of named
//! claims; and its JSON form, which the file sink writes as one line and
//! the OTLP sink turns into log attributes.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::settings::{AuditSettings, Mask, Masking};
use crate::claims::Claims;

/// What a masked value becomes under [`Masking::Redact`].
pub(crate) const REDACTED: &str = "****";

/// One decided check. Built by the check, serialised by the export task.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditRecord {
    /// Also returned to Envoy, so a client's complaint finds this record.
    pub(crate) decision_id: DecisionId,
    /// When the decision was made.
    #[serde(serialize_with = "rfc3339")]
    pub(crate) time: SystemTime,
    /// `allow`, `deny` or `error` (could not decide).
    pub(crate) decision: &'static str,
    /// The deny reason or fault label; none for an allow.
    pub(crate) reason: Option<&'static str>,
    /// The HTTP status a deny answers with; none for an allow or an error.
    pub(crate) status: Option<u16>,
    /// The matched route; none when no route matched.
    #[serde(serialize_with = "shared_text")]
    pub(crate) route: Option<Arc<str>>,
    /// Method, canonical host and path (never the query: it may hold a token).
    pub(crate) method: String,
    pub(crate) host: String,
    pub(crate) path: String,
    /// The provider that vouched for the token.
    #[serde(serialize_with = "shared_text")]
    pub(crate) provider: Option<Arc<str>>,
    /// `sub`, masked when a rule names `sub`.
    pub(crate) subject: Option<String>,
    /// The client id, masked when a rule names `client_id`.
    pub(crate) client_id: Option<String>,
    /// The `kid` of the key that verified the token.
    #[serde(serialize_with = "shared_text")]
    pub(crate) key_id: Option<Arc<str>>,
    /// The sender constraint checked (`dpop`, `mtls`, `dpop+mtls`), if any.
    pub(crate) binding: Option<&'static str>,
    /// Whether the verified-JWT cache answered; none when no JWT was looked up.
    pub(crate) cache_hit: Option<bool>,
    /// Time to decide, in microseconds.
    #[serde(rename = "latency_us", serialize_with = "micros")]
    pub(crate) latency: Duration,
    /// The configured claims, masked.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub(crate) claims: Map<String, Value>,
    /// The check span's trace id, when tracing sampled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace_id: Option<String>,
}

impl AuditRecord {
    /// The record as one JSON line, newline included.
    pub(crate) fn json_line(&self, out: &mut Vec<u8>) {
        // Serialising plain fields into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        }
    }
}

/// A decision id: a UUID version 7 (RFC 9562), 48 bits of Unix time in
/// milliseconds then 74 random bits, so ids sort by time and never repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecisionId([u8; 16]);

thread_local! {
    /// A SplitMix64 state per thread, seeded once from the system's random
    /// source: ids need to be unique and unguessable enough to sample by,
    /// not secret, and a check should not pay a DRBG call for one.
    static RANDOM: Cell<u64> = Cell::new(seed());
}

/// Distinguishes threads' seeds should the system random source fail.
static SEEDS: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        return SEEDS.fetch_add(u64::from(nanos) | 1, Ordering::Relaxed);
    }
    u64::from_le_bytes(bytes)
}

/// The next 64 random bits of this thread's SplitMix64.
fn next_random() -> u64 {
    RANDOM.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

impl DecisionId {
    /// A new id for now.
    pub(crate) fn new() -> DecisionId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut bytes = [0u8; 16];
        let millis = u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes();
        bytes[..6].copy_from_slice(&millis[2..]);
        bytes[6..8].copy_from_slice(&next_random().to_be_bytes()[..2]);
        bytes[8..].copy_from_slice(&next_random().to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x70;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        DecisionId(bytes)
    }

    /// Whether a decision with this id falls in a sample of `ratio`,
    /// decided by its random bits.
    pub(crate) fn sampled(&self, ratio: f64) -> bool {
        if ratio >= 1.0 {
            return true;
        }
        let mut random = [0u8; 8];
        random.copy_from_slice(&self.0[8..]);
        // The top two bits are the variant; 53 of the rest make an f64.
        let bits = (u64::from_be_bytes(random) << 2) >> 11;
        (bits as f64) / ((1u64 << 53) as f64) < ratio
    }

    /// The canonical text, `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`.
    fn text(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        text
    }
}

impl std::fmt::Display for DecisionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.text();
        // Hex digits and dashes only.
        f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
    }
}

impl Serialize for DecisionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The configured claims present in `claims`, keyed by their dotted path,
/// each masked when a rule names it.
pub(crate) fn selected_claims(settings: &AuditSettings, claims: &Claims) -> Map<String, Value> {
    settings
        .claims
        .iter()
        .filter_map(|path| {
            let value = path.lookup(claims)?;
            let value = match settings.masks.iter().find(|mask| mask.claim == *path) {
                Some(mask) => Value::from(masked(mask.with, value)),
                None => value.clone(),
            };
            Some((path.to_string(), value))
        })
        .collect()
}

/// `value` of the record field named like claim `name`, masked when a rule
/// names that top-level claim.
pub(crate) fn mask_field(masks: &[Mask], name: &str, value: Option<String>) -> Option<String> {
    let value = value?;
    let rule = masks
        .iter()
        .find(|mask| mask.claim == crate::claims::ClaimPath::key(name));
    Some(match rule {
        Some(mask) => masked(mask.with, &Value::from(value)),
        None => value,
    })
}

/// What `value` becomes under `masking`.
fn masked(masking: Masking, value: &Value) -> String {
    match masking {
        Masking::Redact => REDACTED.to_owned(),
        Masking::Hash => {
            let digest = crate::digest::sha256(value.to_string().as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
    }
}

fn shared_text<S: Serializer>(text: &Option<Arc<str>>, serializer: S) -> Result<S::Ok, S::Error> {
    text.as_deref().serialize(serializer)
}

fn micros<S: Serializer>(latency: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX))
}

fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Rfc3339(*time))
}

/// A time as RFC 3339 UTC with milliseconds: `2026-12-07T23:10:00.123Z`.
pub(crate) struct Rfc3339(pub(crate) SystemTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since.as_secs();
        let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
        let (year, month, day) = civil_from_days(days);
        let rest = seconds % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60,
            since.subsec_millis()
        )
    }
}

/// Year, month and day of the `days`th day since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
