//! Inspection of FLV audio/video tag bodies: codec, keyframe and sequence-header flags,
//! composition time, and parsing of the AVC and AAC decoder configurations they carry.
//!
//! Bodies come straight from publishers, so every function here treats its input as untrusted:
//! short or malformed bodies yield `false`, `None`, `0` or a [`CodecError`], never a panic.
//!
//! Both the legacy FLV headers and Enhanced RTMP (E-RTMP v1/v2) ex-headers are understood.

use bytes::Bytes;

/// Legacy FLV video codec ids.
const VIDEO_CODEC_AVC: u8 = 7;
/// Not in Adobe's spec; the id Chinese CDNs (and livego/SRS/ffmpeg forks) use for HEVC.
const VIDEO_CODEC_HEVC: u8 = 12;

const FRAME_TYPE_KEY: u8 = 1;
/// E-RTMP: a command frame carries a one-byte command instead of a FourCC and payload.
const FRAME_TYPE_COMMAND: u8 = 5;

/// Legacy AVC/HEVC packet types (second body byte).
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;

/// Enhanced RTMP video packet types (low nibble of the first byte when bit 7 is set).
pub mod video_packet_type {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    pub const MULTITRACK: u8 = 6;
    pub const MOD_EX: u8 = 7;
}

/// Enhanced RTMP audio packet types (low nibble of the first byte when the sound format is 9).
pub mod audio_packet_type {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const MULTICHANNEL_CONFIG: u8 = 4;
    pub const MULTITRACK: u8 = 5;
    pub const MOD_EX: u8 = 7;
}

const SOUND_FORMAT_MP3: u8 = 2;
const SOUND_FORMAT_EX_HEADER: u8 = 9;
const SOUND_FORMAT_AAC: u8 = 10;
const SOUND_FORMAT_MP3_8K: u8 = 14;

const AAC_SEQUENCE_HEADER: u8 = 0;

/// E-RTMP multitrack type whose single track has no size prefix.
const MULTITRACK_ONE_TRACK: u8 = 0;
/// E-RTMP v2 ModEx packet type, the same number for audio and video.
const PACKET_TYPE_MOD_EX: u8 = 7;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    #[error("{what} is truncated: needed {needed} bytes, only {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("bitstream ended early while reading {0}")]
    BitstreamEnded(&'static str),
    #[error("AVCDecoderConfigurationRecord version {0} is not supported (expected 1)")]
    UnsupportedAvcConfigVersion(u8),
    #[error("AVCDecoderConfigurationRecord holds no SPS")]
    NoSps,
    #[error("NAL unit type {0} is not a sequence parameter set (7)")]
    NotAnSps(u8),
    #[error("SPS field {field} has an invalid value {value}")]
    InvalidSpsField { field: &'static str, value: u64 },
    #[error("SPS cropping ({crop}) exceeds the coded size ({coded})")]
    CroppingTooLarge { crop: u64, coded: u64 },
    #[error("AAC AudioSpecificConfig has audio object type 0 (null)")]
    NullAudioObjectType,
    #[error("AAC sampling frequency index {0} is reserved")]
    ReservedSampleRateIndex(u8),
}

// ---------------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
    Vp9,
    /// A legacy FLV codec id we do not name (Sorenson, VP6, ...). An Enhanced RTMP FourCC we
    /// do not know is reported as `Other(0)`: 0 is not an assigned FLV codec id.
    Other(u8),
}

