//! livego's JSON envelope: `{"status": N, "data": ...}` with the HTTP status equal to N.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

/// Field order matters to byte-for-byte livego clients: `status` first, then `data`.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    status: u16,
    data: T,
}

pub fn reply(status: StatusCode, data: impl Serialize) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        status: status.as_u16(),
        data,
    })
}

pub fn ok(data: impl Serialize) -> HttpResponse {
    reply(StatusCode::OK, data)
}
