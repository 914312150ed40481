//! Path matchers: exact, segment-aware prefix, template (see `template`)
//! and anchored regex, all compared against the canonical path from
//! `normalize_path`; and the path relations lint relies on.

use regex::{Regex, RegexBuilder};

use super::canonical::canonical;
use super::error::RouteError;
use super::spec::PathSpec;
use super::template::{Template, TemplatePath, compile_template};

/// Upper bound on a compiled route regex and on its lazy DFA cache, so a
/// config cannot make the authorizer allocate without limit. Ordinary route
/// regexes need a few KiB; the cap only stops pathological ones such as
/// `\w{1000}` (the regex crate's own default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 512 * 1024;

/// Compiled `path` of one route.
#[derive(Debug, Clone)]
pub(crate) enum PathMatcher {
    Any,
    Exact(String),
    /// Canonical, without trailing slash, never empty: the root prefix
    /// compiles to `Any`.
    Prefix(String),
    /// Has at least one single-segment wildcard; templates without one
    /// compile to `Exact` or `Prefix`.
    Template(Template),
    Regex {
        pattern: String,
        regex: Regex,
    },
}

impl PathMatcher {
    pub(crate) fn compile(spec: &PathSpec) -> Result<Self, RouteError> {
        match spec {
            PathSpec::Any => Ok(Self::Any),
            PathSpec::Exact(path) => Ok(Self::Exact(canonical(path)?)),
            PathSpec::Prefix(prefix) => compile_prefix(prefix),
            PathSpec::Template(template) => Ok(match compile_template(template)? {
                TemplatePath::Any => Self::Any,
                TemplatePath::Exact(path) => Self::Exact(path),
                TemplatePath::Prefix(prefix) => Self::Prefix(prefix),
                TemplatePath::Wildcards(template) => Self::Template(template),
            }),
            PathSpec::Regex(pattern) => compile_regex(pattern),
        }
    }

    /// `path` must be the output of `normalize_path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => path == exact,
            Self::Prefix(prefix) => prefix_matches(prefix, path),
            Self::Template(template) => template.matches(path),
            Self::Regex { regex, .. } => regex.is_match(path),
        }
    }

    /// This matcher in the form lint reasons about.
    pub(crate) fn shape(&self) -> PathShape<'_> {
        match self {
            Self::Any => PathShape::Segments(Template::everything()),
            Self::Exact(path) => PathShape::Segments(Template::exact(path)),
            Self::Prefix(prefix) => PathShape::Segments(Template::prefix(prefix)),
            Self::Template(template) => PathShape::Segments(template.clone()),
            Self::Regex { pattern, regex } => PathShape::Regex { pattern, regex },
        }
    }
}

/// True when `path` is `prefix` itself or lies below it: the byte after the
/// prefix must be `/`, so `/admin` never matches `/administrator`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn compile_prefix(prefix: &str) -> Result<PathMatcher, RouteError> {
    if prefix.is_empty() {
        return Err(RouteError::EmptyPrefix);
    }
    let canonical = canonical(prefix)?;
    // `/api/` and `/api` mean the same prefix; `/` leaves nothing and matches all.
    let trimmed = canonical.strip_suffix('/').unwrap_or(&canonical);
    Ok(if trimmed.is_empty() {
        PathMatcher::Any
    } else {
        PathMatcher::Prefix(trimmed.to_owned())
    })
}

fn compile_regex(pattern: &str) -> Result<PathMatcher, RouteError> {
    if pattern.is_empty() {
        return Err(RouteError::EmptyRegex);
    }
    let build = |source: &str| {
        RegexBuilder::new(source)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|error| RouteError::InvalidRegex {
                pattern: pattern.to_owned(),
                error,
            })
    };
    // Compiling the pattern alone first proves it is one balanced expression,
    // so it cannot close the anchoring group early (`a)|(b`) and unanchor it.
    build(pattern)?;
    let regex = build(&format!("^(?:{pattern})$"))?;
    Ok(PathMatcher::Regex {
        pattern: pattern.to_owned(),
        regex,
    })
}

/// A path matcher as lint sees it.
#[derive(Debug)]
pub(crate) enum PathShape<'a> {
    Segments(Template),
    Regex { pattern: &'a str, regex: &'a Regex },
}

