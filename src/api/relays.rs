//! `/control/push`, `/control/pull`, `/api/relays`. (Stub; the relays issue fills it in.)

use actix_web::web;

pub fn routes(_cfg: &mut web::ServiceConfig) {}