impl VideoCodec {
    pub fn name(&self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
            VideoCodec::Av1 => "av1",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::Other(_) => "unknown",
        }
    }

    fn from_fourcc(fourcc: [u8; 4]) -> VideoCodec {
        match &fourcc {
            b"avc1" => VideoCodec::H264,
            b"hvc1" => VideoCodec::H265,
            b"av01" => VideoCodec::Av1,
            b"vp09" => VideoCodec::Vp9,
            _ => VideoCodec::Other(0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    Aac,
    Mp3,
    /// The legacy FLV sound format; Enhanced RTMP FourCCs other than `mp4a`/`.mp3` (Opus,
    /// FLAC, AC-3, E-AC-3) are reported as `Other(9)`, the ex-header sound format.
    Other(u8),
}

impl AudioCodec {
    pub fn name(&self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Mp3 => "mp3",
            AudioCodec::Other(_) => "unknown",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Enhanced RTMP ex-headers
// ---------------------------------------------------------------------------------------------

/// The parts of an E-RTMP video ex-header we need, after ModEx and multitrack wrappers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExVideoHeader {
    frame_type: u8,
    packet_type: u8,
    /// `None` for command frames, which carry no FourCC.
    fourcc: Option<[u8; 4]>,
    /// Offset of the first track's data (after the FourCC).
    payload_offset: usize,
}

fn is_ex_video_header(body: &[u8]) -> bool {
    body.first().is_some_and(|b| b & 0x80 != 0)
}

fn read_fourcc(body: &[u8], at: usize) -> Option<[u8; 4]> {
    body.get(at..at + 4)?.try_into().ok()
}

/// Skips E-RTMP v2 ModEx modifiers (size-prefixed blobs that precede the real packet type)
/// and returns the real packet type and the offset after the last modifier.
fn skip_mod_ex(body: &[u8], mut packet_type: u8, mut pos: usize) -> Option<(u8, usize)> {
    // Each modifier consumes at least two bytes, so a hostile chain ends with the body.
    while packet_type == PACKET_TYPE_MOD_EX {
        let mut size = usize::from(*body.get(pos)?) + 1;
        pos += 1;
        if size == 256 {
            let hi = *body.get(pos)?;
            let lo = *body.get(pos + 1)?;
            size = usize::from(u16::from_be_bytes([hi, lo])) + 1;
            pos += 2;
        }
        pos = pos.checked_add(size)?;
        // Low nibble: the next packet type; high nibble: the modifier type we don't use.
        packet_type = *body.get(pos)? & 0x0f;
        pos += 1;
    }
    Some((packet_type, pos))
}

fn parse_ex_video_header(body: &[u8]) -> Option<ExVideoHeader> {
    let b0 = *body.first()?;
    if b0 & 0x80 == 0 {
        return None;
    }
    let frame_type = (b0 >> 4) & 0x07;
    let (mut packet_type, pos) = skip_mod_ex(body, b0 & 0x0f, 1)?;

    if packet_type != video_packet_type::METADATA && frame_type == FRAME_TYPE_COMMAND {
        return Some(ExVideoHeader {
            frame_type,
            packet_type,
            fourcc: None,
            payload_offset: pos,
        });
    }

    if packet_type == video_packet_type::MULTITRACK {
        let b = *body.get(pos)?;
        let multitrack_type = b >> 4;
        packet_type = b & 0x0f;
        // Either the FourCC shared by all tracks or, with many codecs, the first track's
        // own: in both cases the next four bytes. We describe the first track, which by
        // convention is the default one.
        let fourcc = read_fourcc(body, pos + 1)?;
        // trackId, then a UI24 track size unless there is only one track.
        let mut payload_offset = pos + 1 + 4 + 1;
        if multitrack_type != MULTITRACK_ONE_TRACK {
            payload_offset += 3;
        }
        if payload_offset > body.len() {
            return None;
        }
        return Some(ExVideoHeader {
            frame_type,
            packet_type,
            fourcc: Some(fourcc),
            payload_offset,
        });
    }

    let fourcc = read_fourcc(body, pos)?;
    Some(ExVideoHeader {
        frame_type,
        packet_type,
        fourcc: Some(fourcc),
        payload_offset: pos + 4,
    })
}

/// The E-RTMP audio ex-header: packet type and FourCC (first track for multitrack).
fn parse_ex_audio_header(body: &[u8]) -> Option<(u8, [u8; 4])> {
    let b0 = *body.first()?;
    if b0 >> 4 != SOUND_FORMAT_EX_HEADER {
        return None;
    }
    let (mut packet_type, mut pos) = skip_mod_ex(body, b0 & 0x0f, 1)?;
    if packet_type == audio_packet_type::MULTITRACK {
        // As for video: the shared FourCC or the first track's own comes next either way.
        packet_type = *body.get(pos)? & 0x0f;
        pos += 1;
    }
    Some((packet_type, read_fourcc(body, pos)?))
}

// ---------------------------------------------------------------------------------------------
// Video tag inspection
// ---------------------------------------------------------------------------------------------

/// A video frame a decoder can start from. Sequence headers are not keyframes even though
/// they are flagged with frame type 1: nothing can be decoded from them alone.
pub fn is_video_keyframe(body: &[u8]) -> bool {
    let Some(&b0) = body.first() else {
        return false;
    };
    if let Some(ex) = parse_ex_video_header(body) {
        return ex.frame_type == FRAME_TYPE_KEY
            && matches!(
                ex.packet_type,
                video_packet_type::CODED_FRAMES | video_packet_type::CODED_FRAMES_X
            );
    }
    if is_ex_video_header(body) {
        return false;
    }
    if b0 >> 4 != FRAME_TYPE_KEY {
        return false;
    }
    match b0 & 0x0f {
        VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC => body.get(1) == Some(&AVC_NALU),
        _ => true,
    }
}

/// A decoder configuration (AVC/HEVC record, or any E-RTMP SequenceStart).
pub fn is_video_sequence_header(body: &[u8]) -> bool {
    let Some(&b0) = body.first() else {
        return false;
    };
    if let Some(ex) = parse_ex_video_header(body) {
        // MPEG2TSSequenceStart is AV1's alternative configuration; a late viewer needs it
        // exactly like a SequenceStart.
        return ex.frame_type != FRAME_TYPE_COMMAND
            && matches!(
                ex.packet_type,
                video_packet_type::SEQUENCE_START | video_packet_type::MPEG2TS_SEQUENCE_START
            );
    }
    if is_ex_video_header(body) {
        return false;
    }
    b0 >> 4 == FRAME_TYPE_KEY
        && matches!(b0 & 0x0f, VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC)
        && body.get(1) == Some(&AVC_SEQUENCE_HEADER)
}

pub fn video_codec(body: &[u8]) -> Option<VideoCodec> {
    let &b0 = body.first()?;
    if is_ex_video_header(body) {
        let fourcc = parse_ex_video_header(body)?.fourcc?;
        return Some(VideoCodec::from_fourcc(fourcc));
    }
    Some(match b0 & 0x0f {
        VIDEO_CODEC_AVC => VideoCodec::H264,
        VIDEO_CODEC_HEVC => VideoCodec::H265,
        other => VideoCodec::Other(other),
    })
}

/// Presentation minus decode time, in milliseconds, of an AVC/HEVC coded frame; 0 for
/// everything that carries none (headers, CodedFramesX, AV1, VP9, audio).
pub fn composition_time_ms(body: &[u8]) -> i32 {
    let Some(&b0) = body.first() else {
        return 0;
    };
    let si24_at = |at: usize| -> i32 {
        match body.get(at..at + 3) {
            // Sign-extend by placing the 24 bits at the top of an i32 and shifting back.
            Some(b) => i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8,
            None => 0,
        }
    };
    if is_ex_video_header(body) {
        return match parse_ex_video_header(body) {
            Some(ExVideoHeader {
                packet_type: video_packet_type::CODED_FRAMES,
                fourcc: Some(fourcc),
                payload_offset,
                ..
            }) if &fourcc == b"avc1" || &fourcc == b"hvc1" => si24_at(payload_offset),
            _ => 0,
        };
    }
    if matches!(b0 & 0x0f, VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC) && body.get(1) == Some(&AVC_NALU) {
        return si24_at(2);
    }
    0
}

/// The AVC configuration of a legacy AVC sequence header tag body, if it is one and parses.
pub fn avc_config_from_video_body(body: &[u8]) -> Option<AvcConfig> {
    let b0 = *body.first()?;
    if !is_video_sequence_header(body) || b0 & 0x0f != VIDEO_CODEC_AVC {
        return None;
    }
    parse_avc_config(body.get(5..)?).ok()
}

// ---------------------------------------------------------------------------------------------
// Audio tag inspection
// ---------------------------------------------------------------------------------------------

pub fn is_audio_sequence_header(body: &[u8]) -> bool {
    let Some(&b0) = body.first() else {
        return false;
    };
    match b0 >> 4 {
        SOUND_FORMAT_AAC => body.get(1) == Some(&AAC_SEQUENCE_HEADER),
        // Any E-RTMP codec's SequenceStart (Opus header, FLAC STREAMINFO, AAC ASC) is what a
        // late joiner must receive first.
        SOUND_FORMAT_EX_HEADER => parse_ex_audio_header(body)
            .is_some_and(|(packet_type, _)| packet_type == audio_packet_type::SEQUENCE_START),
        _ => false,
    }
}

pub fn audio_codec(body: &[u8]) -> Option<AudioCodec> {
    let &b0 = body.first()?;
    Some(match b0 >> 4 {
        SOUND_FORMAT_AAC => AudioCodec::Aac,
        SOUND_FORMAT_MP3 | SOUND_FORMAT_MP3_8K => AudioCodec::Mp3,
        SOUND_FORMAT_EX_HEADER => match &parse_ex_audio_header(body)?.1 {
            b"mp4a" => AudioCodec::Aac,
            b".mp3" => AudioCodec::Mp3,
            _ => AudioCodec::Other(SOUND_FORMAT_EX_HEADER),
        },
        other => AudioCodec::Other(other),
    })
}

/// The AAC configuration of a legacy AAC sequence header tag body, if it is one and parses.
pub fn aac_config_from_audio_body(body: &[u8]) -> Option<AacConfig> {
    let b0 = *body.first()?;
    if b0 >> 4 != SOUND_FORMAT_AAC || body.get(1) != Some(&AAC_SEQUENCE_HEADER) {
        return None;
    }
    parse_aac_config(body.get(2..)?).ok()
}

// ---------------------------------------------------------------------------------------------
// Bit reading
// ---------------------------------------------------------------------------------------------

/// MSB-first bit reader with Exp-Golomb support, as H.264 and MPEG-4 audio need.
struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self, what: &'static str) -> Result<bool, CodecError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(CodecError::BitstreamEnded(what))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    fn bits(&mut self, n: u32, what: &'static str) -> Result<u32, CodecError> {
        debug_assert!(n <= 32);
        let mut value: u64 = 0;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit(what)?);
        }
        // n <= 32, so this always fits.
        Ok(value as u32)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), CodecError> {
        let end = self.pos.saturating_add(n);
        if end > self.data.len() * 8 {
            return Err(CodecError::BitstreamEnded(what));
        }
        self.pos = end;
        Ok(())
    }

    /// ue(v). Values need up to 32 bits in valid streams; 2^32 - 1 (32 leading zeros) is the
    /// largest the syntax can express, more is corrupt data.
    fn ue(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let mut leading_zeros = 0u32;
        while !self.bit(what)? {
            leading_zeros += 1;
            if leading_zeros > 32 {
                return Err(CodecError::InvalidSpsField {
                    field: what,
                    value: u64::from(leading_zeros),
                });
            }
        }
        let suffix = u64::from(self.bits(leading_zeros, what)?);
        Ok((1u64 << leading_zeros) - 1 + suffix)
    }

    /// se(v), mapped from ue(v) as 1, -1, 2, -2, ...
    fn se(&mut self, what: &'static str) -> Result<i64, CodecError> {
        let k = self.ue(what)? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// NAL unit payload → RBSP: drops each emulation-prevention 0x03 that follows two zero bytes.
fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// AVC
// ---------------------------------------------------------------------------------------------

/// What we read from an H.264 sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub width: u32,
    pub height: u32,
}

