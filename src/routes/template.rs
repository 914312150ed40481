//! Istio / Kyma APIRule path templates (`{*}`, `{**}`), and the segment
//! algebra lint uses to compare every non-regex path matcher.

use super::canonical::canonical;
use super::error::RouteError;

/// A path as a sequence of segment patterns, optionally followed by "zero or
/// more segments". Templates match with it, and lint compares every
/// non-regex matcher in this form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
    tail: bool,
}

/// One position of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{*}` / `*`: exactly one non-empty segment.
    One,
}

/// What a config template compiles to: templates without `{*}` are an
/// exact path, a prefix or every path, which the simpler matchers serve
/// faster and lint reasons about more easily.
#[derive(Debug)]
pub(crate) enum TemplatePath {
    Any,
    Exact(String),
    Prefix(String),
    Wildcards(Template),
}

/// Compiles a config template.
pub(crate) fn compile_template(template: &str) -> Result<TemplatePath, RouteError> {
    let invalid = |reason: &'static str| RouteError::InvalidTemplate {
        template: template.to_owned(),
        reason,
    };
    canonical(template)?;
    // Kyma APIRule v2 compatibility: `/*` alone means every path.
    if template == "/*" {
        return Ok(TemplatePath::Any);
    }
    let mut parts = template.split('/').skip(1).peekable();
    let mut segments = Vec::new();
    let mut tail = false;
    while let Some(part) = parts.next() {
        match part {
            "{*}" | "*" => segments.push(Segment::One),
            "{**}" | "**" if parts.peek().is_none() => tail = true,
            "{**}" | "**" => return Err(invalid("`{**}` may only be the last segment")),
            _ if part.contains(['*', '{', '}']) => {
                return Err(invalid(
                    "`{*}`, `*`, `{**}` and `**` must be whole segments; named captures are not supported",
                ));
            }
            _ => segments.push(Segment::Literal(part.to_owned())),
        }
    }
    if segments.contains(&Segment::One) {
        return Ok(TemplatePath::Wildcards(Template { segments, tail }));
    }
    // Without a single-segment wildcard the template is an exact path or a
    // prefix; the simpler matchers are faster and easier for lint.
    let mut literal = String::new();
    for segment in &segments {
        if let Segment::Literal(text) = segment {
            literal.push('/');
            literal.push_str(text);
        }
    }
    Ok(match (tail, literal.is_empty()) {
        (true, true) => TemplatePath::Any,
        (true, false) => TemplatePath::Prefix(literal),
        (false, _) => TemplatePath::Exact(template.to_owned()),
    })
}

fn literals(path: &str) -> Vec<Segment> {
    path.split('/')
        .skip(1)
        .map(|part| Segment::Literal(part.to_owned()))
        .collect()
}

impl Template {
    /// The shape of a match-all path.
    pub(crate) fn everything() -> Self {
        Self {
            segments: Vec::new(),
            tail: true,
        }
    }

    /// The shape of an exact canonical path.
    pub(crate) fn exact(path: &str) -> Self {
        Self {
            segments: literals(path),
            tail: false,
        }
    }

    /// The shape of a canonical prefix without trailing slash.
    pub(crate) fn prefix(prefix: &str) -> Self {
        Self {
            segments: literals(prefix),
            tail: true,
        }
    }

