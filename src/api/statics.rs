//! The web console: `/` and `/statics/…` from the `statics/` folder. (Stub; the console issue
//! fills it in.)

use actix_web::web;

pub fn routes(_cfg: &mut web::ServiceConfig) {}
