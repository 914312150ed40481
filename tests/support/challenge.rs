//! `WWW-Authenticate` challenges read back from a response: each one's
//! scheme and parameters, several per header allowed (RFC 9110 §11.6.1),
//! for tests that assert on `Bearer` and `DPoP` challenges.

use super::client::Response;

/// One `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Splits `text` at commas outside quoted strings.
fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
        .into_iter()
        .map(|part| part.trim().to_owned())
        .filter(|part| !part.is_empty())
        .collect()
}

/// Every challenge in every `WWW-Authenticate` header (RFC 9110 11.6.1:
/// one header may hold several, as `Bearer realm="a", DPoP algs="ES256"`).
pub fn challenges(response: &Response) -> Vec<Challenge> {
    let mut found: Vec<Challenge> = Vec::new();
    for value in response.headers.get_all("www-authenticate") {
        let text = String::from_utf8_lossy(value.as_bytes());
        for part in split_outside_quotes(&text) {
            // A part starts a new challenge when it begins with a scheme: a
            // token followed by a space or by nothing.
            let (head, rest) = part.split_once(' ').unwrap_or((&part, ""));
            let param = if head.contains('=') {
                Some(part.as_str())
            } else {
                found.push(Challenge {
                    scheme: head.to_owned(),
                    params: Vec::new(),
                });
                Some(rest.trim()).filter(|rest| !rest.is_empty())
            };
            if let (Some(param), Some(challenge)) = (param, found.last_mut()) {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = value.trim().trim_matches('"').replace("\\\"", "\"");
                challenge.params.push((key.trim().to_owned(), value));
            }
        }
    }
    found
}
