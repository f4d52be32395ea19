//! livego's JSON envelope: `{"status": N, "data": ...}` with the HTTP status equal to N.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::json;

pub fn reply(status: StatusCode, data: impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .json(json!({ "status": status.as_u16(), "data": data }))
}

pub fn ok(data: impl Serialize) -> HttpResponse {
    reply(StatusCode::OK, data)
}
