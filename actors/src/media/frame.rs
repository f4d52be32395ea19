//! The unit of media that travels through the actor graph.
//!
//! A publisher's FLV tag body becomes a [`MediaFrame`] once, in the stream channel; from then on
//! every viewer holds an `Arc<MediaFrame>` and writes one of its shared wire forms. Nothing is
//! copied per viewer.

use std::sync::OnceLock;

use bytes::Bytes;

use super::codec;
use super::flv;
use super::rtmp_chunk;

/// What an FLV tag / RTMP message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    Audio,
    Video,
    /// An `onMetaData` script-data body (AMF0, without `@setDataFrame`).
    Metadata,
}

impl FrameKind {
    /// FLV tag type and RTMP message type id (they are the same numbers).
    pub fn type_id(self) -> u8 {
        match self {
            FrameKind::Audio => 8,
            FrameKind::Video => 9,
            FrameKind::Metadata => 18,
        }
    }
}

/// One audio/video/metadata message on the channel's timeline.
#[derive(Debug)]
pub struct MediaFrame {
    pub kind: FrameKind,
    /// Milliseconds on the channel's (rebased, monotonic across publishers) timeline.
    pub timestamp: u32,
    /// The FLV tag body exactly as the publisher sent it (first byte is the A/V tag header).
    pub body: Bytes,
    /// A video frame a decoder can start from (and that the GOP cache starts at).
    pub is_keyframe: bool,
    /// An AVC/HEVC decoder configuration record or an AAC AudioSpecificConfig.
    pub is_sequence_header: bool,
    flv_tag: OnceLock<Bytes>,
    rtmp_stream1: OnceLock<Bytes>,
}

/// Chunk stream ids used for shared media messages. rml_rtmp's own serializer only uses 2..=6,
/// so media chunks written beside its packets never disturb its header compression state.
pub const CSID_METADATA: u32 = 7;
pub const CSID_AUDIO: u32 = 8;
pub const CSID_VIDEO: u32 = 9;

/// Outgoing RTMP chunk size. Must equal the `SetChunkSize` the server session announces.
pub const RTMP_OUT_CHUNK_SIZE: u32 = 4096;

impl MediaFrame {
    pub fn new(kind: FrameKind, timestamp: u32, body: Bytes) -> Self {
        let (is_keyframe, is_sequence_header) = match kind {
            FrameKind::Video => (
                codec::is_video_keyframe(&body),
                codec::is_video_sequence_header(&body),
            ),
            FrameKind::Audio => (false, codec::is_audio_sequence_header(&body)),
            FrameKind::Metadata => (false, false),
        };
        MediaFrame {
            kind,
            timestamp,
            body,
            is_keyframe,
            is_sequence_header,
            flv_tag: OnceLock::new(),
            rtmp_stream1: OnceLock::new(),
        }
    }

    /// The same frame at another timestamp (used when replaying headers to a late viewer).
    pub fn retimed(&self, timestamp: u32) -> Self {
        MediaFrame {
            kind: self.kind,
            timestamp,
            body: self.body.clone(),
            is_keyframe: self.is_keyframe,
            is_sequence_header: self.is_sequence_header,
            flv_tag: OnceLock::new(),
            rtmp_stream1: OnceLock::new(),
        }
    }

    /// Size of the payload, used for byte accounting and cache caps.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// A frame an overloaded viewer may skip (everything except headers and keyframes).
    pub fn is_droppable(&self) -> bool {
        match self.kind {
            FrameKind::Metadata => false,
            FrameKind::Video => !(self.is_keyframe || self.is_sequence_header),
            FrameKind::Audio => !self.is_sequence_header,
        }
    }

    /// The complete FLV tag (11-byte header, body, 4-byte PreviousTagSize), built once.
    pub fn flv_tag(&self) -> Bytes {
        self.flv_tag
            .get_or_init(|| flv::encode_tag(self.kind.type_id(), self.timestamp, &self.body))
            .clone()
    }

    /// The RTMP chunks for this frame on message stream `stream_id`, self-contained (type 0
    /// header first) so the same bytes are valid on every connection. Built once for stream 1,
    /// which is what every player we serve gets from `createStream` in practice.
    pub fn rtmp_chunks(&self, stream_id: u32) -> Bytes {
        let encode = || {
            let csid = match self.kind {
                FrameKind::Audio => CSID_AUDIO,
                FrameKind::Video => CSID_VIDEO,
                FrameKind::Metadata => CSID_METADATA,
            };
            rtmp_chunk::encode_message(
                csid,
                self.kind.type_id(),
                stream_id,
                self.timestamp,
                &self.body,
                RTMP_OUT_CHUNK_SIZE,
            )
        };
        if stream_id == 1 {
            self.rtmp_stream1.get_or_init(encode).clone()
        } else {
            encode()
        }
    }
}
