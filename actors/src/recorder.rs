//! The FLV recorder: one actor per recorded stream, writing `flv_dir/<app>/<room>_<unix>.flv`.
//!
//! It subscribes to the stream's channel like a viewer (`ClientKind::Recorder`). Frames go
//! through a bounded queue to a writer thread, so the channel never waits for the disk; when
//! the disk falls behind and the queue is full, frames are dropped up to the next keyframe (the
//! file stays decodable) and the gap is logged. The file starts with an `onMetaData` whose
//! `duration` and `filesize` are fixed-size numbers, patched in place when the stream ends so
//! players can show the length and seek. A disk error ends the recording with a logged error;
//! the stream itself goes on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::{BufMut, Bytes, BytesMut};
use log::{debug, error, info, warn};
use rml_rtmp::rml_amf0::{self, Amf0Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{ClientId, ClientInfo, ClientKind, StreamKey, ViewerControl};
use crate::media::{flv, FrameKind, MediaFrame};
use crate::recorder_hub::{RecorderHub, RecordingEnded};
use crate::registry::{Play, Registry};
use crate::stream_channel::{StreamChannel, Unsubscribe};

/// Frames waiting for the disk. About 10 s of a typical stream: enough to ride out a busy disk,
/// small enough that a stuck one is noticed.
const DISK_QUEUE: usize = 1024;
const WRITE_BUFFER: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// The file format (no IO)

/// The bytes of one FLV recording: the header and a patchable `onMetaData` first, then every
/// frame with its timestamp rebased so the file starts at 0.
#[derive(Debug)]
pub struct FlvRecording {
    base: Option<u32>,
    /// Latest rebased timestamp written.
    last: u32,
    written: u64,
    duration_at: u64,
    filesize_at: u64,
}

const AMF_NUMBER: u8 = 0x00;
const AMF_BOOLEAN: u8 = 0x01;
const AMF_STRING: u8 = 0x02;
const AMF_ECMA_ARRAY: u8 = 0x08;

impl FlvRecording {
    /// The start of the file. `publisher_metadata` is the stream's `onMetaData` body, whose
    /// fields are kept after `duration` and `filesize`.
    pub fn start(publisher_metadata: Option<&[u8]>) -> (FlvRecording, Bytes) {
        let mut fields: Vec<(String, Amf0Value)> = publisher_metadata
            .and_then(|body| rml_amf0::deserialize(&mut Cursor::new(body)).ok())
            .and_then(|values| {
                values.into_iter().find_map(|v| match v {
                    Amf0Value::Object(properties) => Some(properties),
                    _ => None,
                })
            })
            .map(|properties| properties.into_iter().collect())
            .unwrap_or_default();
        fields.retain(|(name, value)| {
            name != "duration"
                && name != "filesize"
                && name.len() <= usize::from(u16::MAX)
                && matches!(
                    value,
                    Amf0Value::Number(_) | Amf0Value::Boolean(_) | Amf0Value::Utf8String(_)
                )
        });
        fields.sort_by(|a, b| a.0.cmp(&b.0));

        let mut body = BytesMut::with_capacity(512);
        put_string(&mut body, "onMetaData");
        body.put_u8(AMF_ECMA_ARRAY);
        body.put_u32(u32::try_from(fields.len() + 2).unwrap_or(u32::MAX));
        put_key(&mut body, "duration");
        body.put_u8(AMF_NUMBER);
        let duration_in_body = body.len();
        body.put_f64(0.0);
        put_key(&mut body, "filesize");
        body.put_u8(AMF_NUMBER);
        let filesize_in_body = body.len();
        body.put_f64(0.0);
        for (name, value) in &fields {
            match value {
                Amf0Value::Number(n) => {
                    put_key(&mut body, name);
                    body.put_u8(AMF_NUMBER);
                    body.put_f64(*n);
                }
                Amf0Value::Boolean(b) => {
                    put_key(&mut body, name);
                    body.put_u8(AMF_BOOLEAN);
                    body.put_u8(u8::from(*b));
                }
                Amf0Value::Utf8String(s) if s.len() <= usize::from(u16::MAX) => {
                    put_key(&mut body, name);
                    put_string(&mut body, s);
                }
                _ => {}
            }
        }
        body.put_slice(&[0, 0, 9]);

        let tag = flv::encode_tag(flv::TAG_SCRIPT, 0, &body);
        let body_at = (flv::FILE_HEADER_LEN + flv::TAG_HEADER_LEN) as u64;
        let mut head = BytesMut::with_capacity(flv::FILE_HEADER_LEN + tag.len());
        head.put_slice(&flv::FLV_HEADER_AV);
        head.put_slice(&tag);
        let recording = FlvRecording {
            base: None,
            last: 0,
            written: head.len() as u64,
            duration_at: body_at + duration_in_body as u64,
            filesize_at: body_at + filesize_in_body as u64,
        };
        (recording, head.freeze())
    }

    /// The complete tag for `frame`, on the file's clock.
    pub fn tag(&mut self, frame: &MediaFrame) -> Bytes {
        let base = *self.base.get_or_insert(frame.timestamp);
        // Audio interleaved just behind the first video frame would land before zero.
        let timestamp = u32::try_from(frame.timestamp.wrapping_sub(base) as i32).unwrap_or(0);
        self.last = self.last.max(timestamp);
        let tag = flv::encode_tag(frame.kind.type_id(), timestamp, &frame.body);
        self.written += tag.len() as u64;
        tag
    }

    pub fn duration_secs(&self) -> f64 {
        f64::from(self.last) / 1000.0
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// `(file offset, new bytes)` for `duration` and `filesize`, once everything is written.
    pub fn patches(&self) -> [(u64, [u8; 8]); 2] {
        [
            (self.duration_at, self.duration_secs().to_be_bytes()),
            (self.filesize_at, (self.written as f64).to_be_bytes()),
        ]
    }
}

fn put_key(out: &mut BytesMut, key: &str) {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_slice(&key.as_bytes()[..usize::from(len)]);
}

fn put_string(out: &mut BytesMut, s: &str) {
    out.put_u8(AMF_STRING);
    put_key(out, s);
}

/// A room name as a file name: no separators, no leading dot, nothing a shell or another OS
/// would trip over.
pub fn file_stem(room: &str) -> String {
    let mut stem: String = room
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        stem.insert(0, '_');
    }
    stem
}

/// What the recorder does when its disk queue is full: drop frames until a keyframe fits with
/// room to spare (a file resumed mid-GOP would not decode), keeping the sequence headers and
/// metadata that arrive meanwhile to write just before it.
#[derive(Debug, Default)]
pub struct DropToKeyframe {
    skipping: bool,
    dropped: u64,
    has_video: bool,
    held: Vec<Arc<MediaFrame>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum GateEvent {
    None,
    /// The queue was full; dropping starts.
    Overflowed,
    /// Writing resumes after `dropped` frames were lost.
    Resumed {
        dropped: u64,
    },
}

impl DropToKeyframe {
    /// The frames to queue now, given the queue's `free` slots out of `max`.
    pub fn admit(
        &mut self,
        frame: Arc<MediaFrame>,
        free: usize,
        max: usize,
    ) -> (Vec<Arc<MediaFrame>>, GateEvent) {
        if frame.kind == FrameKind::Video && frame.is_sequence_header {
            self.has_video = true;
        }
        let is_header = frame.is_sequence_header || frame.kind == FrameKind::Metadata;
        if self.skipping {
            if is_header {
                self.hold(frame);
                return (Vec::new(), GateEvent::None);
            }
            let resume_point = if self.has_video {
                frame.kind == FrameKind::Video && frame.is_keyframe
            } else {
                frame.kind == FrameKind::Audio
            };
            // Resume only with room for a burst, or the recording would flap.
            if !resume_point || free < self.held.len() + 1 + max / 4 {
                self.dropped += 1;
                return (Vec::new(), GateEvent::None);
            }
            let mut out = std::mem::take(&mut self.held);
            out.push(frame);
            self.skipping = false;
            let dropped = std::mem::take(&mut self.dropped);
            return (out, GateEvent::Resumed { dropped });
        }
        if free == 0 {
            self.skipping = true;
            if is_header {
                self.hold(frame);
            } else {
                self.dropped = 1;
            }
            return (Vec::new(), GateEvent::Overflowed);
        }
        (vec![frame], GateEvent::None)
    }

    /// Keep the latest header of each kind.
    fn hold(&mut self, frame: Arc<MediaFrame>) {
        self.held
            .retain(|h| h.kind != frame.kind || h.is_sequence_header != frame.is_sequence_header);
        self.held.push(frame);
    }
}

// ---------------------------------------------------------------------------------------------
// The writer thread

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("cannot create {path}: {error}")]
    Create { path: PathBuf, error: io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
}

struct Finished {
    path: PathBuf,
    bytes: u64,
    duration: f64,
}

/// Creates `dir/<stem>_<unix>.flv`, or with a `_N` suffix if that exists (a restart within the
/// same second must not overwrite the previous recording).
fn create_file(dir: &Path, stem: &str) -> Result<(PathBuf, File), RecordError> {
    fs::create_dir_all(dir).map_err(|error| RecordError::Create {
        path: dir.to_path_buf(),
        error,
    })?;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut attempt = 0;
    loop {
        let name = if attempt == 0 {
            format!("{stem}_{unix}.flv")
        } else {
            format!("{stem}_{unix}_{attempt}.flv")
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(error) => return Err(RecordError::Create { path, error }),
        }
    }
}

fn record(
    dir: &Path,
    key: &StreamKey,
    frames: &mut mpsc::Receiver<Arc<MediaFrame>>,
) -> Result<Option<Finished>, RecordError> {
    // No file until there is something to put in it.
    let Some(first) = frames.blocking_recv() else {
        return Ok(None);
    };
    let (path, file) = create_file(&dir.join(file_stem(&key.app)), &file_stem(&key.room))?;
    info!("stream={key} recording to {}", path.display());
    let failed = |error: io::Error| RecordError::Write {
        path: path.clone(),
        error,
    };
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let metadata = (first.kind == FrameKind::Metadata).then(|| first.body.clone());
    let (mut recording, head) = FlvRecording::start(metadata.as_deref());
    out.write_all(&head).map_err(failed)?;
    if metadata.is_none() {
        out.write_all(&recording.tag(&first)).map_err(failed)?;
    }
    while let Some(frame) = frames.blocking_recv() {
        out.write_all(&recording.tag(&frame)).map_err(failed)?;
    }
    let mut file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    for (offset, bytes) in recording.patches() {
        file.seek(SeekFrom::Start(offset)).map_err(failed)?;
        file.write_all(&bytes).map_err(failed)?;
    }
    file.sync_all().map_err(failed)?;
    Ok(Some(Finished {
        path: path.clone(),
        bytes: recording.bytes_written(),
        duration: recording.duration_secs(),
    }))
}

fn write_recording(dir: PathBuf, key: StreamKey, mut frames: mpsc::Receiver<Arc<MediaFrame>>) {
    match record(&dir, &key, &mut frames) {
        Ok(Some(done)) => info!(
            "stream={key} recording finished: {} ({} bytes, {:.1} s)",
            done.path.display(),
            done.bytes,
            done.duration
        ),
        Ok(None) => debug!("stream={key} ended before anything was recorded"),
        Err(e) => error!("stream={key} recording failed and stopped (the stream goes on): {e}"),
    }
    // Dropping `frames` here tells the actor the recording is over.
}

// ---------------------------------------------------------------------------------------------
// The actor

pub struct Recorder {
    id: ClientId,
    key: StreamKey,
    registry: Addr<Registry>,
    hub: Addr<RecorderHub>,
    dir: PathBuf,
    channel: Option<Addr<StreamChannel>>,
    disk: Option<mpsc::Sender<Arc<MediaFrame>>>,
    gate: DropToKeyframe,
}

impl Recorder {
    pub fn new(
        id: ClientId,
        key: StreamKey,
        registry: Addr<Registry>,
        hub: Addr<RecorderHub>,
        dir: PathBuf,
    ) -> Recorder {
        Recorder {
            id,
            key,
            registry,
            hub,
            dir,
            channel: None,
            disk: None,
            gate: DropToKeyframe::default(),
        }
    }

    fn start_writer(&mut self, ctx: &mut Context<Self>) -> bool {
        let (tx, rx) = mpsc::channel(DISK_QUEUE);
        let dir = self.dir.clone();
        let key = self.key.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("record-{}", file_stem(&self.key.room)))
            .spawn(move || write_recording(dir, key, rx));
        match spawned {
            Ok(_) => {
                self.disk = Some(tx);
                true
            }
            Err(e) => {
                error!("stream={} cannot start the recording thread: {e}", self.key);
                ctx.stop();
                false
            }
        }
    }

    fn on_frame(&mut self, frame: Arc<MediaFrame>, ctx: &mut Context<Self>) {
        let Some(disk) = self.disk.as_ref() else {
            return;
        };
        // This actor is the queue's only sender, so its free capacity cannot shrink meanwhile.
        let (admitted, event) = self.gate.admit(frame, disk.capacity(), disk.max_capacity());
        match event {
            GateEvent::None => {}
            GateEvent::Overflowed => warn!(
                "stream={} recording: the disk is too slow; dropping frames until it catches up",
                self.key
            ),
            GateEvent::Resumed { dropped } => info!(
                "stream={} recording resumed; {dropped} frames were dropped while the disk was slow",
                self.key
            ),
        }
        for frame in admitted {
            if let Err(mpsc::error::TrySendError::Closed(_)) = disk.try_send(frame) {
                // The writer stopped after an error it has logged.
                self.disk = None;
                ctx.stop();
                return;
            }
        }
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let mut info = ClientInfo::new(
            ClientKind::Recorder,
            None,
            format!("file://{}", self.dir.display()),
        );
        info.id = self.id;
        let request = self.registry.send(Play {
            key: self.key.clone(),
            info,
            control: Some(ctx.address().recipient()),
            require_publisher: true,
        });
        ctx.wait(
            request
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(Ok(subscription)) => {
                        act.channel = Some(subscription.channel);
                        if act.start_writer(ctx) {
                            ctx.add_stream(ReceiverStream::new(subscription.frames));
                        }
                    }
                    _ => {
                        debug!("stream={} not published; nothing to record", act.key);
                        ctx.stop();
                    }
                }),
        );
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(channel) = self.channel.take() {
            channel.do_send(Unsubscribe { viewer: self.id });
        }
        // Closing the queue lets the writer finish the file.
        self.disk = None;
        self.hub.do_send(RecordingEnded {
            key: self.key.clone(),
            id: self.id,
        });
    }
}