/// Parses an H.264 SPS NAL unit (starting with its NAL header byte, with emulation
/// prevention bytes still in place) far enough to get the cropped picture size.
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, CodecError> {
    let rbsp = nal_to_rbsp(nal);
    let mut r = BitReader::new(&rbsp);

    let nal_header = r.bits(8, "NAL header")?;
    let nal_type = (nal_header & 0x1f) as u8;
    if nal_type != 7 {
        return Err(CodecError::NotAnSps(nal_type));
    }
    let profile_idc = r.bits(8, "profile_idc")? as u8;
    r.skip(8, "constraint flags")?;
    let level_idc = r.bits(8, "level_idc")? as u8;
    let sps_id = r.ue("seq_parameter_set_id")?;
    if sps_id > 31 {
        return Err(CodecError::InvalidSpsField {
            field: "seq_parameter_set_id",
            value: sps_id,
        });
    }

    let mut chroma_format_idc = 1u64;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue("chroma_format_idc")?;
        if chroma_format_idc > 3 {
            return Err(CodecError::InvalidSpsField {
                field: "chroma_format_idc",
                value: chroma_format_idc,
            });
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit("separate_colour_plane_flag")?;
        }
        r.ue("bit_depth_luma_minus8")?;
        r.ue("bit_depth_chroma_minus8")?;
        r.skip(1, "qpprime_y_zero_transform_bypass_flag")?;
        if r.bit("seq_scaling_matrix_present_flag")? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit("seq_scaling_list_present_flag")? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue("log2_max_frame_num_minus4")?;
    let poc_type = r.ue("pic_order_cnt_type")?;
    match poc_type {
        0 => {
            r.ue("log2_max_pic_order_cnt_lsb_minus4")?;
        }
        1 => {
            r.skip(1, "delta_pic_order_always_zero_flag")?;
            r.se("offset_for_non_ref_pic")?;
            r.se("offset_for_top_to_bottom_field")?;
            let cycle = r.ue("num_ref_frames_in_pic_order_cnt_cycle")?;
            if cycle > 255 {
                return Err(CodecError::InvalidSpsField {
                    field: "num_ref_frames_in_pic_order_cnt_cycle",
                    value: cycle,
                });
            }
            for _ in 0..cycle {
                r.se("offset_for_ref_frame")?;
            }
        }
        2 => {}
        other => {
            return Err(CodecError::InvalidSpsField {
                field: "pic_order_cnt_type",
                value: other,
            })
        }
    }
    r.ue("max_num_ref_frames")?;
    r.skip(1, "gaps_in_frame_num_value_allowed_flag")?;
    let width_mbs = r.ue("pic_width_in_mbs_minus1")? + 1;
    let height_map_units = r.ue("pic_height_in_map_units_minus1")? + 1;
    let frame_mbs_only = r.bit("frame_mbs_only_flag")?;
    if !frame_mbs_only {
        r.skip(1, "mb_adaptive_frame_field_flag")?;
    }
    r.skip(1, "direct_8x8_inference_flag")?;
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0, 0, 0, 0);
    if r.bit("frame_cropping_flag")? {
        crop_left = r.ue("frame_crop_left_offset")?;
        crop_right = r.ue("frame_crop_right_offset")?;
        crop_top = r.ue("frame_crop_top_offset")?;
        crop_bottom = r.ue("frame_crop_bottom_offset")?;
    }

    // Interlaced streams count map units in field pairs.
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    // All operands come from ue() (< 2^33), so the products fit in u64 without overflow.
    let coded_w = width_mbs * 16;
    let coded_h = height_map_units * 16 * field_factor;
    let crop_w = crop_unit_x * (crop_left + crop_right);
    let crop_h = crop_unit_y * (crop_top + crop_bottom);
    let width = dimension(coded_w, crop_w, "width")?;
    let height = dimension(coded_h, crop_h, "height")?;

    Ok(SpsInfo {
        profile_idc,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        width,
        height,
    })
}

