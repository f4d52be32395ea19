//! JWT on the whole API (`[jwt] secret`, `[jwt] algorithm`), the console included.
//!
//! Like livego: the token comes from `Authorization: Bearer <token>`, else from `?jwt=<token>`;
//! the secret's bytes are the HMAC key; the token's `alg` must be the configured one; `exp` and
//! `nbf` are enforced when present; no claim is required. Unlike livego, no method skips the
//! check (livego's middleware let `OPTIONS` through to the handler, which then answered with
//! data). CORS preflights are answered before this check, without data (see `cors.rs`).
//!
//! The console's own files (`/`, `/statics/…`, `/console-config.json`) are the one exception:
//! they hold no keys, statistics or stream data, and the page must load before it can ask the
//! operator for a token (a browser cannot add `?jwt=` to the scripts a page loads). Every call
//! the page then makes to the API carries the token.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use log::{debug, error, info};

use super::params::Params;
use super::statics;
use crate::config::JwtConfig;
use crate::envelope;

pub enum JwtPolicy {
    /// No secret configured: the API is open.
    Off,
    On(Box<Verifier>),
    /// A secret with an algorithm we cannot check it with: refuse everything rather than
    /// fall back to an open API.
    Misconfigured(String),
}

pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    algorithm: Algorithm,
}