impl StreamHandler<Arc<MediaFrame>> for Recorder {
    fn handle(&mut self, frame: Arc<MediaFrame>, ctx: &mut Self::Context) {
        self.on_frame(frame, ctx);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The stream ended; the channel already forgot us.
        self.channel = None;
        ctx.stop();
    }
}

impl Handler<ViewerControl> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: ViewerControl, ctx: &mut Self::Context) {
        let ViewerControl::Kick { reason } = msg;
        info!("stream={} recording stopped: {reason}", self.key);
        self.channel = None;
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::sessions::StreamMetadata;

    fn frame(kind: FrameKind, ts: u32, body: &'static [u8]) -> MediaFrame {
        MediaFrame::new(kind, ts, Bytes::from_static(body))
    }

    #[test]
    fn recording_starts_with_patchable_metadata_and_rebased_tags() {
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(640);
        metadata.encoder = Some("obs".into());
        let body = crate::media::amf::metadata_body(&metadata);
        let (mut recording, head) = FlvRecording::start(Some(&body));
        let mut file = head.to_vec();
        file.extend_from_slice(&recording.tag(&frame(FrameKind::Video, 5000, &[0x17, 0, 0])));
        file.extend_from_slice(&recording.tag(&frame(FrameKind::Audio, 4990, &[0xaf, 1])));
        file.extend_from_slice(&recording.tag(&frame(FrameKind::Video, 7500, &[0x27, 1, 0])));
        assert_eq!(recording.bytes_written(), file.len() as u64);
        for (offset, bytes) in recording.patches() {
            let at = offset as usize;
            file[at..at + 8].copy_from_slice(&bytes);
        }

        let (header, tags, consumed) = flv::parse_tags(&file).unwrap();
        assert!(header.is_some());
        assert_eq!(consumed, file.len());
        let timestamps: Vec<u32> = tags.iter().map(|t| t.timestamp).collect();
        assert_eq!(timestamps, [0, 0, 0, 2500]);
        let values = rml_amf0::deserialize(&mut Cursor::new(&tags[0].body[..])).unwrap();
        assert_eq!(values[0], Amf0Value::Utf8String("onMetaData".into()));
        let Amf0Value::Object(props) = &values[1] else {
            panic!("not an object: {values:?}");
        };
        assert_eq!(props["duration"], Amf0Value::Number(2.5));
        assert_eq!(props["filesize"], Amf0Value::Number(file.len() as f64));
        assert_eq!(props["width"], Amf0Value::Number(640.0));
        assert_eq!(props["encoder"], Amf0Value::Utf8String("obs".into()));
    }

