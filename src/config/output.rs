//! What a route sends besides its claim headers: static headers, the
//! oauth2-proxy preset, removals, response headers on allow, dynamic
//! metadata claims, deny shaping, dry run and the signed identity token,
//! validated into [`RouteOutput`] with `defaults:` filling what a route
//! leaves out.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::{ConfigError, invalid};
use super::raw::{RawClaimPath, RawDeny, RawDenyBody, RawHeaderPreset, RawUpstreamIdentity};
use super::values::{check_realm, claim_path, header_name, header_values};
use crate::authz::settings::RouteOutput;
use crate::claims::ClaimPath;
use crate::headers::HeaderMapping;
use crate::identity::{DEFAULT_IDENTITY_HEADER, RESERVED_CLAIMS, RouteIdentity};
use crate::outcome::{DenyBody, DenyShape};

/// oauth2-proxy's names for the caller, filled from OIDC claims.
const OAUTH2_PROXY_HEADERS: &[(&str, &str)] = &[
    ("x-auth-request-user", "sub"),
    ("x-auth-request-email", "email"),
    ("x-auth-request-preferred-username", "preferred_username"),
    ("x-auth-request-groups", "groups"),
];
/// oauth2-proxy's header for the caller's access token itself.
const OAUTH2_PROXY_TOKEN_HEADER: &str = "x-auth-request-access-token";

/// The output fields as written, in `defaults:` or on a route.
pub(super) struct RawOutput {
    pub(super) static_headers: Option<BTreeMap<String, String>>,
    pub(super) header_preset: Option<RawHeaderPreset>,
    pub(super) remove_headers: Option<Vec<String>>,
    pub(super) response_headers_to_add: Option<BTreeMap<String, String>>,
    pub(super) metadata_claims: Option<Vec<RawClaimPath>>,
    pub(super) deny: Option<RawDeny>,
    pub(super) dry_run: Option<bool>,
}

/// The validated defaults, and the raw deny section routes merge over.
pub(super) struct OutputDefaults {
    pub(super) output: RouteOutput,
    pub(super) preset: Option<RawHeaderPreset>,
    deny: RawDeny,
    server_realm: Option<String>,
}

impl OutputDefaults {
    /// Validates `defaults:`; `server_realm` is the realm when none is set.
    pub(super) fn new(
        raw: RawOutput,
        server_realm: Option<String>,
    ) -> Result<OutputDefaults, ConfigError> {
        let deny_raw = raw.deny.clone().unwrap_or_default();
        let mut defaults = OutputDefaults {
            output: RouteOutput::default(),
            preset: None,
            deny: RawDeny::default(),
            server_realm,
        };
        let (output, preset) = defaults.route(raw, None, "defaults", false)?;
        defaults.output = output;
        defaults.preset = preset;
        defaults.deny = deny_raw;
        Ok(defaults)
    }

    /// The deny shape of requests no route matches.
    pub(super) fn deny(&self) -> Arc<DenyShape> {
        self.output.deny.clone()
    }

