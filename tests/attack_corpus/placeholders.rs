//! The `${...}` placeholders of `tests/attacks/README.md`: what each
//! stands for, given the attempt being built.

use crate::LEEWAY;
use crate::binding;

/// What `${...}` placeholders stand for.
pub(crate) struct Vars {
    pub(crate) now: i64,
    pub(crate) attacker_url: String,
    pub(crate) attacker_jwk: String,
    pub(crate) attacker_x5c: String,
    /// The entry's own token, in request headers.
    pub(crate) token: Option<String>,
    /// A token the main provider accepts, in request headers.
    pub(crate) valid: Option<String>,
    /// Where this leg's request goes, as tollgate will see it.
    pub(crate) origin: Origin,
    /// The entry's path, for `${htu}`.
    pub(crate) path: String,
    /// This attempt's proof id, fresh for every attempt.
    pub(crate) jti: String,
    /// Inside a proof: the keys that sign it and that its `jwk` shows.
    pub(crate) proof_keys: Option<(String, String)>,
    /// The entry's DPoP proof, in request headers.
    pub(crate) proof: Option<String>,
}

/// A request's `:scheme` and `:authority` as tollgate reads them from the
/// CheckRequest: the test's own over gRPC, the listener's through Envoy.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) scheme: &'static str,
    pub(crate) authority: String,
}

/// `text` with every placeholder replaced; bytes, since `${byte:HH}` need
/// not make UTF-8.
pub(crate) fn expand(text: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
        out.extend(placeholder(&after[..end], vars)?);
        rest = &after[end + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

pub(crate) fn expand_text(text: &str, vars: &Vars) -> Result<String, String> {
    String::from_utf8(expand(text, vars)?)
        .map_err(|_| format!("{text:?} is not UTF-8 once expanded"))
}

fn placeholder(name: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let missing = || format!("${{{name}}} has no value here");
    if let Some(offset) = name.strip_prefix("now") {
        return Ok((vars.now + seconds(offset)?).to_string().into_bytes());
    }
    if let Some(spec) = name.strip_prefix("repeat:") {
        let (count, unit) = spec
            .split_once(':')
            .ok_or_else(|| format!("${{{name}}}: repeat:COUNT:TEXT"))?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("${{{name}}}: bad count"))?;
        return Ok(unit.repeat(count).into_bytes());
    }
    if let Some(depth) = name.strip_prefix("nest:") {
        let depth: usize = depth
            .parse()
            .map_err(|_| format!("${{{name}}}: bad depth"))?;
        return Ok(["[".repeat(depth), "]".repeat(depth)].concat().into_bytes());
    }
    if let Some(hex) = name.strip_prefix("byte:") {
        let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("${{{name}}}: bad hex"))?;
        return Ok(vec![byte]);
    }
    if let Some(value) = key_placeholder(name)? {
        return Ok(value.into_bytes());
    }
    let proof_keys = || vars.proof_keys.as_ref().ok_or_else(missing);
    let value = match name {
        "attacker_url" => vars.attacker_url.clone(),
        "attacker_jwk" => vars.attacker_jwk.clone(),
        "attacker_x5c" => vars.attacker_x5c.clone(),
        "token" => vars.token.clone().ok_or_else(missing)?,
        "valid" => vars.valid.clone().ok_or_else(missing)?,
        "proof" => vars.proof.clone().ok_or_else(missing)?,
        "proof_jwk" => binding::public_jwk(&proof_keys()?.1)?,
        "proof_alg" => binding::natural_alg(&proof_keys()?.0)?.to_owned(),
        "jti" => vars.jti.clone(),
        "htm" => "GET".to_owned(),
        "htu" => format!(
            "{}://{}{}",
            vars.origin.scheme, vars.origin.authority, vars.path
        ),
        "scheme" => vars.origin.scheme.to_owned(),
        "other_scheme" => match vars.origin.scheme {
            "https" => "http".to_owned(),
            _ => "https".to_owned(),
        },
        "authority" => vars.origin.authority.clone(),
        "ath" => binding::ath(vars.token.as_deref().ok_or_else(missing)?),
        _ => return Err(format!("unknown placeholder ${{{name}}}")),
    };
    Ok(value.into_bytes())
}

/// `${jkt:KEY}`, `${jwk:KEY}`, `${private_jwk:KEY}`, `${x5t:CERT}` and
/// `${x5t_hex:CERT}`; `None` for any other placeholder.
fn key_placeholder(name: &str) -> Result<Option<String>, String> {
    let Some((kind, argument)) = name.split_once(':') else {
        return Ok(None);
    };
    Ok(Some(match kind {
        "jkt" => binding::jkt(argument)?,
        "jwk" => binding::public_jwk(argument)?,
        "private_jwk" => binding::private_jwk(argument)?,
        "x5t" => binding::x5t(argument)?,
        "x5t_hex" => binding::x5t_hex(argument)?,
        _ => return Ok(None),
    }))
}

/// `+300`, `-leeway-1`, `` (zero): a sum of signed terms, each a number of
/// seconds or `leeway`.
fn seconds(offset: &str) -> Result<i64, String> {
    let mut total = 0;
    let mut rest = offset;
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(format!("bad time offset {offset:?}")),
        };
        rest = &rest[1..];
        let end = rest.find(['+', '-']).unwrap_or(rest.len());
        let term = match &rest[..end] {
            "leeway" => LEEWAY,
            digits => digits
                .parse::<i64>()
                .map_err(|_| format!("bad time offset {offset:?}"))?,
        };
        total += sign * term;
        rest = &rest[end..];
    }
    Ok(total)
}