fn dimension(coded: u64, crop: u64, field: &'static str) -> Result<u32, CodecError> {
    let value = coded
        .checked_sub(crop)
        .filter(|v| *v > 0)
        .ok_or(CodecError::CroppingTooLarge { crop, coded })?;
    u32::try_from(value).map_err(|_| CodecError::InvalidSpsField { field, value })
}

/// scaling_list() from H.264 7.3.2.1.1.1: the values only matter to a decoder, but every
/// delta must be consumed to reach the fields after them.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se("delta_scale")?;
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::InvalidSpsField {
                    field: "delta_scale",
                    value: delta.unsigned_abs(),
                });
            }
            next_scale = (last_scale + delta + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// A parsed AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub level: u8,
    /// Bytes in each NAL unit length prefix of the coded frames (1, 2 or 4).
    pub nal_length_size: u8,
    /// SPS NAL units, each including its NAL header byte.
    pub sps: Vec<Bytes>,
    /// PPS NAL units, each including its NAL header byte.
    pub pps: Vec<Bytes>,
    /// Cropped picture size from the first SPS.
    pub width: u32,
    pub height: u32,
}

/// Parses an AVCDecoderConfigurationRecord, i.e. an AVC sequence header tag body after its
/// 5-byte FLV video header (`&body[5..]`).
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, CodecError> {
    let truncated = |needed: usize| CodecError::Truncated {
        what: "AVCDecoderConfigurationRecord",
        needed,
        available: record.len(),
    };
    if record.len() < 6 {
        return Err(truncated(6));
    }
    if record[0] != 1 {
        return Err(CodecError::UnsupportedAvcConfigVersion(record[0]));
    }
    let profile = record[1];
    let level = record[3];
    let nal_length_size = (record[4] & 0x03) + 1;

    let mut pos = 5;
    let read_nals = |pos: &mut usize, count: usize| -> Result<Vec<Bytes>, CodecError> {
        let mut nals = Vec::with_capacity(count);
        for _ in 0..count {
            let len_bytes = record
                .get(*pos..*pos + 2)
                .ok_or_else(|| truncated(*pos + 2))?;
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            let start = *pos + 2;
            let nal = record
                .get(start..start + len)
                .ok_or_else(|| truncated(start + len))?;
            nals.push(Bytes::copy_from_slice(nal));
            *pos = start + len;
        }
        Ok(nals)
    };

    let sps_count = usize::from(record[pos] & 0x1f);
    pos += 1;
    let sps = read_nals(&mut pos, sps_count)?;
    let pps_count = usize::from(*record.get(pos).ok_or_else(|| truncated(pos + 1))?);
    pos += 1;
    let pps = read_nals(&mut pos, pps_count)?;
    // High-profile records may append chroma/bit-depth/SPS-ext fields; the SPS already
    // holds everything we need, so they are ignored.

    let first = sps.first().ok_or(CodecError::NoSps)?;
    let info = parse_sps(first)?;

    Ok(AvcConfig {
        profile,
        level,
        nal_length_size,
        sps,
        pps,
        width: info.width,
        height: info.height,
    })
}

// ---------------------------------------------------------------------------------------------
// AAC
// ---------------------------------------------------------------------------------------------

const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// A parsed MPEG-4 AudioSpecificConfig (ISO 14496-3 1.6.2.1).
///
/// For HE-AAC v1/v2 with explicit hierarchical signalling (object type 5 or 29) this
/// describes the AAC core (object type, rate and channels) as ADTS needs it, like ffmpeg does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    pub object_type: u8,
    /// 0..=12 index into the standard rate table, or 15 when the rate is given explicitly.
    pub sample_rate_index: u8,
    pub sample_rate: u32,
    /// Channel count (0 when the layout is defined by a program config element).
    pub channels: u8,
}

fn read_audio_object_type(r: &mut BitReader<'_>) -> Result<u8, CodecError> {
    let aot = r.bits(5, "audioObjectType")? as u8;
    if aot == 31 {
        Ok(32 + r.bits(6, "audioObjectTypeExt")? as u8)
    } else {
        Ok(aot)
    }
}

