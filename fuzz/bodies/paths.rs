//! Fuzz body: request paths and hosts through normalisation, and route
//! specs through compilation, matching and lint.
//!
//! Input lines: the request `:path`, the `:authority`, the method, then up
//! to four routes, each `KIND SPEC[\tHOSTS[\tMETHODS]]` with KIND one of
//! `e` (exact), `p` (prefix), `t` (template), `r` (regex), `a` (any) and
//! HOSTS/METHODS comma-separated.
//!
//! Invariants: no panic; a normalised path is a fixed point of
//! `normalize_path`, starts with `/`, has no empty, `.` or `..` segment
//! (but a trailing slash), no `\` or control character, and under
//! `reject` no `;`; `reject` and `keep` agree where both accept; a
//! normalised host is a fixed point; an exact path matches only itself; a
//! prefix matches whole segments only, and all of them; the first match
//! is what the table finds; and when lint says an earlier route shadows a
//! later one, no request matches the later one without the earlier.

use tollgate::internals::{
    FindingKind, MatchSpec, PathParameters, PathSpec, RequestTarget, RouteMatcher, RouteTable,
    normalize_host, normalize_path, normalize_request_path,
};

const MODES: [PathParameters; 3] = [
    PathParameters::Reject,
    PathParameters::Keep,
    PathParameters::Strip,
];

pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let raw_path = lines.next().unwrap_or_default();
    let authority = lines.next().unwrap_or_default();
    let method = lines.next().unwrap_or("GET");
    let specs: Vec<MatchSpec> = lines.take(4).filter_map(spec).collect();

    let mut normalized = [None, None, None];
    for (slot, mode) in normalized.iter_mut().zip(MODES) {
        if let Ok(path) = normalize_request_path(raw_path, mode) {
            assert_canonical(&path, mode);
            *slot = Some(path);
        }
    }
    if let [Some(rejecting), keeping, _] = &normalized {
        assert_eq!(
            Some(rejecting),
            keeping.as_ref(),
            "reject and keep disagree"
        );
    }
    let host = normalize_host(authority);
    if let Some(host) = &host {
        assert_eq!(
            normalize_host(host).as_ref(),
            Some(host),
            "host not a fixed point"
        );
    }

    let matchers: Vec<(RouteMatcher, &MatchSpec)> = specs
        .iter()
        .filter_map(|spec| RouteMatcher::new(spec).ok().map(|m| (m, spec)))
        .collect();
    let table = RouteTable::new(matchers.iter().map(|(m, _)| (m.clone(), ())).collect());
    let findings = table.lint();
    let method = method.to_ascii_uppercase();
    for path in normalized.iter().flatten() {
        let target = RequestTarget {
            host: host.as_deref().unwrap_or_default(),
            method: &method,
            path,
        };
        let matches: Vec<bool> = matchers.iter().map(|(m, _)| m.matches(&target)).collect();
        assert_eq!(
            table.find(&target).map(|(index, _)| index),
            matches.iter().position(|&m| m),
            "the table did not find the first match"
        );
        for ((_, spec), &matched) in matchers.iter().zip(&matches) {
            if spec.hosts.is_empty() && spec.methods.is_empty() {
                assert_path_rule(&spec.path, path, matched);
            }
        }
        for finding in &findings {
            if finding.kind == FindingKind::Shadows && matches[finding.later] {
                assert!(
                    matches[finding.earlier],
                    "{finding} but {path:?} matches the later route only"
                );
            }
        }
    }
}

fn spec(line: &str) -> Option<MatchSpec> {
    let mut fields = line.split('\t');
    let first = fields.next()?;
    let kind = first.get(..1)?;
    let text = first[1..].trim_start_matches(' ').to_owned();
    let path = match kind {
        "e" => PathSpec::Exact(text),
        "p" => PathSpec::Prefix(text),
        "t" => PathSpec::Template(text),
        "r" => PathSpec::Regex(text),
        "a" => PathSpec::Any,
        _ => return None,
    };
    let list = |field: Option<&str>| -> Vec<String> {
        field
            .map(|f| f.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Some(MatchSpec {
        hosts: list(fields.next()),
        methods: list(fields.next()),
        path,
    })
}

fn assert_canonical(path: &str, mode: PathParameters) {
    assert_eq!(
        normalize_path(path).as_deref(),
        Ok(path),
        "not a fixed point ({mode:?})"
    );
    let rest = path.strip_prefix('/').expect("starts with /");
    let segments: Vec<&str> = rest.split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        assert!(
            !matches!(*segment, "." | "..") && (last || !segment.is_empty()),
            "segment {segment:?} left in {path:?} ({mode:?})"
        );
    }
    assert!(
        !path.contains('\\') && !path.chars().any(char::is_control),
        "{path:?}"
    );
    if mode == PathParameters::Reject {
        assert!(!path.contains(';'), "`;` under reject: {path:?}");
    }
}

/// Exact and prefix matching, stated directly.
fn assert_path_rule(spec: &PathSpec, path: &str, matched: bool) {
    let expected = match spec {
        PathSpec::Exact(exact) => path == exact,
        PathSpec::Prefix(prefix) => {
            let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
        PathSpec::Any => true,
        PathSpec::Template(_) | PathSpec::Regex(_) => return,
    };
    assert_eq!(matched, expected, "{spec:?} against {path:?}");
}