    pub(crate) fn matches_everything(&self) -> bool {
        self.segments.is_empty() && self.tail
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(relative) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = relative.split('/');
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            let matched = match segment {
                Segment::One => !part.is_empty(),
                Segment::Literal(text) => text == part,
            };
            if !matched {
                return false;
            }
        }
        self.tail || parts.next().is_none()
    }

    /// Every path `other` matches, `self` matches too. Exact for this
    /// language: a literal is covered only by itself or by `{*}` (when
    /// non-empty), and a longer pattern cannot cover a shorter one.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        let mut theirs = other.segments.iter();
        for mine in &self.segments {
            let covered = match (mine, theirs.next()) {
                (_, None) => false,
                (Segment::One, Some(Segment::One)) => true,
                (Segment::One, Some(Segment::Literal(text))) => !text.is_empty(),
                (Segment::Literal(_), Some(Segment::One)) => false,
                (Segment::Literal(mine), Some(Segment::Literal(their))) => mine == their,
            };
            if !covered {
                return false;
            }
        }
        self.tail || (!other.tail && theirs.next().is_none())
    }

    /// Some path matches both. Exact for this language: position by
    /// position the segments must agree, and a length difference must be
    /// absorbed by the shorter side's tail.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        let agree =
            self.segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::One, Segment::One) => true,
                    (Segment::One, Segment::Literal(text))
                    | (Segment::Literal(text), Segment::One) => !text.is_empty(),
                    (Segment::Literal(mine), Segment::Literal(theirs)) => mine == theirs,
                });
        agree
            && match self.segments.len().cmp(&other.segments.len()) {
                std::cmp::Ordering::Equal => true,
                std::cmp::Ordering::Less => self.tail,
                std::cmp::Ordering::Greater => other.tail,
            }
    }

    /// A single path this template matches, if it matches only one.
    pub(crate) fn only_path(&self) -> Option<String> {
        if self.tail {
            return None;
        }
        let mut path = String::new();
        for segment in &self.segments {
            let Segment::Literal(text) = segment else {
                return None;
            };
            path.push('/');
            path.push_str(text);
        }
        Some(path)
    }

    /// A few concrete paths this template matches, to probe a regex with.
    pub(crate) fn sample_paths(&self) -> Vec<String> {
        let mut base = String::new();
        for segment in &self.segments {
            base.push('/');
            base.push_str(match segment {
                Segment::Literal(text) => text,
                Segment::One => "x",
            });
        }
        let mut samples = vec![if base.is_empty() {
            "/".to_owned()
        } else {
            base.clone()
        }];
        if self.tail {
            samples.push(format!("{base}/x"));
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::path::{PathMatcher, PathShape};
    use crate::routes::spec::PathSpec;
    use proptest::prelude::*;

    use crate::routes::path::tests::compile;

    fn template(text: &str) -> PathMatcher {
        compile(PathSpec::Template(text.to_owned()))
    }

    #[test]
    fn single_segment_wildcard() {
        for spelling in ["/users/{*}/items", "/users/*/items"] {
            let users = template(spelling);
            assert!(users.matches("/users/42/items"));
            assert!(!users.matches("/users/42/items/"));
            assert!(!users.matches("/users/items"));
            assert!(!users.matches("/users/4/2/items"));
            assert!(!users.matches("/users/42/items/x"));
        }
    }

    #[test]
    fn multi_segment_wildcard() {
        for spelling in ["/files/{**}", "/files/**"] {
            let files = template(spelling);
            for path in ["/files", "/files/", "/files/a", "/files/a/b/c"] {
                assert!(files.matches(path), "{path}");
            }
            assert!(!files.matches("/filesystem") && !files.matches("/"));
        }
        let nested = template("/{*}/v1/{**}");
        assert!(nested.matches("/svc/v1") && nested.matches("/svc/v1/a/b"));
        assert!(!nested.matches("/svc/v2/a") && !nested.matches("/v1"));
    }

    #[test]
    fn kyma_star_matches_every_path() {
        let all = template("/*");
        assert!(all.matches("/") && all.matches("/a") && all.matches("/a/b/"));
        let one = template("/{*}");
        assert!(one.matches("/a") && !one.matches("/") && !one.matches("/a/b"));
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in ["/a/{**}/b", "/a/{id}", "/a*", "/a/{*", "/**/x"] {
            let result = PathMatcher::compile(&PathSpec::Template(bad.into()));
            assert!(
                matches!(result, Err(RouteError::InvalidTemplate { .. })),
                "{bad} -> {result:?}"
            );
        }
        let result = PathMatcher::compile(&PathSpec::Template("/a/../b/{*}".into()));
        assert!(
            matches!(result, Err(RouteError::NotCanonical { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn shape_relations() {
        let shape = |spec: PathSpec| match compile(spec).shape() {
            PathShape::Segments(template) => template,
            PathShape::Regex { .. } => panic!("not a regex"),
        };
        let api = shape(PathSpec::Prefix("/api".into()));
        let api_users = shape(PathSpec::Template("/api/{*}".into()));
        let exact = shape(PathSpec::Exact("/api/users".into()));
        let other = shape(PathSpec::Prefix("/other".into()));
        assert!(api.covers(&api_users) && api.covers(&exact) && api_users.covers(&exact));
        assert!(!api_users.covers(&api) && !exact.covers(&api_users));
        assert!(api_users.overlaps(&exact) && !api.overlaps(&other));
    }

    fn path_matcher() -> impl Strategy<Value = PathMatcher> {
        let segment = prop::sample::select(vec!["a", "b", "ab", "", "{*}", "{**}"]);
        let segments = prop::collection::vec(segment, 0..4)
            .prop_map(|segments| format!("/{}", segments.join("/")));
        (0..4u8, segments).prop_filter_map("invalid spec", |(kind, path)| {
            let spec = match kind {
                0 => PathSpec::Template(path),
                1 => PathSpec::Exact(path.replace("{*}", "a").replace("/{**}", "")),
                2 => PathSpec::Prefix(path.replace("{*}", "b").replace("/{**}", "")),
                _ => PathSpec::Any,
            };
            PathMatcher::compile(&spec).ok()
        })
    }

    /// Every canonical path of up to five segments over an alphabet that
    /// includes one segment (`x`) no generated pattern spells out, with and
    /// without trailing slash: enough to witness any overlap or
    /// counterexample between the patterns `path_matcher` generates.
    fn universe() -> Vec<String> {
        let mut paths = vec!["/".to_owned()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for base in &frontier {
                for segment in ["a", "b", "ab", "x"] {
                    let path = format!("{base}/{segment}");
                    paths.push(format!("{path}/"));
                    paths.push(path.clone());
                    next.push(path);
                }
            }
            frontier = next;
        }
        paths
    }

    proptest! {
        #[test]
        fn covers_is_exact_without_regexes(first in path_matcher(), second in path_matcher()) {
            let counterexample = universe().into_iter().find(|path| second.matches(path) && !first.matches(path));
            prop_assert_eq!(first.shape().covers(&second.shape()), counterexample.is_none(), "{:?} {:?} {:?}", first, second, counterexample);
        }

        #[test]
        fn overlaps_is_exact_without_regexes(first in path_matcher(), second in path_matcher()) {
            let witness = universe().into_iter().find(|path| first.matches(path) && second.matches(path));
            prop_assert_eq!(first.shape().overlaps(&second.shape()), witness.is_some(), "{:?} {:?} {:?}", first, second, witness);
        }

        #[test]
        fn overlap_samples_really_match(first in path_matcher()) {
            if let PathShape::Segments(template) = first.shape() {
                for sample in template.sample_paths() {
                    prop_assert!(first.matches(&sample), "{:?} {}", first, sample);
                }
            }
        }
    }
}