fn read_sample_rate(r: &mut BitReader<'_>) -> Result<(u8, u32), CodecError> {
    let index = r.bits(4, "samplingFrequencyIndex")? as u8;
    if index == 15 {
        return Ok((15, r.bits(24, "samplingFrequency")?));
    }
    let rate = AAC_SAMPLE_RATES
        .get(usize::from(index))
        .ok_or(CodecError::ReservedSampleRateIndex(index))?;
    Ok((index, *rate))
}

/// Channel configuration → channel count (ISO 14496-3 table 1.19, with the 2013 additions).
fn channel_count(config: u8) -> u8 {
    match config {
        1..=6 => config,
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        _ => 0,
    }
}

/// Channel count → the 3-bit ADTS channel configuration (0 = defined in-band by a PCE).
fn adts_channel_config(channels: u8) -> u8 {
    match channels {
        1..=6 => channels,
        8 => 7,
        _ => 0,
    }
}

pub fn parse_aac_config(asc: &[u8]) -> Result<AacConfig, CodecError> {
    if asc.len() < 2 {
        return Err(CodecError::Truncated {
            what: "AudioSpecificConfig",
            needed: 2,
            available: asc.len(),
        });
    }
    let mut r = BitReader::new(asc);
    let mut object_type = read_audio_object_type(&mut r)?;
    if object_type == 0 {
        return Err(CodecError::NullAudioObjectType);
    }
    let (sample_rate_index, sample_rate) = read_sample_rate(&mut r)?;
    let channel_config = r.bits(4, "channelConfiguration")? as u8;
    if object_type == 5 || object_type == 29 {
        // SBR/PS: the extension (output) rate comes next, then the core object type.
        read_sample_rate(&mut r)?;
        object_type = read_audio_object_type(&mut r)?;
        if object_type == 0 {
            return Err(CodecError::NullAudioObjectType);
        }
    }
    Ok(AacConfig {
        object_type,
        sample_rate_index,
        sample_rate,
        channels: channel_count(channel_config),
    })
}

/// The 7-byte ADTS header (no CRC) for one raw AAC frame of `payload_len` bytes.
///
/// ADTS can only signal object types 1..=4 (Main, LC, SSR, LTP) and tabled rates, so other
/// object types are written as LC and an explicit rate as the nearest tabled one, which is
/// what decoders of HLS segments cope with best.
pub fn adts_header(cfg: &AacConfig, payload_len: usize) -> [u8; 7] {
    let profile = match cfg.object_type {
        1..=4 => cfg.object_type - 1,
        _ => 1,
    };
    let sf_index = if usize::from(cfg.sample_rate_index) < AAC_SAMPLE_RATES.len() {
        cfg.sample_rate_index
    } else {
        nearest_sample_rate_index(cfg.sample_rate)
    };
    let channels = adts_channel_config(cfg.channels);
    // The frame length field is 13 bits; a raw AAC frame is at most 768 bytes per channel,
    // so only corrupt input could overflow it, and a clamped value keeps the syncword framing.
    let frame_len = (payload_len + 7).min(0x1fff) as u16;
    const BUFFER_FULLNESS_VBR: u16 = 0x7ff;
    [
        0xff,
        // syncword low nibble, MPEG-4, layer 0, protection absent.
        0xf1,
        (profile << 6) | (sf_index << 2) | (channels >> 2),
        ((channels & 0x03) << 6) | (frame_len >> 11) as u8,
        (frame_len >> 3) as u8,
        (((frame_len & 0x07) as u8) << 5) | (BUFFER_FULLNESS_VBR >> 6) as u8,
        (((BUFFER_FULLNESS_VBR & 0x3f) as u8) << 2),
    ]
}

