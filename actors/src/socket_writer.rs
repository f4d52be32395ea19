//! The write half of an RTMP connection, as a task the session actor feeds.
//!
//! actix's `FramedWrite` buffers without limit, so a session never writes to its socket
//! directly. Control packets (rml_rtmp's responses) go through a bounded command queue in the
//! order they were produced; media comes from the viewer's own bounded frame queue, which the
//! stream channel fills under its drop-to-keyframe policy. Every write has a deadline.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::media::MediaFrame;
use crate::stream_channel::FrameReceiver;

/// Control packets a peer may leave unread before we give up on it. Replies are produced only
/// in answer to the peer's own input, so a well-behaved peer never gets near this.
pub const CONTROL_QUEUE: usize = 1024;
/// Frames written per system call at most.
const MAX_BATCH: usize = 64;

pub enum WriterCommand {
    /// Bytes produced by the RTMP session, in order.
    Bytes(Bytes),
    /// Start writing this viewer's frames on message stream `stream_id`.
    Media {
        frames: FrameReceiver,
        stream_id: u32,
    },
    /// Stop writing media (the player stopped); queued frames are discarded.
    StopMedia,
    /// Flush what is queued, then close the write side.
    Close,
}

/// Why the writer ended.
#[derive(Debug)]
pub enum WriterEnd {
    /// The session asked for it (or dropped its sender).
    Closed,
    Failed(io::Error),
    TimedOut,
}

enum Step {
    Command(Option<WriterCommand>),
    Frame(Option<Arc<MediaFrame>>),
}

/// Runs until closed or failed. `on_media_end` is called when the frame queue ends while the
/// connection stays open, so the session can tell its player the stream is over.
pub async fn run(
    mut socket: OwnedWriteHalf,
    mut commands: mpsc::Receiver<WriterCommand>,
    write_timeout: Duration,
    on_media_end: impl Fn(),
) -> WriterEnd {
    let mut media: Option<(FrameReceiver, u32)> = None;
    let mut batch: VecDeque<Bytes> = VecDeque::with_capacity(MAX_BATCH);
    loop {
        let step = tokio::select! {
            biased;
            command = commands.recv() => Step::Command(command),
            frame = next_frame(&mut media), if media.is_some() => Step::Frame(frame),
        };
        match step {
            Step::Command(Some(WriterCommand::Bytes(bytes))) => batch.push_back(bytes),
            Step::Command(Some(WriterCommand::Media { frames, stream_id })) => {
                media = Some((frames, stream_id));
            }
            Step::Command(Some(WriterCommand::StopMedia)) => media = None,
            Step::Command(Some(WriterCommand::Close)) | Step::Command(None) => {
                if let Err(end) = write_batch(&mut socket, &mut batch, write_timeout).await {
                    return end;
                }
                let _ = tokio::time::timeout(write_timeout, socket.shutdown()).await;
                return WriterEnd::Closed;
            }
            Step::Frame(Some(frame)) => {
                if let Some((frames, stream_id)) = media.as_mut() {
                    batch.push_back(frame.rtmp_chunks(*stream_id));
                    // Whatever else is already queued goes out in the same write.
                    while batch.len() < MAX_BATCH {
                        match frames.try_recv() {
                            Ok(frame) => batch.push_back(frame.rtmp_chunks(*stream_id)),
                            Err(_) => break,
                        }
                    }
                }
            }
            Step::Frame(None) => {
                media = None;
                on_media_end();
            }
        }
        if let Err(end) = write_batch(&mut socket, &mut batch, write_timeout).await {
            return end;
        }
    }
}

async fn next_frame(media: &mut Option<(FrameReceiver, u32)>) -> Option<Arc<MediaFrame>> {
    match media {
        Some((frames, _)) => frames.recv().await,
        None => std::future::pending().await,
    }
}

/// Write every queued buffer with vectored writes: the shared frame bytes go to the kernel
/// as they are, never copied into a per-connection buffer.
async fn write_batch(
    socket: &mut OwnedWriteHalf,
    batch: &mut VecDeque<Bytes>,
    write_timeout: Duration,
) -> Result<(), WriterEnd> {
    // An empty buffer would make the vectored write report 0 bytes, which means "peer gone".
    batch.retain(|b| !b.is_empty());
    while !batch.is_empty() {
        let written = {
            let slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
            match tokio::time::timeout(write_timeout, socket.write_vectored(&slices)).await {
                Err(_) => return Err(WriterEnd::TimedOut),
                Ok(Err(e)) => return Err(WriterEnd::Failed(e)),
                Ok(Ok(0)) => return Err(WriterEnd::Failed(io::ErrorKind::WriteZero.into())),
                Ok(Ok(n)) => n,
            }
        };
        let mut remaining = written;
        while remaining > 0 {
            let Some(front) = batch.front_mut() else {
                break;
            };
            if front.len() <= remaining {
                remaining -= front.len();
                batch.pop_front();
            } else {
                front.advance(remaining);
                remaining = 0;
            }
        }
    }
    Ok(())
}
