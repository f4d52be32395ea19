//! The HTTP-FLV viewer: one actor per `GET /<app>/<room>.flv`.
//!
//! The actor owns the viewer's membership in its channel: it subscribes through the registry,
//! unsubscribes when the response body is dropped (client gone) and ends the response when
//! kicked. The frames themselves flow from the channel's bounded queue straight into the
//! response body as shared FLV tags; they do not pass through the actor's mailbox.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use bytes::Bytes;
use futures_util::Stream;
use log::{debug, info};

use crate::client::{ClientId, ClientInfo, ClientKind, StreamKey, ViewerControl};
use crate::media::flv;
use crate::registry::{Play, Registry};
use crate::stream_channel::{FrameReceiver, PlayRejected, StreamChannel, Unsubscribe};

// ---------------------------------------------------------------------------------------------
// Messages

/// The viewer's subscription is in place.
#[derive(Message)]
#[rtype(result = "()")]
struct Attached {
    channel: Addr<StreamChannel>,
}

/// The HTTP response body was dropped: the client went away or the response ended.
#[derive(Message)]
#[rtype(result = "()")]
struct BodyDropped;

// ---------------------------------------------------------------------------------------------
// The actor

pub struct FlvViewer {
    id: ClientId,
    key: StreamKey,
    channel: Option<Addr<StreamChannel>>,
}

impl FlvViewer {
    /// Subscribe a new HTTP-FLV viewer to `key`. The returned body streams the FLV header, the
    /// GOP replay and then live tags until the stream ends, the viewer is kicked or the client
    /// goes away.
    pub async fn open(
        registry: &Addr<Registry>,
        key: StreamKey,
        remote_addr: Option<SocketAddr>,
        url: String,
    ) -> Result<FlvBody, PlayRejected> {
        let info = ClientInfo::new(ClientKind::HttpFlv, remote_addr, url);
        let id = info.id;
        let viewer = FlvViewer {
            id,
            key: key.clone(),
            channel: None,
        }
        .start();
        let request = registry.send(Play {
            key,
            info,
            control: Some(viewer.clone().recipient()),
            require_publisher: true,
        });
        match request.await {
            Ok(Ok(subscription)) => {
                viewer.do_send(Attached {
                    channel: subscription.channel,
                });
                Ok(FlvBody {
                    header: Some(Bytes::from_static(&flv::FLV_HEADER_AV)),
                    frames: subscription.frames,
                    viewer,
                })
            }
            Ok(Err(e)) => {
                viewer.do_send(BodyDropped);
                Err(e)
            }
            Err(_) => {
                viewer.do_send(BodyDropped);
                Err(PlayRejected::ChannelGone)
            }
        }
    }
}

impl Actor for FlvViewer {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(channel) = self.channel.take() {
            channel.do_send(Unsubscribe { viewer: self.id });
            info!("viewer={} stream={} http-flv closed", self.id, self.key);
        }
    }
}

impl Handler<Attached> for FlvViewer {
    type Result = ();

    fn handle(&mut self, msg: Attached, _ctx: &mut Self::Context) {
        info!("viewer={} stream={} http-flv started", self.id, self.key);
        self.channel = Some(msg.channel);
    }
}

impl Handler<BodyDropped> for FlvViewer {
    type Result = ();

    fn handle(&mut self, _msg: BodyDropped, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<ViewerControl> for FlvViewer {
    type Result = ();

    fn handle(&mut self, msg: ViewerControl, ctx: &mut Self::Context) {
        let ViewerControl::Kick { reason } = msg;
        debug!("viewer={} kicked: {reason}", self.id);
        // The channel dropped our queue, so the body ends after what is already queued.
        self.channel = None;
        ctx.stop();
    }
}

/// The endless response body of an HTTP-FLV viewer.
pub struct FlvBody {
    header: Option<Bytes>,
    frames: FrameReceiver,
    viewer: Addr<FlvViewer>,
}

impl Stream for FlvBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if let Some(header) = self.header.take() {
            return Poll::Ready(Some(Ok(header)));
        }
        match self.frames.poll_recv(cx) {
            Poll::Ready(Some(frame)) => Poll::Ready(Some(Ok(frame.flv_tag()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for FlvBody {
    fn drop(&mut self) {
        self.viewer.do_send(BodyDropped);
    }
}