impl JwtPolicy {
    pub fn from_config(config: &JwtConfig) -> JwtPolicy {
        if config.secret.is_empty() {
            return JwtPolicy::Off;
        }
        let name = config.algorithm.trim().to_ascii_uppercase();
        let algorithm = match name.as_str() {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => {
                let reason = format!(
                    "server misconfiguration: [jwt] algorithm {:?} cannot be used with a shared \
                     secret (use HS256, HS384 or HS512)",
                    config.algorithm
                );
                error!("API: {reason}; every API request is refused");
                return JwtPolicy::Misconfigured(reason);
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // livego (jwt-go) checks no audience and allows no clock leeway.
        validation.validate_aud = false;
        validation.leeway = 0;
        info!("API: every request needs a JWT signed with {name}");
        JwtPolicy::On(Box::new(Verifier {
            key: DecodingKey::from_secret(config.secret.as_bytes()),
            validation,
            algorithm,
        }))
    }

    /// `Err(reason)` when the request may not pass.
    pub fn check(
        &self,
        authorization: Option<&str>,
        query_token: Option<&str>,
    ) -> Result<(), String> {
        let verifier = match self {
            JwtPolicy::Off => return Ok(()),
            JwtPolicy::Misconfigured(reason) => return Err(reason.clone()),
            JwtPolicy::On(verifier) => verifier,
        };
        let token = match authorization {
            // Like livego: a malformed header is an error even when `?jwt=` is present.
            Some(header) => {
                bearer_token(header).ok_or("Authorization header format must be Bearer {token}")?
            }
            None => query_token.ok_or("Required authorization token not found")?,
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("malformed token: {}", describe(e.kind())))?;
        if header.alg != verifier.algorithm {
            return Err(format!(
                "Expected {:?} signing method but token specified {:?}",
                verifier.algorithm, header.alg
            ));
        }
        jsonwebtoken::decode::<serde_json::Value>(token, &verifier.key, &verifier.validation)
            .map(|_| ())
            .map_err(|e| describe(e.kind()))
    }
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "signature is invalid".to_string(),
        ErrorKind::ExpiredSignature => "Token is expired".to_string(),
        ErrorKind::ImmatureSignature => "Token is not valid yet".to_string(),
        ErrorKind::InvalidAlgorithm => "token signed with an unexpected algorithm".to_string(),
        ErrorKind::InvalidToken => "token is not a JWT (header.payload.signature)".to_string(),
        ErrorKind::InvalidClaimFormat(claim) => format!("claim {claim:?} is malformed"),
        ErrorKind::Base64(e) => format!("bad base64url: {e}"),
        ErrorKind::Json(e) => format!("bad JSON: {e}"),
        ErrorKind::Utf8(e) => format!("bad UTF-8: {e}"),
        other => format!("The token isn't valid: {other:?}"),
    }
}

/// The middleware: pass or answer 403 with the reason.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let verdict = match req.app_data::<web::Data<JwtPolicy>>() {
        Some(_) if statics::is_public_path(req.path()) => Ok(()),
        Some(policy) => {
            let authorization = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or(""));
            let query = Params::query(req.request()).ok();
            policy.check(authorization, query.as_ref().and_then(|q| q.get("jwt")))
        }
        // Fail closed: an API built without its policy must not be open.
        None => Err("server misconfiguration: no JWT policy".to_string()),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(reason) => {
            debug!("API: {} {} refused: {reason}", req.method(), req.path());
            Ok(req.into_response(envelope::reply(StatusCode::FORBIDDEN, reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "s3cret";

    fn policy(algorithm: &str) -> JwtPolicy {
        JwtPolicy::from_config(&JwtConfig {
            secret: SECRET.to_string(),
            algorithm: algorithm.to_string(),
        })
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn token(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encodes")
    }

    #[test]
    fn no_secret_means_no_check() {
        let off = JwtPolicy::from_config(&JwtConfig::default());
        assert_eq!(off.check(None, None), Ok(()));
    }

    #[test]
    fn a_valid_token_passes_from_either_place() {
        let p = policy("HS256");
        let t = token(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "ops", "exp": now() + 60}),
        );
        assert_eq!(p.check(Some(&format!("Bearer {t}")), None), Ok(()));
        assert_eq!(p.check(Some(&format!("bearer  {t}")), None), Ok(()));
        assert_eq!(p.check(None, Some(&t)), Ok(()));
        // No claims at all is fine (livego requires none).
        let bare = token(Algorithm::HS256, SECRET, json!({}));
        assert_eq!(p.check(None, Some(&bare)), Ok(()));
    }

    #[test]
    fn each_failure_has_its_reason() {
        let p = policy("HS256");
        let good = token(Algorithm::HS256, SECRET, json!({}));
        let cases = [
            (
                p.check(None, None),
                "Required authorization token not found",
            ),
            (
                p.check(Some(&format!("Token {good}")), Some(&good)),
                "Authorization header format must be Bearer {token}",
            ),
            (p.check(None, Some("not.a.jwt")), "malformed token"),
            (p.check(None, Some("garbage")), "malformed token"),
            (
                p.check(None, Some(&token(Algorithm::HS256, "other", json!({})))),
                "signature is invalid",
            ),
            (
                p.check(None, Some(&token(Algorithm::HS512, SECRET, json!({})))),
                "Expected HS256 signing method but token specified HS512",
            ),
            (
                p.check(
                    None,
                    Some(&token(Algorithm::HS256, SECRET, json!({"exp": now() - 10}))),
                ),
                "Token is expired",
            ),
            (
                p.check(
                    None,
                    Some(&token(
                        Algorithm::HS256,
                        SECRET,
                        json!({"nbf": now() + 600}),
                    )),
                ),
                "Token is not valid yet",
            ),
        ];
        for (result, expected) in cases {
            let reason = result.expect_err(expected);
            assert!(
                reason.contains(expected),
                "{reason:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let p = policy("HS256");
        // {"alg":"none","typ":"JWT"} . {} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.";
        assert!(p.check(None, Some(none)).is_err());
    }

    #[test]
    fn other_hmac_algorithms_can_be_configured_and_others_refuse_everything() {
        let p = policy("hs512");
        let t = token(Algorithm::HS512, SECRET, json!({}));
        assert_eq!(p.check(None, Some(&t)), Ok(()));
        let broken = policy("RS256");
        let reason = broken.check(None, Some(&t)).expect_err("misconfigured");
        assert!(reason.contains("RS256"), "{reason}");
    }
}
