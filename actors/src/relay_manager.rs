//! The relay manager: starts, stops and lists relay sessions (API pull/push and static push).
//! (Stub; the relays issue fills it in.)

use actix::prelude::*;

use crate::registry::StreamPublished;

#[derive(Default)]
pub struct RelayManager;

impl Actor for RelayManager {
    type Context = Context<Self>;
}

impl Handler<StreamPublished> for RelayManager {
    type Result = ();

    fn handle(&mut self, _msg: StreamPublished, _ctx: &mut Self::Context) {}
}