fn nearest_sample_rate_index(rate: u32) -> u8 {
    let mut best = 0usize;
    for (i, r) in AAC_SAMPLE_RATES.iter().enumerate() {
        if r.abs_diff(rate) < AAC_SAMPLE_RATES[best].abs_diff(rate) {
            best = i;
        }
    }
    best as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // SPS/PPS from `ffmpeg -f lavfi -i testsrc2=size=WxH -c:v libx264 -f h264` (x264).
    const SPS_640X360_BASELINE: &str = "6742c01ed900a02ff970110000030001000003003c0f162e48";
    const PPS_640X360_BASELINE: &str = "68cb83cb20";
    const SPS_1920X1080_HIGH: &str = "67640028acd940780227e5c044000003000400000300f03c60c658";
    const SPS_1280X720_HIGH444: &str = "67f4001f919b280a00b76022000003000200000300781e30632c";
    const SPS_854X480_HIGH422_10BIT: &str =
        "677a001fb6cd940d83de6f0110000003001000000303c0f1831960";
    const SPS_720X576_INTERLACED: &str = "6764001eacd940b424d8088000000300800000190f8a14cb";

    /// Builds an FLV AVC sequence header body around one SPS and PPS.
    fn avc_sequence_header_body(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        let mut body = vec![0x17, 0x00, 0, 0, 0];
        body.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        body.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        body.extend_from_slice(sps);
        body.push(1);
        body.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        body.extend_from_slice(pps);
        body
    }

    /// MSB-first bit writer with Exp-Golomb, to build SPSs x264 never emits.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: bool) {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            if b {
                let last = self.bytes.last_mut().unwrap();
                *last |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, v: u64) {
            let x = v + 1;
            let len = 64 - x.leading_zeros();
            self.bits(len - 1, 0);
            self.bits(len, x);
        }
        fn se(&mut self, v: i64) {
            self.ue(if v > 0 {
                (2 * v - 1) as u64
            } else {
                (-2 * v) as u64
            });
        }
        fn finish(mut self) -> Vec<u8> {
            // rbsp_stop_one_bit + alignment
            self.bit(true);
            while self.bits % 8 != 0 {
                self.bit(false);
            }
            self.bytes
        }
    }

    #[test]
    fn a_baseline_sps_gives_640x360() {
        let info = parse_sps(&hex(SPS_640X360_BASELINE)).unwrap();
        assert_eq!((info.width, info.height), (640, 360));
        assert_eq!(info.profile_idc, 66);
        assert_eq!(info.level_idc, 30);
    }

    #[test]
    fn a_high_profile_sps_is_cropped_from_1088_to_1080_lines() {
        let info = parse_sps(&hex(SPS_1920X1080_HIGH)).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(info.profile_idc, 100);
        assert_eq!(info.chroma_format_idc, 1);
    }

    #[test]
    fn high_444_and_high_422_sps_use_their_chroma_crop_units() {
        let info = parse_sps(&hex(SPS_1280X720_HIGH444)).unwrap();
        assert_eq!(
            (info.width, info.height, info.chroma_format_idc),
            (1280, 720, 3)
        );
        let info = parse_sps(&hex(SPS_854X480_HIGH422_10BIT)).unwrap();
        assert_eq!(
            (info.width, info.height, info.chroma_format_idc),
            (854, 480, 2)
        );
    }

    #[test]
    fn an_interlaced_sps_counts_field_pairs() {
        let info = parse_sps(&hex(SPS_720X576_INTERLACED)).unwrap();
        assert_eq!((info.width, info.height), (720, 576));
    }

    #[test]
    fn scaling_lists_and_poc_type_1_are_skipped_correctly() {
        let mut w = BitWriter::default();
        w.bits(8, 0x67);
        w.bits(8, 100); // profile_idc
        w.bits(8, 0);
        w.bits(8, 40);
        w.ue(0); // sps id
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(true); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i != 3;
            w.bit(present);
            if present {
                let size = if i < 6 { 16 } else { 64 };
                if i == 5 {
                    // delta that makes nextScale 0 on the first entry: "use default list"
                    w.se(-8);
                } else {
                    for j in 0..size {
                        w.se(if j % 2 == 0 { 5 } else { -3 });
                    }
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // poc type 1
        w.bit(false);
        w.se(-2);
        w.se(3);
        w.ue(3);
        w.se(1);
        w.se(-1);
        w.se(7);
        w.ue(4); // max_num_ref_frames
        w.bit(false);
        w.ue(1280 / 16 - 1);
        w.ue(720 / 16 - 1);
        w.bit(true); // frame_mbs_only
        w.bit(true);
        w.bit(true); // cropping
        w.ue(2);
        w.ue(3);
        w.ue(1);
        w.ue(4);
        w.bit(false); // vui
        let info = parse_sps(&w.finish()).unwrap();
        // Crop units are 2x2 for 4:2:0: (2 + 3) * 2 columns, (1 + 4) * 2 rows.
        assert_eq!((info.width, info.height), (1280 - 10, 720 - 10));
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            nal_to_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(nal_to_rbsp(&[0, 3, 0, 0, 0, 3]), vec![0, 3, 0, 0, 0]);
    }

    #[test]
    fn exp_golomb_codes_decode() {
        // 1 | 010 | 011 | 00100 | 00101 → ue 0,1,2,3 then se -2
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue("a").unwrap(), 0);
        assert_eq!(r.ue("b").unwrap(), 1);
        assert_eq!(r.ue("c").unwrap(), 2);
        assert_eq!(r.ue("d").unwrap(), 3);
        assert_eq!(r.se("e").unwrap(), -2);
        assert!(r.ue("f").is_err());
    }

    #[test]
    fn an_avc_sequence_header_body_yields_its_config() {
        let body = avc_sequence_header_body(&hex(SPS_640X360_BASELINE), &hex(PPS_640X360_BASELINE));
        let cfg = avc_config_from_video_body(&body).unwrap();
        assert_eq!(cfg.profile, 66);
        assert_eq!(cfg.level, 30);
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.sps, vec![Bytes::from(hex(SPS_640X360_BASELINE))]);
        assert_eq!(cfg.pps, vec![Bytes::from(hex(PPS_640X360_BASELINE))]);
        assert_eq!((cfg.width, cfg.height), (640, 360));
    }

    #[test]
    fn truncated_or_foreign_avc_records_are_errors_not_panics() {
        let body = avc_sequence_header_body(&hex(SPS_1920X1080_HIGH), &[0x68, 0xeb]);
        let record = &body[5..];
        for len in 0..record.len() {
            assert!(parse_avc_config(&record[..len]).is_err(), "len {len}");
        }
        assert!(parse_avc_config(record).is_ok());
        assert_eq!(
            parse_avc_config(&[0, 0, 0, 1, 0x67, 0x42]),
            Err(CodecError::UnsupportedAvcConfigVersion(0))
        );
        assert_eq!(
            parse_avc_config(&[1, 66, 0, 30, 0xff, 0xe0, 0]),
            Err(CodecError::NoSps)
        );
        // A keyframe body is not a sequence header.
        assert!(avc_config_from_video_body(&[0x17, 1, 0, 0, 0, 1, 66, 0, 30]).is_none());
    }

    #[test]
    fn garbage_sps_bytes_never_panic() {
        let base = hex(SPS_1920X1080_HIGH);
        for i in 0..base.len() {
            for b in [0x00, 0xff, 0x80, 0x01] {
                let mut sps = base.clone();
                sps[i] = b;
                let _ = parse_sps(&sps);
                let _ = parse_sps(&sps[..i]);
            }
        }
        assert_eq!(parse_sps(&[0x68, 0xce]), Err(CodecError::NotAnSps(8)));
        assert!(parse_sps(&[0x67, 100, 0, 40, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn legacy_avc_keyframes_and_sequence_headers_are_told_apart() {
        let seq = [0x17, 0, 0, 0, 0, 1];
        let key = [0x17, 1, 0, 0, 0x21, 0];
        let inter = [0x27, 1, 0, 0, 0x21, 0];
        let end = [0x17, 2, 0, 0, 0];
        assert!(is_video_sequence_header(&seq) && !is_video_keyframe(&seq));
        assert!(is_video_keyframe(&key) && !is_video_sequence_header(&key));
        assert!(!is_video_keyframe(&inter) && !is_video_sequence_header(&inter));
        assert!(!is_video_keyframe(&end) && !is_video_sequence_header(&end));
        assert!(!is_video_keyframe(&[]) && !is_video_sequence_header(&[]));
        assert!(!is_video_keyframe(&[0x17]) && !is_video_sequence_header(&[0x17]));
    }

    #[test]
    fn legacy_hevc_and_other_codecs_are_recognised() {
        assert!(is_video_sequence_header(&[0x1c, 0, 0, 0, 0]));
        assert!(is_video_keyframe(&[0x1c, 1, 0, 0, 0]));
        assert_eq!(video_codec(&[0x1c, 1]), Some(VideoCodec::H265));
        assert_eq!(video_codec(&[0x27, 1]), Some(VideoCodec::H264));
        // VP6 keyframe: no packet type byte, no sequence header concept.
        assert!(is_video_keyframe(&[0x14, 0]));
        assert!(!is_video_sequence_header(&[0x14, 0]));
        assert_eq!(video_codec(&[0x14]), Some(VideoCodec::Other(4)));
        assert_eq!(video_codec(&[]), None);
        assert_eq!(VideoCodec::Other(4).name(), "unknown");
        assert_eq!(VideoCodec::H265.name(), "h265");
    }

    fn ex_video(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0x80 | (frame_type << 4) | packet_type];
        body.extend_from_slice(fourcc);
        body.extend_from_slice(rest);
        body
    }

    #[test]
    fn enhanced_rtmp_video_headers_are_classified() {
        let seq = ex_video(1, 0, b"hvc1", &[1, 2, 3]);
        assert!(is_video_sequence_header(&seq) && !is_video_keyframe(&seq));
        assert_eq!(video_codec(&seq), Some(VideoCodec::H265));

        let key = ex_video(1, 1, b"av01", &[0, 0, 0, 9]);
        assert!(is_video_keyframe(&key) && !is_video_sequence_header(&key));
        assert_eq!(video_codec(&key), Some(VideoCodec::Av1));

        let key_x = ex_video(1, 3, b"vp09", &[9]);
        assert!(is_video_keyframe(&key_x));
        assert_eq!(video_codec(&key_x), Some(VideoCodec::Vp9));

        let inter = ex_video(2, 1, b"hvc1", &[0, 0, 0, 9]);
        assert!(!is_video_keyframe(&inter) && !is_video_sequence_header(&inter));

        let meta = ex_video(1, 4, b"hvc1", &[2, 0, 9]);
        assert!(!is_video_keyframe(&meta) && !is_video_sequence_header(&meta));

        let end = ex_video(1, 2, b"av01", &[]);
        assert!(!is_video_keyframe(&end) && !is_video_sequence_header(&end));

        assert!(is_video_sequence_header(&ex_video(1, 5, b"av01", &[])));
        assert_eq!(
            video_codec(&ex_video(1, 1, b"xyz1", &[])),
            Some(VideoCodec::Other(0))
        );
        // Ex-header cut inside the FourCC.
        assert_eq!(video_codec(&[0x91, b'h', b'v']), None);
        assert!(!is_video_keyframe(&[0x91, b'h', b'v']));
        // A command frame has no FourCC and is neither.
        assert!(!is_video_keyframe(&[0xd1, 0]));
        assert!(!is_video_sequence_header(&[0xd0, 0]));
    }

    #[test]
    fn enhanced_rtmp_mod_ex_and_multitrack_wrappers_are_seen_through() {
        // ModEx (7) with a 2-byte modifier, then CodedFrames (1).
        let mut body = vec![0x80 | (1 << 4) | 7, 1, 0xaa, 0xbb, 0x01];
        body.extend_from_slice(b"hvc1");
        body.extend_from_slice(&[0xff, 0xff, 0xfe, 0]);
        assert!(is_video_keyframe(&body));
        assert_eq!(composition_time_ms(&body), -2);

        // Multitrack (6), OneTrack, SequenceStart, FourCC, trackId.
        let mut body = vec![0x80 | (1 << 4) | 6, 0x00];
        body.extend_from_slice(b"av01");
        body.extend_from_slice(&[0, 0x81]);
        assert!(is_video_sequence_header(&body));
        assert_eq!(video_codec(&body), Some(VideoCodec::Av1));

        // Multitrack, ManyTracksManyCodecs, CodedFrames: first track's FourCC.
        let mut body = vec![0x80 | (1 << 4) | 6, 0x21];
        body.extend_from_slice(b"avc1");
        body.extend_from_slice(&[0, 0, 0, 7, 0, 0, 40, 1]);
        assert!(is_video_keyframe(&body));
        assert_eq!(video_codec(&body), Some(VideoCodec::H264));
        assert_eq!(composition_time_ms(&body), 40);

        // Truncated ModEx.
        assert!(!is_video_keyframe(&[0x97, 5, 1]));
    }

    #[test]
    fn composition_time_is_a_signed_24_bit_value() {
        assert_eq!(composition_time_ms(&[0x27, 1, 0, 0, 66, 0]), 66);
        assert_eq!(composition_time_ms(&[0x27, 1, 0xff, 0xff, 0xdf]), -33);
        assert_eq!(composition_time_ms(&[0x27, 1, 0x7f, 0xff, 0xff]), 0x7fffff);
        assert_eq!(composition_time_ms(&[0x17, 0, 0, 0, 66]), 0);
        assert_eq!(composition_time_ms(&[0x27, 1, 0]), 0);
        assert_eq!(composition_time_ms(&[]), 0);
        assert_eq!(composition_time_ms(&[0xaf, 1, 0, 0, 66]), 0);
        assert_eq!(
            composition_time_ms(&ex_video(2, 1, b"hvc1", &[0, 0, 80, 0])),
            80
        );
        // CodedFramesX implies 0; AV1 and VP9 carry no composition time at all.
        assert_eq!(
            composition_time_ms(&ex_video(2, 3, b"hvc1", &[0, 0, 80])),
            0
        );
        assert_eq!(
            composition_time_ms(&ex_video(2, 1, b"av01", &[0, 0, 80])),
            0
        );
    }

    #[test]
    fn audio_headers_are_classified() {
        assert!(is_audio_sequence_header(&[0xaf, 0, 0x12, 0x10]));
        assert!(!is_audio_sequence_header(&[0xaf, 1, 0x21]));
        assert!(!is_audio_sequence_header(&[0xaf]));
        assert!(!is_audio_sequence_header(&[]));
        assert!(!is_audio_sequence_header(&[0x2f, 0]));
        assert_eq!(audio_codec(&[0xaf, 1]), Some(AudioCodec::Aac));
        assert_eq!(audio_codec(&[0x2f]), Some(AudioCodec::Mp3));
        assert_eq!(audio_codec(&[0xe2]), Some(AudioCodec::Mp3));
        assert_eq!(audio_codec(&[0x82]), Some(AudioCodec::Other(8)));
        assert_eq!(audio_codec(&[]), None);
        assert_eq!(AudioCodec::Aac.name(), "aac");
        assert_eq!(AudioCodec::Other(8).name(), "unknown");

        let mut opus_seq = vec![0x90];
        opus_seq.extend_from_slice(b"Opus");
        assert!(is_audio_sequence_header(&opus_seq));
        assert_eq!(audio_codec(&opus_seq), Some(AudioCodec::Other(9)));
        let mut aac_frame = vec![0x91];
        aac_frame.extend_from_slice(b"mp4a");
        assert!(!is_audio_sequence_header(&aac_frame));
        assert_eq!(audio_codec(&aac_frame), Some(AudioCodec::Aac));
        assert_eq!(audio_codec(&[0x91, b'm']), None);
    }

    #[test]
    fn aac_lc_configs_parse() {
        let cfg = parse_aac_config(&[0x12, 0x10]).unwrap();
        assert_eq!(
            cfg,
            AacConfig {
                object_type: 2,
                sample_rate_index: 4,
                sample_rate: 44100,
                channels: 2
            }
        );
        let cfg = parse_aac_config(&[0x11, 0x88]).unwrap();
        assert_eq!((cfg.sample_rate, cfg.channels), (48000, 1));
        assert_eq!(
            aac_config_from_audio_body(&[0xaf, 0, 0x11, 0x90]).map(|c| c.channels),
            Some(2)
        );
        assert!(aac_config_from_audio_body(&[0xaf, 1, 0x11, 0x90]).is_none());
    }

    #[test]
    fn aac_escaped_object_types_and_explicit_rates_parse() {
        // AOT 31 + 6-bit ext 10 (= 42, USAC), index 15 + 24-bit 37800, 2 channels.
        let mut w = BitWriter::default();
        w.bits(5, 31);
        w.bits(6, 10);
        w.bits(4, 15);
        w.bits(24, 37800);
        w.bits(4, 2);
        let cfg = parse_aac_config(&w.finish()).unwrap();
        assert_eq!(cfg.object_type, 42);
        assert_eq!(cfg.sample_rate_index, 15);
        assert_eq!(cfg.sample_rate, 37800);
        assert_eq!(cfg.channels, 2);
    }

    #[test]
    fn he_aac_configs_describe_the_aac_core() {
        // AOT 5, 24 kHz core, stereo, extension 48 kHz, core AOT 2.
        let mut w = BitWriter::default();
        w.bits(5, 5);
        w.bits(4, 6);
        w.bits(4, 2);
        w.bits(4, 3);
        w.bits(5, 2);
        let cfg = parse_aac_config(&w.finish()).unwrap();
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 24000, 2)
        );
    }

    #[test]
    fn bad_aac_configs_are_errors() {
        assert!(matches!(
            parse_aac_config(&[0x12]),
            Err(CodecError::Truncated { .. })
        ));
        assert_eq!(
            parse_aac_config(&[0x00, 0x10]),
            Err(CodecError::NullAudioObjectType)
        );
        // index 13 is reserved
        assert_eq!(
            parse_aac_config(&[0x16, 0x90]),
            Err(CodecError::ReservedSampleRateIndex(13))
        );
        // explicit rate cut short
        assert!(parse_aac_config(&[0x17, 0x80]).is_err());
    }

    #[test]
    fn adts_headers_match_ffmpeg_output() {
        // First frames of `ffmpeg -f lavfi -i sine -c:a aac -f adts` at 44.1 kHz stereo and
        // 48 kHz mono.
        let stereo = parse_aac_config(&[0x12, 0x10]).unwrap();
        assert_eq!(adts_header(&stereo, 338), hex_array("fff150802b3ffc"));
        assert_eq!(adts_header(&stereo, 408), hex_array("fff1508033fffc"));
        let mono = parse_aac_config(&[0x11, 0x88]).unwrap();
        assert_eq!(adts_header(&mono, 212), hex_array("fff14c401b7ffc"));
    }

    #[test]
    fn adts_headers_map_what_adts_cannot_express() {
        let cfg = AacConfig {
            object_type: 42,
            sample_rate_index: 15,
            sample_rate: 47000,
            channels: 8,
        };
        let h = adts_header(&cfg, 100);
        assert_eq!(h[2] >> 6, 1, "written as LC");
        assert_eq!((h[2] >> 2) & 0x0f, 3, "nearest rate is 48 kHz");
        assert_eq!(
            ((h[2] & 1) << 2) | (h[3] >> 6),
            7,
            "8 channels is configuration 7"
        );
        let huge = adts_header(&cfg, 100_000);
        let len =
            (u16::from(huge[3] & 3) << 11) | (u16::from(huge[4]) << 3) | u16::from(huge[5] >> 5);
        assert_eq!(len, 0x1fff);
    }

    fn hex_array(s: &str) -> [u8; 7] {
        hex(s).try_into().unwrap()
    }
}
