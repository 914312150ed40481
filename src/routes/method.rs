//! Method lists: which HTTP methods a route applies to.

use super::error::RouteError;

/// Compiled `methods` list of one route: upper-case RFC 9110 tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MethodSet {
    /// Empty list.
    Any,
    /// Never empty, no duplicates.
    Listed(Vec<String>),
}

impl MethodSet {
    pub(crate) fn compile(methods: &[String]) -> Result<Self, RouteError> {
        let mut listed: Vec<String> = Vec::with_capacity(methods.len());
        for method in methods {
            if method.is_empty() || !method.bytes().all(is_token_byte) {
                return Err(RouteError::InvalidMethod {
                    method: method.clone(),
                });
            }
            let upper = method.to_ascii_uppercase();
            if !listed.contains(&upper) {
                listed.push(upper);
            }
        }
        Ok(if listed.is_empty() {
            Self::Any
        } else {
            Self::Listed(listed)
        })
    }

    /// `method` is expected upper-case; case is ignored anyway so that a
    /// caller's slip fails safe rather than open.
    pub(crate) fn matches(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(listed) => listed
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(method)),
        }
    }

    /// Every method `other` matches, `self` matches too.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Listed(_), Self::Any) => false,
            (Self::Listed(mine), Self::Listed(theirs)) => {
                theirs.iter().all(|method| mine.contains(method))
            }
        }
    }

    /// Some method matches both.
    pub(crate) fn intersects(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) | (_, Self::Any) => true,
            (Self::Listed(mine), Self::Listed(theirs)) => {
                mine.iter().any(|method| theirs.contains(method))
            }
        }
    }
}

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(methods: &[&str]) -> Result<MethodSet, RouteError> {
        let owned: Vec<String> = methods.iter().map(|method| (*method).to_owned()).collect();
        MethodSet::compile(&owned)
    }

    #[test]
    fn empty_list_matches_any_method() {
        assert_eq!(set(&[]).ok(), Some(MethodSet::Any));
        assert!(MethodSet::Any.matches("PURGE"));
    }

    #[test]
    fn methods_compare_upper_case() {
        let methods = set(&["get", "Post", "GET"]).ok();
        assert_eq!(
            methods,
            Some(MethodSet::Listed(vec!["GET".into(), "POST".into()]))
        );
        let methods = methods.unwrap_or(MethodSet::Any);
        assert!(methods.matches("GET") && methods.matches("POST") && methods.matches("get"));
        assert!(!methods.matches("DELETE") && !methods.matches("GE") && !methods.matches(""));
    }

    #[test]
    fn non_token_methods_are_rejected() {
        for bad in ["", "GET POST", "GET,POST", "G\u{e9}T", "GET\n", "(GET)"] {
            assert!(
                matches!(set(&[bad]), Err(RouteError::InvalidMethod { .. })),
                "{bad:?}"
            );
        }
        assert!(set(&["M-SEARCH", "X_CUSTOM", "~!#$%&'*+.^_`|"]).is_ok());
    }

    #[test]
    fn covers_and_intersects() {
        let get_post = MethodSet::Listed(vec!["GET".into(), "POST".into()]);
        let get = MethodSet::Listed(vec!["GET".into()]);
        let put = MethodSet::Listed(vec!["PUT".into()]);
        assert!(get_post.covers(&get) && !get.covers(&get_post));
        assert!(get.intersects(&get_post) && !get.intersects(&put));
        assert!(MethodSet::Any.covers(&get) && !get.covers(&MethodSet::Any));
        assert!(MethodSet::Any.intersects(&put));
    }
}
