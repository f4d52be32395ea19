//! The HLS hub: keeps one HLS segmenter per stream of an app with `hls = true`.
//! (Stub; the HLS issue fills it in.)

use actix::prelude::*;

use crate::registry::StreamPublished;

#[derive(Default)]
pub struct HlsHub;

impl Actor for HlsHub {
    type Context = Context<Self>;
}

impl Handler<StreamPublished> for HlsHub {
    type Result = ();

    fn handle(&mut self, _msg: StreamPublished, _ctx: &mut Self::Context) {}
}