    /// A route's output: its own fields, else the defaults'. Returns the
    /// header preset too, which the caller merges into the claim headers.
    pub(super) fn route(
        &self,
        raw: RawOutput,
        identity: Option<RawUpstreamIdentity>,
        field: &str,
        identity_configured: bool,
    ) -> Result<(RouteOutput, Option<RawHeaderPreset>), ConfigError> {
        let base = &self.output;
        let preset = raw.header_preset.or(self.preset);
        let static_headers = match raw.static_headers {
            Some(map) => header_values(map, &format!("{field}.static_headers"))?,
            None => base.static_headers.clone(),
        };
        let response_headers = match raw.response_headers_to_add {
            Some(map) => header_values(map, &format!("{field}.response_headers_to_add"))?,
            None => base.response_headers.clone(),
        };
        let remove_headers = match raw.remove_headers {
            Some(list) => list
                .into_iter()
                .map(|name| header_name(&name, &format!("{field}.remove_headers")))
                .collect::<Result<_, _>>()?,
            None => base.remove_headers.clone(),
        };
        let metadata_claims = match raw.metadata_claims {
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, path)| {
                    claim_path(path)
                        .map_err(|m| invalid(format!("{field}.metadata_claims[{i}]"), m))
                })
                .collect::<Result<_, _>>()?,
            None => base.metadata_claims.clone(),
        };
        let deny = match raw.deny {
            None if field != "defaults" => base.deny.clone(),
            raw_deny => {
                Arc::new(self.deny_shape(raw_deny.unwrap_or_default(), &format!("{field}.deny"))?)
            }
        };
        let identity = match identity {
            None => None,
            Some(_) if !identity_configured => {
                return Err(invalid(
                    format!("{field}.upstream_identity"),
                    "needs the top-level `identity:` section (issuer and signing key)",
                ));
            }
            Some(raw) => Some(route_identity(raw, &format!("{field}.upstream_identity"))?),
        };
        let access_token_header = match preset {
            Some(RawHeaderPreset::Oauth2Proxy) => Some(OAUTH2_PROXY_TOKEN_HEADER.to_owned()),
            Some(RawHeaderPreset::None) | None => None,
        };
        Ok((
            RouteOutput {
                static_headers,
                access_token_header,
                remove_headers,
                response_headers,
                metadata_claims,
                deny,
                dry_run: raw.dry_run.unwrap_or(base.dry_run),
                identity,
            },
            preset,
        ))
    }

    /// A route's `deny:` merged field by field over `defaults.deny`.
    fn deny_shape(&self, raw: RawDeny, field: &str) -> Result<DenyShape, ConfigError> {
        let realm = raw
            .realm
            .or_else(|| self.deny.realm.clone())
            .or_else(|| self.server_realm.clone());
        check_realm(realm.as_deref(), &format!("{field}.realm"))?;
        let headers = match raw.headers.or_else(|| self.deny.headers.clone()) {
            Some(map) => header_values(map, &format!("{field}.headers"))?,
            None => Vec::new(),
        };
        let reason_header = raw
            .reason_header
            .or_else(|| self.deny.reason_header.clone())
            .map(|name| header_name(&name, &format!("{field}.reason_header")))
            .transpose()?;
        let body = match raw.body.or(self.deny.body) {
            None | Some(RawDenyBody::Json) => DenyBody::Json,
            Some(RawDenyBody::Text) => DenyBody::Text,
            Some(RawDenyBody::Empty) => DenyBody::Empty,
        };
        Ok(DenyShape {
            realm,
            body,
            headers,
            reason_header,
        })
    }
}

/// Adds the preset's claim headers to `mappings`; a header the config maps
/// itself keeps its own claim.
pub(super) fn with_preset(
    mappings: Arc<[HeaderMapping]>,
    preset: Option<RawHeaderPreset>,
) -> Arc<[HeaderMapping]> {
    if preset != Some(RawHeaderPreset::Oauth2Proxy) {
        return mappings;
    }
    let mut merged = mappings.to_vec();
    for &(header, claim) in OAUTH2_PROXY_HEADERS {
        if !merged.iter().any(|m| m.header == header) {
            merged.push(HeaderMapping {
                header: header.to_owned(),
                claim: ClaimPath::key(claim),
            });
        }
    }
    merged.into()
}

fn route_identity(raw: RawUpstreamIdentity, field: &str) -> Result<RouteIdentity, ConfigError> {
    let header = header_name(
        raw.header.as_deref().unwrap_or(DEFAULT_IDENTITY_HEADER),
        &format!("{field}.header"),
    )?;
    if raw.audience.is_empty() || raw.audience.chars().any(char::is_control) {
        return Err(invalid(
            format!("{field}.audience"),
            "name the upstream, as its JWT library will check `aud`",
        ));
    }
    if let Some(bad) = raw
        .claims
        .iter()
        .find(|c| c.is_empty() || RESERVED_CLAIMS.contains(&c.as_str()))
    {
        return Err(invalid(
            format!("{field}.claims"),
            format!("`{bad}` is set by tollgate itself (or empty); list other claims"),
        ));
    }
    Ok(RouteIdentity {
        header,
        audience: raw.audience,
        claims: raw.claims,
    })
}
