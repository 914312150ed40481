//! The route table: first match in config order, and a lint that finds
//! routes hidden or partly hidden by earlier ones.

use std::fmt;

use super::matcher::{RequestTarget, RouteMatcher};

/// Routes in config order, each with its payload (typically the policy).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<(RouteMatcher, T)>,
}

/// A pair of routes whose order matters, found by [`RouteTable::lint`].
/// Indices are positions in the table, i.e. in the config's route list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The route that wins.
    pub earlier: usize,
    /// The route that loses some or all of its requests.
    pub later: usize,
    /// How much it loses.
    pub kind: FindingKind,
}

/// How an earlier route affects a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The later route can never match: the earlier one matches every
    /// request it would. Almost always a config mistake.
    Shadows,
    /// Some request matches both, and the earlier route gets it. Often
    /// intended (specific before general); worth a look when not.
    Overlaps,
}

impl<T> RouteTable<T> {
    /// A table that tries `routes` in the given order.
    pub fn new(routes: Vec<(RouteMatcher, T)>) -> Self {
        Self { routes }
    }

    /// The first route in config order that matches, with its index.
    /// `target` must be canonical (see [`RequestTarget`]).
    pub fn find(&self, target: &RequestTarget<'_>) -> Option<(usize, &T)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, (matcher, _))| matcher.matches(target))
            .map(|(index, (_, payload))| (index, payload))
    }

