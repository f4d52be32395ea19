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

/// A viewer session of a stream's HLS output, for statistics.
#[derive(Debug, Clone)]
pub struct HlsSessionInfo {
    pub key: crate::client::StreamKey,
    pub snapshot: crate::client::ClientSnapshot,
}

/// List every live HLS viewer session.
#[derive(Message)]
#[rtype(result = "Vec<HlsSessionInfo>")]
pub struct ListHlsSessions;

impl Handler<ListHlsSessions> for HlsHub {
    type Result = MessageResult<ListHlsSessions>;

    fn handle(&mut self, _msg: ListHlsSessions, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(Vec::new())
    }
}

/// End one HLS viewer session (API kick). Replies whether it existed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KickHlsSession {
    pub id: crate::client::ClientId,
}

impl Handler<KickHlsSession> for HlsHub {
    type Result = bool;

    fn handle(&mut self, _msg: KickHlsSession, _ctx: &mut Self::Context) -> bool {
        false
    }
}
