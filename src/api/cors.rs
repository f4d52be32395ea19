//! CORS on the API (`api_cors_origins`), so player and admin pages served from other origins
//! can call it.
//!
//! `*` (the default) allows every origin; a comma-separated list allows those origins (the
//! request's `Origin` is echoed when it is listed); an empty value sends no CORS headers.
//! Every `OPTIONS` request is answered here with headers only: preflights never reach the JWT
//! check or a handler, so they carry no data.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW, ORIGIN, VARY,
};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

const ALLOWED_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// What a browser asks to send: the JWT and form or JSON bodies.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type";
/// Seconds a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsPolicy {
    Off,
    AnyOrigin,
    Origins(Vec<String>),
}

impl CorsPolicy {
    pub fn from_config(origins: &str) -> CorsPolicy {
        let list: Vec<String> = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if list.is_empty() {
            CorsPolicy::Off
        } else if list.iter().any(|o| o == "*") {
            CorsPolicy::AnyOrigin
        } else {
            CorsPolicy::Origins(list)
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if any.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            CorsPolicy::Off => None,
            CorsPolicy::AnyOrigin => Some(HeaderValue::from_static("*")),
            CorsPolicy::Origins(list) => {
                let origin = origin?;
                let text = origin.to_str().ok()?;
                list.iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(text))
                    .then(|| origin.clone())
            }
        }
    }

    fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap, preflight: bool) {
        if let CorsPolicy::Origins(_) = self {
            // The answer depends on the Origin: shared caches must keep one copy per origin.
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(allowed) = self.allow_origin(origin) else {
            return;
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if preflight {
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
        }
    }
}

/// The middleware: answer `OPTIONS` itself, add the headers to everything else.
pub async fn apply(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let policy = req
        .app_data::<web::Data<CorsPolicy>>()
        .map(|p| p.get_ref().clone())
        .unwrap_or(CorsPolicy::Off);
    let origin = req.headers().get(ORIGIN).cloned();
    if req.method() == Method::OPTIONS {
        let mut reply = HttpResponse::NoContent()
            .insert_header((ALLOW, ALLOWED_METHODS))
            .finish();
        policy.decorate(origin.as_ref(), reply.headers_mut(), true);
        return Ok(req.into_response(reply));
    }
    // Handlers and extractors turn their errors into responses, which get the headers here;
    // the request cannot be kept for an error of our own: routing needs it unshared.
    let mut res = next.call(req).await?.map_into_boxed_body();
    policy.decorate(origin.as_ref(), res.headers_mut(), false);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(policy: &CorsPolicy, origin: &str) -> Option<String> {
        policy
            .allow_origin(Some(&HeaderValue::from_str(origin).expect("header")))
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    #[test]
    fn the_config_value_picks_the_policy() {
        assert_eq!(CorsPolicy::from_config("*"), CorsPolicy::AnyOrigin);
        assert_eq!(CorsPolicy::from_config(""), CorsPolicy::Off);
        assert_eq!(CorsPolicy::from_config(" , "), CorsPolicy::Off);
        assert_eq!(
            CorsPolicy::from_config("https://a.example/, http://b.example:8080"),
            CorsPolicy::Origins(vec![
                "https://a.example".to_string(),
                "http://b.example:8080".to_string()
            ])
        );
        assert_eq!(
            CorsPolicy::from_config("https://a.example,*"),
            CorsPolicy::AnyOrigin
        );
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_nothing() {
        let policy = CorsPolicy::from_config("https://a.example,http://b.example:8080");
        assert_eq!(
            allowed(&policy, "https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(allowed(&policy, "https://evil.example"), None);
        assert_eq!(policy.allow_origin(None), None);
        assert_eq!(
            allowed(&CorsPolicy::AnyOrigin, "https://x.example").as_deref(),
            Some("*")
        );
        assert_eq!(allowed(&CorsPolicy::Off, "https://x.example"), None);
    }
}