    /// Number of routes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes (every lookup misses).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Pairs of routes where the earlier one shadows or overlaps the later
    /// one, in `(earlier, later)` order. Both kinds are reported only when
    /// certain; see the module docs for what is and is not detected.
    /// Quadratic in the number of routes; meant for config load.
    pub fn lint(&self) -> Vec<Finding> {
        let shapes: Vec<_> = self
            .routes
            .iter()
            .map(|(matcher, _)| matcher.path_shape())
            .collect();
        let mut findings = Vec::new();
        for (earlier, (first, first_shape)) in self.routes.iter().zip(&shapes).enumerate() {
            let later_routes = self
                .routes
                .iter()
                .zip(&shapes)
                .enumerate()
                .skip(earlier + 1);
            for (later, (second, second_shape)) in later_routes {
                let path_covers = first_shape.covers(second_shape);
                let kind = if path_covers
                    && first.0.hosts.covers(&second.0.hosts)
                    && first.0.methods.covers(&second.0.methods)
                {
                    FindingKind::Shadows
                } else if first.0.hosts.intersects(&second.0.hosts)
                    && first.0.methods.intersects(&second.0.methods)
                    && (path_covers || first_shape.overlaps(second_shape))
                {
                    FindingKind::Overlaps
                } else {
                    continue;
                };
                findings.push(Finding {
                    earlier,
                    later,
                    kind,
                });
            }
        }
        findings
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { earlier, later, .. } = self;
        match self.kind {
            FindingKind::Shadows => {
                write!(
                    f,
                    "routes[{later}] can never match: routes[{earlier}] matches every request it would"
                )
            }
            FindingKind::Overlaps => {
                write!(
                    f,
                    "routes[{earlier}] and routes[{later}] overlap: routes[{earlier}] wins where both match"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::authority::normalize_host;
    use crate::routes::normalize::normalize_path;
    use crate::routes::spec::PathSpec;

    use crate::routes::matcher::tests::matcher as route;

    fn path_route(path: PathSpec) -> RouteMatcher {
        route(&[], &[], path)
    }

    fn table(routes: Vec<RouteMatcher>) -> RouteTable<usize> {
        RouteTable::new(
            routes
                .into_iter()
                .enumerate()
                .map(|(index, matcher)| (matcher, index))
                .collect(),
        )
    }

    /// Looks up a raw request the way the edge will: normalise, then find.
    fn lookup(
        table: &RouteTable<usize>,
        authority: &str,
        method: &str,
        raw_path: &str,
    ) -> Option<usize> {
        let host = normalize_host(authority)?;
        let path = normalize_path(raw_path).ok()?;
        table
            .find(&RequestTarget {
                host: &host,
                method,
                path: &path,
            })
            .map(|(index, _)| index)
    }

    fn finding(earlier: usize, later: usize, kind: FindingKind) -> Finding {
        Finding {
            earlier,
            later,
            kind,
        }
    }

    #[test]
    fn first_match_wins_and_reports_its_index() {
        let routes = table(vec![
            path_route(PathSpec::Prefix("/admin".into())),
            path_route(PathSpec::Prefix("/public".into())),
            path_route(PathSpec::Any),
        ]);
        assert_eq!(routes.len(), 3);
        assert!(!routes.is_empty());
        assert_eq!(lookup(&routes, "h", "GET", "/admin/x"), Some(0));
        assert_eq!(lookup(&routes, "h", "GET", "/public/x"), Some(1));
        assert_eq!(lookup(&routes, "h", "GET", "/administrator"), Some(2));
        assert!(RouteTable::<()>::new(Vec::new()).is_empty());
    }

    #[test]
    fn path_tricks_reach_the_route_meant_for_them() {
        let routes = table(vec![
            path_route(PathSpec::Prefix("/public".into())),
            path_route(PathSpec::Prefix("/admin".into())),
        ]);
        for raw in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "//admin",
            "/admin/./x",
            "/%61dmin",
            "/admin?x=/public",
        ] {
            assert_eq!(lookup(&routes, "h", "GET", raw), Some(1), "{raw}");
        }
        for raw in [
            "/public%2F..%2Fadmin",
            "/admin%2fx",
            "/public/..;/admin",
            "/public\\..\\admin",
        ] {
            assert_eq!(lookup(&routes, "h", "GET", raw), None, "{raw}");
        }
    }

    #[test]
    fn hosts_are_normalised_before_matching() {
        let routes = table(vec![
            route(&["example.com"], &[], PathSpec::Any),
            route(&["*.example.com"], &[], PathSpec::Any),
        ]);
        assert_eq!(lookup(&routes, "Example.com:443", "GET", "/"), Some(0));
        assert_eq!(lookup(&routes, "example.com.", "GET", "/"), Some(0));
        assert_eq!(lookup(&routes, "API.example.com:8443", "GET", "/"), Some(1));
        assert_eq!(lookup(&routes, "example.org", "GET", "/"), None);
    }

    #[test]
    fn lint_finds_shadowed_routes() {
        let routes = table(vec![
            path_route(PathSpec::Prefix("/api".into())),
            route(&["a.com"], &["GET"], PathSpec::Exact("/api/users".into())),
            path_route(PathSpec::Template("/api/{*}/items".into())),
            path_route(PathSpec::Prefix("/api/v1/".into())),
        ]);
        assert_eq!(
            routes.lint(),
            vec![
                finding(0, 1, FindingKind::Shadows),
                finding(0, 2, FindingKind::Shadows),
                finding(0, 3, FindingKind::Shadows),
                finding(2, 3, FindingKind::Overlaps),
            ]
        );
    }

    #[test]
    fn lint_respects_hosts_and_methods() {
        let routes = table(vec![
            route(&["*.example.com"], &["GET", "POST"], PathSpec::Any),
            route(&["a.example.com"], &["GET"], PathSpec::Exact("/x".into())),
            route(&["example.com"], &["GET"], PathSpec::Exact("/x".into())),
            route(
                &["a.example.com"],
                &["DELETE"],
                PathSpec::Exact("/x".into()),
            ),
            route(&[], &["GET"], PathSpec::Exact("/x".into())),
        ]);
        assert_eq!(
            routes.lint(),
            vec![
                finding(0, 1, FindingKind::Shadows),
                finding(0, 4, FindingKind::Overlaps),
                finding(1, 4, FindingKind::Overlaps),
                finding(2, 4, FindingKind::Overlaps),
            ]
        );
    }

    #[test]
    fn lint_specific_before_general_is_only_an_overlap() {
        let routes = table(vec![
            path_route(PathSpec::Exact("/api/health".into())),
            path_route(PathSpec::Prefix("/api".into())),
            path_route(PathSpec::Prefix("/other".into())),
        ]);
        assert_eq!(routes.lint(), vec![finding(0, 1, FindingKind::Overlaps)]);
    }

    #[test]
    fn lint_equal_specs_shadow() {
        let spec = PathSpec::Template("/users/{*}".into());
        let routes = table(vec![path_route(spec.clone()), path_route(spec)]);
        assert_eq!(routes.lint(), vec![finding(0, 1, FindingKind::Shadows)]);
    }

    #[test]
    fn lint_on_regexes_is_conservative() {
        let routes = table(vec![
            path_route(PathSpec::Regex("/api/.*".into())),
            path_route(PathSpec::Regex("/api/.*".into())),
            path_route(PathSpec::Exact("/api/users".into())),
            path_route(PathSpec::Prefix("/api".into())),
            path_route(PathSpec::Regex("/api/v[0-9]+".into())),
            path_route(PathSpec::Exact("/other".into())),
        ]);
        assert_eq!(
            routes.lint(),
            vec![
                finding(0, 1, FindingKind::Shadows),
                finding(0, 2, FindingKind::Shadows),
                finding(0, 3, FindingKind::Overlaps),
                finding(1, 2, FindingKind::Shadows),
                finding(1, 3, FindingKind::Overlaps),
                finding(2, 3, FindingKind::Overlaps),
            ]
        );
    }

    #[test]
    fn findings_display_with_config_indices() {
        assert_eq!(
            finding(0, 2, FindingKind::Shadows).to_string(),
            "routes[2] can never match: routes[0] matches every request it would"
        );
        assert_eq!(
            finding(1, 4, FindingKind::Overlaps).to_string(),
            "routes[1] and routes[4] overlap: routes[1] wins where both match"
        );
    }

    #[test]
    fn a_thousand_routes_scan_and_lint() {
        let routes = table(
            (0..1000)
                .map(|index| path_route(PathSpec::Prefix(format!("/svc{index}"))))
                .collect(),
        );
        assert_eq!(lookup(&routes, "h", "GET", "/svc999/x"), Some(999));
        assert_eq!(lookup(&routes, "h", "GET", "/svc1000"), None);
        assert!(routes.lint().is_empty());
    }
}
