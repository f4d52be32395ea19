//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the stable smoke test
//! (`actors/tests/fuzz_smoke.rs`). Each takes untrusted bytes and must never panic.

use std::sync::Arc;

use bytes::Bytes;

use super::codec;
use super::flv;
use super::gop::{GopCache, GopLimits};
use super::timeline::Timeline;
use super::{FrameKind, MediaFrame};

/// FLV parsing, whole and incremental in uneven pieces.
pub fn flv_tags(data: &[u8]) {
    let _ = flv::parse_tags(data);
    let mut reader = flv::FlvReader::new();
    for piece in data.chunks(7) {
        reader.push(piece);
        while let Ok(Some(tag)) = reader.next_tag() {
            let _ = flv::encode_tag(tag.tag_type, tag.timestamp, &tag.body);
        }
    }
}

/// Codec headers as a publisher may send them.
pub fn codec_configs(data: &[u8]) {
    let _ = codec::is_video_keyframe(data);
    let _ = codec::is_video_sequence_header(data);
    let _ = codec::is_audio_sequence_header(data);
    let _ = codec::video_codec(data);
    let _ = codec::audio_codec(data);
    let _ = codec::composition_time_ms(data);
    let _ = codec::avc_config_from_video_body(data);
    let _ = codec::aac_config_from_audio_body(data);
    let _ = codec::parse_avc_config(data);
    let _ = codec::parse_sps(data);
    if let Ok(cfg) = codec::parse_aac_config(data) {
        let _ = codec::adts_header(&cfg, data.len());
    }
}

/// A publisher's frames through the channel's per-frame work: classification, the timeline,
/// the GOP cache and both wire forms. The first byte of each record picks the kind, the next
/// four the timestamp.
pub fn media_frames(data: &[u8]) {
    let mut gop = GopCache::new(GopLimits {
        gops: 2,
        max_frames: 64,
        max_bytes: 64 * 1024,
    });
    let mut timeline = Timeline::new();
    for record in data.split(|b| *b == 0xff) {
        let Some((&selector, rest)) = record.split_first() else {
            timeline.start_publisher();
            continue;
        };
        let kind = match selector % 3 {
            0 => FrameKind::Audio,
            1 => FrameKind::Video,
            _ => FrameKind::Metadata,
        };
        let (ts, body) = if rest.len() >= 4 {
            let ts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            (ts, &rest[4..])
        } else {
            (0, rest)
        };
        let frame = Arc::new(MediaFrame::new(
            kind,
            timeline.map(ts),
            Bytes::copy_from_slice(body),
        ));
        let _ = frame.flv_tag();
        let _ = frame.rtmp_chunks(1);
        let _ = frame.rtmp_chunks(selector as u32);
        gop.push(&frame);
        let replay = gop.replay();
        assert!(replay.len() <= 64 + 3, "GOP cache exceeded its frame cap");
    }
}
