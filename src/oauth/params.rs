//! Request parameters (RFC 6749 §3.1): each name at most once.

use std::collections::HashMap;

use super::OAuthError;

/// Most parameters one request may carry.
pub const MAX_PARAMS: usize = 64;
/// Longest parameter name.
pub const MAX_NAME_LEN: usize = 128;
/// `state`, `nonce`, `login_hint`, `username`, redirect URIs.
pub const MAX_STATE_LEN: usize = super::authorize::MAX_PARAM_LEN;
/// Authorization codes and refresh tokens (ours are 43 characters).
pub const MAX_CODE_LEN: usize = 256;
/// Tokens that may be JWTs: `token`, `access_token`, `id_token_hint`.
pub const MAX_JWT_LEN: usize = 16 * 1024;
/// `client_id`, and sesame's own `rid` and `csrf` values.
pub const MAX_ID_LEN: usize = 255;
/// `client_secret` and `password`.
pub const MAX_SECRET_LEN: usize = 1024;
/// `scope` (and at most `scope::MAX_SCOPES` of them).
pub const MAX_SCOPE_LEN: usize = 4096;
/// `code_verifier` and `code_challenge` (RFC 7636 allows 128).
pub const MAX_PKCE_LEN: usize = 128;
/// Any other parameter (unknown ones are ignored, but not at any size).
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// The parameters sesame reads, by name: the only names an error may repeat.
const KNOWN_NAMES: &[&str] = &[
    "response_type",
    "response_mode",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "redirect_uri",
    "post_logout_redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "grant_type",
    "code",
    "refresh_token",
    "token",
    "token_type_hint",
    "access_token",
    "id_token_hint",
    "request",
    "request_uri",
    "username",
    "password",
    "rid",
    "csrf",
    "decision",
    "resource",
    "dpop_jkt",
];

fn known_name(name: &str) -> Option<&'static str> {
    KNOWN_NAMES.iter().copied().find(|k| *k == name)
}

/// The longest value accepted for the parameter `name`.
pub fn max_len(name: &str) -> usize {
    match name {
        "state"
        | "nonce"
        | "login_hint"
        | "username"
        | "redirect_uri"
        | "post_logout_redirect_uri" => MAX_STATE_LEN,
        "code" | "refresh_token" => MAX_CODE_LEN,
        "token" | "access_token" | "id_token_hint" | "request" | "client_assertion" => MAX_JWT_LEN,
        "client_id" | "rid" | "csrf" => MAX_ID_LEN,
        "client_secret" | "password" => MAX_SECRET_LEN,
        "scope" => MAX_SCOPE_LEN,
        "code_verifier" | "code_challenge" => MAX_PKCE_LEN,
        _ => MAX_VALUE_LEN,
    }
}

/// Request parameters: each name at most once (RFC 6749 §3.1), empty values
/// treated as absent, at most [`MAX_PARAMS`] of them, each no longer than
/// [`max_len`] of its name.
/// (Serialized as a JSON object, for a request stored whole: see `oauth::par`.)
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Params, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
            .map_err(|_| OAuthError::invalid_request("malformed parameters"))?;
        Params::from_pairs(pairs)
    }

    /// Parameters from name–value pairs, under the rules of [`Params::parse`].
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request(format!(
                "too many parameters (at most {MAX_PARAMS})"
            )));
        }
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if k.len() > MAX_NAME_LEN {
                return Err(OAuthError::invalid_request("a parameter name is too long"));
            }
            let max = max_len(&k);
            // Only names of our own are named back: an error never echoes input.
            if v.len() > max {
                return Err(OAuthError::invalid_request(match known_name(&k) {
                    Some(k) => format!("parameter `{k}` is too long (at most {max} bytes)"),
                    None => format!("a parameter is too long (at most {max} bytes)"),
                }));
            }
            // `resource` may come more than once (RFC 8707 §2): its values
            // are absolute URIs, which hold no space, so they are kept as
            // one space-separated list.
            if k == "resource" {
                if let Some(list) = map.get_mut(&k) {
                    let list: &mut String = list;
                    list.push(' ');
                    list.push_str(&v);
                    continue;
                }
            }
            if map.contains_key(&k) {
                return Err(OAuthError::invalid_request(match known_name(&k) {
                    Some(k) => format!("parameter `{k}` is repeated"),
                    None => "a parameter is repeated".to_string(),
                }));
            }
            map.insert(k, v);
        }
        Ok(Params(map))
    }

    /// The value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// These parameters without those named `names`.
    pub fn without(&self, names: &[&str]) -> Params {
        let mut map = self.0.clone();
        map.retain(|k, _| !names.contains(&k.as_str()));
        Params(map)
    }

    /// These parameters with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Params {
        self.0.insert(name.to_string(), value.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let e = Params::parse(b"state=1&b=2&state=3").unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
        assert!(e.description.contains("`state`"));
        // A name of the request's own is not echoed back.
        let e = Params::parse(b"%3Cscript%3E=1&%3Cscript%3E=2").unwrap_err();
        assert_eq!(e.description, "a parameter is repeated");
    }

    #[test]
    fn lengths_and_counts_are_limited() {
        let ok = format!(
            "state={}&code={}",
            "s".repeat(MAX_STATE_LEN),
            "c".repeat(43)
        );
        assert!(Params::parse(ok.as_bytes()).is_ok());
        for (name, max) in [
            ("state", MAX_STATE_LEN),
            ("nonce", MAX_STATE_LEN),
            ("code", MAX_CODE_LEN),
            ("refresh_token", MAX_CODE_LEN),
            ("token", MAX_JWT_LEN),
            ("client_secret", MAX_SECRET_LEN),
            ("code_verifier", MAX_PKCE_LEN),
            ("whatever", MAX_VALUE_LEN),
        ] {
            let body = format!("{name}={}", "x".repeat(max + 1));
            let e = Params::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_request");
            assert!(e.description.contains("too long"), "{name}: {e}");
        }
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(Params::parse(many.join("&").as_bytes()).is_err());
        let long_name = format!("{}=1", "n".repeat(MAX_NAME_LEN + 1));
        let e = Params::parse(long_name.as_bytes()).unwrap_err();
        assert!(!e.description.contains("nnnn"));
    }

    #[test]
    fn a_stored_request_round_trips_without_the_names_left_out() {
        let p = Params::parse(b"client_id=a&client_secret=s&scope=openid").unwrap();
        let stored = p.without(&["client_secret"]).with("client_id", "b");
        let json = serde_json::to_string(&stored).unwrap();
        assert!(!json.contains("client_secret"));
        let back: Params = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("client_id"), Some("b"));
        assert_eq!(back.get("scope"), Some("openid"));
        assert_eq!(back.get("client_secret"), None);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse(b"scope=&state=xyz").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("state"), Some("xyz"));
        assert!(p.require("scope").is_err());
    }
}
