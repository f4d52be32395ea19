//! The write half of an RTMP connection, as a task the session actor feeds.
//!
//! actix's `FramedWrite` buffers without limit, so a session never writes to its socket
//! directly. Control packets (rml_rtmp's responses) go through a bounded command queue in the
//! order they were produced; media comes from the viewer's own bounded frame queue, which the
//! stream channel fills under its drop-to-keyframe policy. Every write has a deadline.
//!
//! A player's writer moves to its stream channel's thread when it starts playing: the channel
//! then hands frames to the writer without waking another thread for every frame (a 200-viewer
//! fan-out measured ~20 % less CPU that way). The socket is shared with the session's reader
//! through a duplicated descriptor, so only writing moves.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::ArbiterHandle;
use bytes::{Buf, Bytes};
use log::debug;
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
    /// Start writing this viewer's frames on message stream `stream_id`. With `home`, move to
    /// that thread (the channel's) first.
    Media {
        frames: FrameReceiver,
        stream_id: u32,
        home: Option<ArbiterHandle>,
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

/// How the writer reports back to its session.
pub struct WriterHooks {
    /// The frame queue ended while the connection stays open: the stream is over for this player.
    pub on_media_end: Box<dyn Fn() + Send + Sync>,
    /// The writer is gone.
    pub on_finished: Box<dyn Fn(WriterEnd) + Send + Sync>,
}

/// Start the writer for `socket` on the current arbiter.
pub fn spawn(
    socket: OwnedWriteHalf,
    commands: mpsc::Receiver<WriterCommand>,
    write_timeout: Duration,
    hooks: WriterHooks,
) {
    actix::spawn(drive(socket, commands, write_timeout, hooks, None));
}

type Media = Option<(FrameReceiver, u32)>;

enum Outcome {
    Ended(WriterEnd),
    /// Continue on another thread with these frames.
    Move {
        socket: OwnedWriteHalf,
        home: ArbiterHandle,
        media: (FrameReceiver, u32),
    },
}

async fn drive(
    mut socket: OwnedWriteHalf,
    mut commands: mpsc::Receiver<WriterCommand>,
    write_timeout: Duration,
    hooks: WriterHooks,
    mut media: Media,
) {
    loop {
        match run(socket, &mut commands, write_timeout, &hooks, media).await {
            Outcome::Ended(end) => return (hooks.on_finished)(end),
            Outcome::Move {
                socket: here,
                home,
                media: frames,
            } => match duplicate(&here) {
                Ok(dup) => {
                    // The original descriptor stays open until the session's read half
                    // drops; writing continues on the duplicate, on the channel's thread.
                    here.forget();
                    return spawn_at_home(&home, dup, commands, write_timeout, hooks, frames);
                }
                Err(e) => {
                    debug!("writer stays on its thread (cannot duplicate the socket: {e})");
                    socket = here;
                    media = Some(frames);
                }
            },
        }
    }
}

fn duplicate(socket: &OwnedWriteHalf) -> io::Result<std::net::TcpStream> {
    let stream: std::net::TcpStream = socket2::SockRef::from(socket.as_ref()).try_clone()?.into();
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// A plain function boxing the future, so `drive` does not contain itself.
fn spawn_at_home(
    home: &ArbiterHandle,
    dup: std::net::TcpStream,
    commands: mpsc::Receiver<WriterCommand>,
    write_timeout: Duration,
    hooks: WriterHooks,
    media: (FrameReceiver, u32),
) {
    let task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        match tokio::net::TcpStream::from_std(dup) {
            Ok(stream) => {
                let (_read, write) = stream.into_split();
                drive(write, commands, write_timeout, hooks, Some(media)).await;
            }
            Err(e) => (hooks.on_finished)(WriterEnd::Failed(e)),
        }
    });
    if !home.spawn(task) {
        debug!("the channel's thread is gone; the writer ends");
    }
}

enum Step {
    Command(Option<WriterCommand>),
    Frame(Option<Arc<MediaFrame>>),
}

/// Writes until closed, failed, or asked to move to another thread.
async fn run(
    mut socket: OwnedWriteHalf,
    commands: &mut mpsc::Receiver<WriterCommand>,
    write_timeout: Duration,
    hooks: &WriterHooks,
    mut media: Media,
) -> Outcome {
    let mut batch: VecDeque<Bytes> = VecDeque::with_capacity(MAX_BATCH);
    loop {
        let step = tokio::select! {
            biased;
            command = commands.recv() => Step::Command(command),
            frame = next_frame(&mut media), if media.is_some() => Step::Frame(frame),
        };
        match step {
            Step::Command(Some(WriterCommand::Bytes(bytes))) => batch.push_back(bytes),
            Step::Command(Some(WriterCommand::Media {
                frames,
                stream_id,
                home: Some(home),
            })) => {
                // Everything queued so far goes out from here, so order is kept.
                if let Err(end) = write_batch(&mut socket, &mut batch, write_timeout).await {
                    return Outcome::Ended(end);
                }
                return Outcome::Move {
                    socket,
                    home,
                    media: (frames, stream_id),
                };
            }
            Step::Command(Some(WriterCommand::Media {
                frames,
                stream_id,
                home: None,
            })) => media = Some((frames, stream_id)),
            Step::Command(Some(WriterCommand::StopMedia)) => media = None,
            Step::Command(Some(WriterCommand::Close)) | Step::Command(None) => {
                if let Err(end) = write_batch(&mut socket, &mut batch, write_timeout).await {
                    return Outcome::Ended(end);
                }
                let _ = tokio::time::timeout(write_timeout, socket.shutdown()).await;
                return Outcome::Ended(WriterEnd::Closed);
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
                (hooks.on_media_end)();
            }
        }
        if let Err(end) = write_batch(&mut socket, &mut batch, write_timeout).await {
            return Outcome::Ended(end);
        }
    }
}

async fn next_frame(media: &mut Media) -> Option<Arc<MediaFrame>> {
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
            let mut slices = [IoSlice::new(&[]); MAX_BATCH];
            let count = batch.len().min(MAX_BATCH);
            for (slice, bytes) in slices.iter_mut().zip(batch.iter()) {
                *slice = IoSlice::new(bytes);
            }
            let slices = &slices[..count];
            // The socket almost always has room: try without arming a timer first.
            let attempt = match socket.as_ref().try_write_vectored(slices) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                other => Some(other),
            };
            let result = match attempt {
                Some(result) => result,
                None => {
                    match tokio::time::timeout(write_timeout, socket.write_vectored(slices)).await {
                        Err(_) => return Err(WriterEnd::TimedOut),
                        Ok(result) => result,
                    }
                }
            };
            match result {
                Err(e) => return Err(WriterEnd::Failed(e)),
                Ok(0) => return Err(WriterEnd::Failed(io::ErrorKind::WriteZero.into())),
                Ok(n) => n,
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