    #[test]
    fn recording_without_publisher_metadata_still_has_duration_and_filesize() {
        let (recording, head) = FlvRecording::start(None);
        let (_, tags, _) = flv::parse_tags(&head).unwrap();
        let values = rml_amf0::deserialize(&mut Cursor::new(&tags[0].body[..])).unwrap();
        let Amf0Value::Object(props) = &values[1] else {
            panic!("not an object: {values:?}");
        };
        assert_eq!(props.len(), 2);
        assert_eq!(recording.duration_secs(), 0.0);
    }

    fn arc(kind: FrameKind, ts: u32, body: &'static [u8]) -> Arc<MediaFrame> {
        Arc::new(frame(kind, ts, body))
    }

    const VIDEO_HEADER: &[u8] = &[0x17, 0, 0, 0, 0];
    const AUDIO_HEADER: &[u8] = &[0xaf, 0, 0x12, 0x10];
    const KEYFRAME: &[u8] = &[0x17, 1, 0, 0, 0];
    const INTER: &[u8] = &[0x27, 1, 0, 0, 0];
    const AUDIO: &[u8] = &[0xaf, 1, 7];

    #[test]
    fn a_full_disk_queue_drops_until_a_keyframe_fits_and_keeps_new_headers() {
        let mut gate = DropToKeyframe::default();
        let (out, event) = gate.admit(arc(FrameKind::Video, 0, VIDEO_HEADER), 8, 8);
        assert_eq!((out.len(), event), (1, GateEvent::None));
        let (out, event) = gate.admit(arc(FrameKind::Video, 33, INTER), 0, 8);
        assert_eq!((out.len(), event), (0, GateEvent::Overflowed));
        // Inter frames, audio and a keyframe without room to spare are dropped; a new
        // sequence header is held.
        assert!(gate
            .admit(arc(FrameKind::Audio, 40, AUDIO), 8, 8)
            .0
            .is_empty());
        assert!(gate
            .admit(arc(FrameKind::Video, 66, KEYFRAME), 2, 8)
            .0
            .is_empty());
        assert!(gate
            .admit(arc(FrameKind::Video, 90, VIDEO_HEADER), 8, 8)
            .0
            .is_empty());
        assert!(gate
            .admit(arc(FrameKind::Video, 99, INTER), 8, 8)
            .0
            .is_empty());
        let (out, event) = gate.admit(arc(FrameKind::Video, 100, KEYFRAME), 8, 8);
        assert_eq!(event, GateEvent::Resumed { dropped: 4 });
        let kinds: Vec<(u32, bool)> = out
            .iter()
            .map(|f| (f.timestamp, f.is_sequence_header))
            .collect();
        assert_eq!(kinds, [(90, true), (100, false)]);
        let (out, _) = gate.admit(arc(FrameKind::Video, 133, INTER), 8, 8);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn audio_only_recordings_resume_at_any_audio_frame() {
        let mut gate = DropToKeyframe::default();
        gate.admit(arc(FrameKind::Audio, 0, AUDIO_HEADER), 8, 8);
        let (_, event) = gate.admit(arc(FrameKind::Audio, 23, AUDIO), 0, 8);
        assert_eq!(event, GateEvent::Overflowed);
        let (out, event) = gate.admit(arc(FrameKind::Audio, 46, AUDIO), 8, 8);
        assert_eq!((out.len(), event), (1, GateEvent::Resumed { dropped: 1 }));
    }

    #[test]
    fn room_names_become_safe_file_names() {
        assert_eq!(file_stem("movie"), "movie");
        assert_eq!(file_stem("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(file_stem(".hidden"), "_.hidden");
        assert_eq!(file_stem(""), "_");
        assert_eq!(file_stem("a b/c"), "a_b_c");
    }
}
