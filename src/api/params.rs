//! Request parameters the livego way: from the query string or an urlencoded form body, on any
//! method (Go's `ParseForm`; a body value wins over a query value of the same name).

use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{Stream, StreamExt};

use crate::envelope;

/// Forms here carry a room name or two; anything bigger is not one of ours.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Why the parameters could not be read; [`ParamError::reply`] answers it.
#[derive(Debug)]
pub struct ParamError {
    status: StatusCode,
    message: String,
}

impl ParamError {
    fn bad_request(message: String) -> ParamError {
        ParamError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    pub fn reply(self) -> HttpResponse {
        envelope::reply(self.status, self.message)
    }
}

pub struct Params {
    /// Body pairs first, then query pairs, so the first match follows livego's precedence.
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parse the query string and, when the body is `application/x-www-form-urlencoded`, the
    /// body. A malformed or oversized input is answered with an envelope error.
    pub async fn read<S>(req: &HttpRequest, mut payload: S) -> Result<Params, ParamError>
    where
        S: Stream<Item = Result<web::Bytes, PayloadError>> + Unpin,
    {
        let query = Self::query(req)?;
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let mut pairs = Vec::new();
        if is_form {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ParamError::bad_request(format!("cannot read the body: {e}")))?;
                if body.len() + chunk.len() > MAX_FORM_BYTES {
                    return Err(ParamError {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        message: format!("form body larger than {MAX_FORM_BYTES} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                .map_err(|e| ParamError::bad_request(format!("malformed form body: {e}")))?;
        }
        pairs.extend(query.pairs);
        Ok(Params { pairs })
    }

    /// The query string alone (for middleware, which must not consume the body).
    pub fn query(req: &HttpRequest) -> Result<Params, ParamError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .map(|pairs| Params { pairs })
            .map_err(|e| ParamError::bad_request(format!("malformed query string: {e}")))
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[actix_web::test]
    async fn query_and_form_body_both_count_and_the_body_wins() {
        let (req, payload) = TestRequest::post()
            .uri("/control/get?room=from_query&other=q")
            .insert_header((
                CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            ))
            .set_payload("room=from+body")
            .to_http_parts();
        let params = Params::read(&req, payload).await.expect("parses");
        assert_eq!(params.get("room"), Some("from body"));
        assert_eq!(params.get("other"), Some("q"));
        assert_eq!(params.get("missing"), None);
    }

    #[actix_web::test]
    async fn a_non_form_body_is_ignored_and_blank_values_are_absent() {
        let (req, payload) = TestRequest::post()
            .uri("/control/get?room=%20%20")
            .insert_header((CONTENT_TYPE, "application/json"))
            .set_payload(r#"{"room":"x"}"#)
            .to_http_parts();
        let params = Params::read(&req, payload).await.expect("parses");
        assert_eq!(params.get("room"), None);
    }

    #[actix_web::test]
    async fn an_oversized_form_is_refused() {
        let (req, payload) = TestRequest::post()
            .uri("/control/get")
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(format!("room={}", "a".repeat(MAX_FORM_BYTES)))
            .to_http_parts();
        let status = Params::read(&req, payload).await.err().map(|e| e.status);
        assert_eq!(status, Some(StatusCode::PAYLOAD_TOO_LARGE));
    }
}