impl PathShape<'_> {
    /// Sure that every path `other` matches, `self` matches too.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Segments(mine), Self::Segments(theirs)) => mine.covers(theirs),
            (Self::Segments(mine), Self::Regex { .. }) => mine.matches_everything(),
            (Self::Regex { regex, .. }, Self::Segments(theirs)) => {
                theirs.only_path().is_some_and(|path| regex.is_match(&path))
            }
            (
                Self::Regex { pattern: mine, .. },
                Self::Regex {
                    pattern: theirs, ..
                },
            ) => mine == theirs,
        }
    }

    /// Sure that some path matches both. Regexes are only probed with
    /// sample paths of the other side, so this can miss overlaps, never
    /// invent them.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Segments(mine), Self::Segments(theirs)) => mine.overlaps(theirs),
            (Self::Segments(template), Self::Regex { regex, .. })
            | (Self::Regex { regex, .. }, Self::Segments(template)) => template
                .sample_paths()
                .iter()
                .any(|path| regex.is_match(path)),
            (
                Self::Regex { pattern: mine, .. },
                Self::Regex {
                    pattern: theirs, ..
                },
            ) => mine == theirs,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::routes::normalize::normalize_path;
    use proptest::prelude::*;

    /// A path matcher, panicking on a spec the test got wrong.
    pub(crate) fn compile(spec: PathSpec) -> PathMatcher {
        match PathMatcher::compile(&spec) {
            Ok(matcher) => matcher,
            Err(error) => panic!("{spec:?} should compile: {error}"),
        }
    }

    #[test]
    fn exact_matches_only_itself() {
        let exact = compile(PathSpec::Exact("/post".into()));
        assert!(exact.matches("/post"));
        assert!(!exact.matches("/post/"));
        assert!(!exact.matches("/posts"));
        assert!(!exact.matches("/"));
    }

    #[test]
    fn prefix_is_segment_aware() {
        let prefix = compile(PathSpec::Prefix("/admin".into()));
        for path in ["/admin", "/admin/", "/admin/x", "/admin/x/y"] {
            assert!(prefix.matches(path), "{path}");
        }
        for path in ["/administrator", "/admin-panel", "/adminx", "/", "/x/admin"] {
            assert!(!prefix.matches(path), "{path}");
        }
    }

    #[test]
    fn prefix_trailing_slash_is_ignored_and_root_matches_all() {
        let with_slash = compile(PathSpec::Prefix("/api/".into()));
        assert!(
            with_slash.matches("/api")
                && with_slash.matches("/api/x")
                && !with_slash.matches("/apix")
        );
        let root = compile(PathSpec::Prefix("/".into()));
        assert!(root.matches("/") && root.matches("/anything/at/all"));
    }

    #[test]
    fn config_paths_must_be_canonical() {
        for (spec, canonical) in [
            (PathSpec::Exact("/a/../b".into()), "/b"),
            (PathSpec::Exact("/%61".into()), "/a"),
            (PathSpec::Prefix("//api".into()), "/api"),
            (PathSpec::Exact("/a?b".into()), "/a"),
        ] {
            match PathMatcher::compile(&spec) {
                Err(RouteError::NotCanonical { canonical: got, .. }) => assert_eq!(got, canonical),
                other => panic!("{spec:?} -> {other:?}"),
            }
        }
        assert!(matches!(
            PathMatcher::compile(&PathSpec::Prefix(String::new())),
            Err(RouteError::EmptyPrefix)
        ));
        assert!(matches!(
            PathMatcher::compile(&PathSpec::Exact("api".into())),
            Err(RouteError::InvalidPath { .. })
        ));
        assert!(matches!(
            PathMatcher::compile(&PathSpec::Exact("/a%2Fb".into())),
            Err(RouteError::InvalidPath { .. })
        ));
    }

    #[test]
    fn regex_is_anchored() {
        let regex = compile(PathSpec::Regex("/api/v[0-9]+/.*".into()));
        assert!(regex.matches("/api/v1/x"));
        assert!(!regex.matches("/x/api/v1/x"));
        let alternation = compile(PathSpec::Regex("/a|/b".into()));
        assert!(alternation.matches("/a") && alternation.matches("/b"));
        assert!(
            !alternation.matches("/ab")
                && !alternation.matches("/a/x")
                && !alternation.matches("/x/b")
        );
        assert!(compile(PathSpec::Regex("/.*".into())).matches("/anything/at/all"));
    }

    #[test]
    fn regex_errors_carry_the_regex_message() {
        for bad in ["/a(", "a)|(b", "[z-a]"] {
            match PathMatcher::compile(&PathSpec::Regex(bad.into())) {
                Err(error @ RouteError::InvalidRegex { .. }) => {
                    assert!(error.to_string().contains("regex parse error"), "{error}")
                }
                other => panic!("{bad} -> {other:?}"),
            }
        }
        assert!(matches!(
            PathMatcher::compile(&PathSpec::Regex(String::new())),
            Err(RouteError::EmptyRegex)
        ));
    }

    #[test]
    fn regex_size_is_bounded() {
        let huge = PathMatcher::compile(&PathSpec::Regex(r"\w{1000}\w{1000}".into()));
        match huge {
            Err(error @ RouteError::InvalidRegex { .. }) => {
                assert!(error.to_string().contains("size limit"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Paths over a tiny alphabet so that random patterns and paths collide often.
    fn path() -> impl Strategy<Value = String> {
        let segment = prop::sample::select(vec!["a", "b", "ab", ""]);
        prop::collection::vec(segment, 0..5).prop_filter_map("not canonical", |segments| {
            normalize_path(&format!("/{}", segments.join("/")))
                .ok()
                .map(std::borrow::Cow::into_owned)
        })
    }

    proptest! {
        #[test]
        fn prefix_match_means_prefix_then_boundary(prefix in path(), path in path()) {
            let trimmed = prefix.strip_suffix('/').unwrap_or(&prefix);
            if trimmed.is_empty() {
                return Ok(());
            }
            let matcher = compile(PathSpec::Prefix(prefix.clone()));
            if matcher.matches(&path) {
                let rest = path.strip_prefix(trimmed);
                prop_assert!(rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')), "{} vs {}", prefix, path);
            }
        }

        #[test]
        fn raw_prefix_match_survives_normalisation(raw in "(/|a|\\.|%2e|/\\.\\.){0,8}") {
            // Whatever the raw spelling, a match on the canonical path is a true segment match.
            if let Ok(path) = normalize_path(&raw)
                && compile(PathSpec::Prefix("/a".into())).matches(&path)
            {
                prop_assert!(path == "/a" || path.starts_with("/a/"));
            }
        }

    }
}
