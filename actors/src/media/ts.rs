//! MPEG-TS for HLS: the channel's FLV frames in, self-contained TS segments out.
//!
//! [`TsSegmenter`] decides where segments start and end and turns FLV payloads into elementary
//! streams: H.264/HEVC access units in Annex B with an AUD and the parameter sets before every
//! keyframe, AAC frames behind ADTS headers, MP3 frames as they are. Every segment starts with a
//! PAT and a PMT and, when it has video, with a keyframe, so it decodes on its own.
//!
//! [`TsMuxer`] is the packet level. The `mpeg2ts` crate encodes the packets, PSI sections (with
//! their CRC), PES headers, PTS/DTS and PCR fields; what it lacks, and this file adds, is PES
//! packetisation, continuity counters per PID, PAT/PMT repetition and the choice of PCR.
//!
//! Frames come from publishers, so nothing here trusts them: a frame that cannot be muxed is
//! counted and skipped, never a panic.

use std::time::Duration;

use bytes::Bytes;
use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{self, Pat, Pes, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation,
    TransportScramblingControl, TsHeader, TsPacket, TsPacketWriter, TsPayload, VersionNumber,
    WriteTsPacket,
};

use super::codec::{self, AacConfig};
use super::frame::{FrameKind, MediaFrame};

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
const PROGRAM_NUMBER: u16 = 1;
const TRANSPORT_STREAM_ID: u16 = 1;
const VIDEO_STREAM_ID: u8 = 0xe0;
const AUDIO_STREAM_ID: u8 = 0xc0;

/// PTS/DTS run 0.7 s ahead of the PCR (nginx-rtmp's and ffmpeg's default mux delay): decoders
/// get each access unit before it is due, and a negative composition time never wraps below 0.
pub const PTS_OFFSET: u64 = 63_000;
/// ISO 13818-1 wants a PCR at least every 100 ms. When the PCR stream is quiet this long, the
/// next PES of the other stream is preceded by a PCR-only packet; audio frames come at most
/// ~30 ms apart, so the gap stays under 100 ms.
const PCR_MAX_GAP: u64 = 90 * 60;
const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
const TS_PAYLOAD_SIZE: usize = TsPacket::SIZE - 4;
/// start code (3) + stream id (1) + length (2) + flags (2) + header length (1).
const PES_FIXED_HEADER_SIZE: usize = 9;
const PES_TIMESTAMP_SIZE: usize = 5;

/// A forward step between consecutive frames beyond this is a timestamp jump, not a pause.
const JUMP_FORWARD_MS: i32 = 10_000;
/// A backward step beyond this is a restart, not audio interleaved behind video (the channel's
/// timeline uses the same bound).
const JUMP_BACKWARD_MS: i32 = 1_000;

/// Segments longer than this are cut even without a keyframe (at least 12 s, so that the
/// common 8-10 s encoder GOPs still give independent segments).
const MIN_MAX_SEGMENT_MS: u32 = 12_000;
/// A segment is cut, keyframe or not, once it holds this much: memory per stream stays
/// bounded by window × this, whatever the publisher's GOP.
pub const MAX_SEGMENT_BYTES: usize = 16 << 20;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TsError {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("TS encoding failed: {0}")]
    Encode(String),
}

fn malformed(what: &'static str, detail: impl Into<String>) -> TsError {
    TsError::Malformed {
        what,
        detail: detail.into(),
    }
}

fn encode_error(e: mpeg2ts::Error) -> TsError {
    TsError::Encode(e.reason)
}

// ---------------------------------------------------------------------------------------------
// Tracks: what the decoder configurations say
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    H264,
    H265,
}

impl VideoFormat {
    fn stream_type(self) -> StreamType {
        match self {
            VideoFormat::H264 => StreamType::H264,
            VideoFormat::H265 => StreamType::H265,
        }
    }

    fn nal_type(self, nal: &[u8]) -> u8 {
        let b0 = nal.first().copied().unwrap_or(0);
        match self {
            VideoFormat::H264 => b0 & 0x1f,
            VideoFormat::H265 => (b0 >> 1) & 0x3f,
        }
    }

    fn is_aud(self, nal_type: u8) -> bool {
        match self {
            VideoFormat::H264 => nal_type == 9,
            VideoFormat::H265 => nal_type == 35,
        }
    }

    fn is_parameter_set(self, nal_type: u8) -> bool {
        match self {
            VideoFormat::H264 => matches!(nal_type, 7 | 8),
            VideoFormat::H265 => matches!(nal_type, 32..=34),
        }
    }

    /// IDR (H.264) or IRAP (HEVC) slices: a decoder needs the parameter sets right before.
    fn is_random_access(self, nal_type: u8) -> bool {
        match self {
            VideoFormat::H264 => nal_type == 5,
            VideoFormat::H265 => (16..=23).contains(&nal_type),
        }
    }

    /// An access unit delimiter NAL unit, without start code.
    fn aud(self) -> &'static [u8] {
        match self {
            // primary_pic_type 7: any slice type.
            VideoFormat::H264 => &[0x09, 0xf0],
            // nal type 35, layer 0, temporal id 1; pic_type 2: any slice type.
            VideoFormat::H265 => &[0x46, 0x01, 0x50],
        }
    }
}

/// A video decoder configuration, from an AVC or HEVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    pub format: VideoFormat,
    /// Bytes in each NAL unit length prefix of the coded frames (1 to 4).
    pub nal_length_size: u8,
    /// VPS/SPS/PPS NAL units in record order, each without start code.
    pub parameter_sets: Vec<Bytes>,
    /// The RFC 6381 codec name for a master playlist (`avc1.64001f`), when known.
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
}

impl VideoTrack {
    /// Parses an AVCDecoderConfigurationRecord. Only the framing is required to be sound: the
    /// SPS contents are used for the resolution when they parse, never to refuse the stream.
    pub fn from_avc_record(record: &[u8]) -> Result<VideoTrack, TsError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        if record.len() < 6 {
            return Err(malformed(WHAT, format!("{} bytes", record.len())));
        }
        if record[0] != 1 {
            return Err(malformed(WHAT, format!("version {}", record[0])));
        }
        let nal_length_size = (record[4] & 0x03) + 1;
        let mut pos = 5;
        let mut parameter_sets = Vec::new();
        let sps_count = usize::from(record[pos] & 0x1f);
        pos += 1;
        read_length_prefixed_list(record, &mut pos, sps_count, WHAT, &mut parameter_sets)?;
        let pps_count = usize::from(
            *record
                .get(pos)
                .ok_or_else(|| malformed(WHAT, "no PPS count"))?,
        );
        pos += 1;
        read_length_prefixed_list(record, &mut pos, pps_count, WHAT, &mut parameter_sets)?;
        let sps = parameter_sets
            .iter()
            .find(|nal| VideoFormat::H264.nal_type(nal) == 7)
            .ok_or_else(|| malformed(WHAT, "no SPS"))?;
        let codecs = sps
            .get(1..4)
            .map(|p| format!("avc1.{:02x}{:02x}{:02x}", p[0], p[1], p[2]));
        let resolution = codec::parse_sps(sps).ok().map(|i| (i.width, i.height));
        Ok(VideoTrack {
            format: VideoFormat::H264,
            nal_length_size,
            parameter_sets,
            codecs,
            resolution,
        })
    }

    /// Parses an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1).
    pub fn from_hevc_record(record: &[u8]) -> Result<VideoTrack, TsError> {
        const WHAT: &str = "HEVCDecoderConfigurationRecord";
        const FIXED_SIZE: usize = 23;
        if record.len() < FIXED_SIZE {
            return Err(malformed(WHAT, format!("{} bytes", record.len())));
        }
        if record[0] != 1 {
            return Err(malformed(WHAT, format!("version {}", record[0])));
        }
        let nal_length_size = (record[21] & 0x03) + 1;
        let arrays = usize::from(record[22]);
        let mut pos = FIXED_SIZE;
        let mut parameter_sets = Vec::new();
        for _ in 0..arrays {
            let header = record
                .get(pos..pos + 3)
                .ok_or_else(|| malformed(WHAT, "array header cut short"))?;
            let count = usize::from(u16::from_be_bytes([header[1], header[2]]));
            pos += 3;
            read_length_prefixed_list(record, &mut pos, count, WHAT, &mut parameter_sets)?;
        }
        if !parameter_sets
            .iter()
            .any(|nal| VideoFormat::H265.nal_type(nal) == 33)
        {
            return Err(malformed(WHAT, "no SPS"));
        }
        Ok(VideoTrack {
            format: VideoFormat::H265,
            nal_length_size,
            parameter_sets,
            codecs: None,
            resolution: None,
        })
    }

    /// One coded frame (length-prefixed NAL units) as an Annex B access unit: AUD first, the
    /// parameter sets before a keyframe unless it carries its own, the frame's own AUDs dropped.
    pub fn annex_b(&self, data: &[u8], keyframe: bool) -> Result<Vec<u8>, TsError> {
        const START_CODE: [u8; 4] = [0, 0, 0, 1];
        let format = self.format;
        let nalus = split_length_prefixed(data, self.nal_length_size)?;
        if nalus.is_empty() {
            return Err(malformed("coded frame", "no NAL units"));
        }
        let types: Vec<u8> = nalus.iter().map(|n| format.nal_type(n)).collect();
        let random_access = keyframe || types.iter().any(|&t| format.is_random_access(t));
        let has_parameter_sets = types.iter().any(|&t| format.is_parameter_set(t));
        let parameter_sets: &[Bytes] = if random_access && !has_parameter_sets {
            &self.parameter_sets
        } else {
            &[]
        };
        let size = START_CODE.len() * (1 + parameter_sets.len() + nalus.len())
            + format.aud().len()
            + parameter_sets.iter().map(|p| p.len()).sum::<usize>()
            + data.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(format.aud());
        for nal in parameter_sets {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        for (nal, &nal_type) in nalus.iter().zip(&types) {
            if format.is_aud(nal_type) {
                continue;
            }
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        Ok(out)
    }
}

fn read_length_prefixed_list(
    record: &[u8],
    pos: &mut usize,
    count: usize,
    what: &'static str,
    into: &mut Vec<Bytes>,
) -> Result<(), TsError> {
    for _ in 0..count {
        let len = record
            .get(*pos..*pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| malformed(what, "NAL unit length cut short"))?;
        let nal = record
            .get(*pos + 2..*pos + 2 + len)
            .ok_or_else(|| malformed(what, "NAL unit cut short"))?;
        if !nal.is_empty() {
            into.push(Bytes::copy_from_slice(nal));
        }
        *pos += 2 + len;
    }
    Ok(())
}

/// Splits length-prefixed NAL units (AVCC/HVCC framing). Zero padding after the last unit is
/// tolerated; anything else that does not add up is an error.
fn split_length_prefixed(data: &[u8], length_size: u8) -> Result<Vec<&[u8]>, TsError> {
    let size = usize::from(length_size);
    let mut nalus = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let prefix = rest
            .get(..size)
            .ok_or_else(|| malformed("coded frame", "NAL unit length cut short"))?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let nal = rest.get(size..size + len).ok_or_else(|| {
            malformed(
                "coded frame",
                format!(
                    "NAL unit of {len} bytes, only {} left",
                    rest.len().saturating_sub(size)
                ),
            )
        })?;
        if !nal.is_empty() {
            nalus.push(nal);
        }
        pos += size + len;
    }
    Ok(nalus)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioTrack {
    Aac(AacConfig),
    Mp3,
}

impl AudioTrack {
    fn stream_type(self) -> StreamType {
        match self {
            AudioTrack::Aac(_) => StreamType::AdtsAac,
            AudioTrack::Mp3 => StreamType::Mpeg1Audio,
        }
    }

    fn codecs(self) -> String {
        match self {
            // ADTS can only say Main/LC/SSR/LTP; everything else is written as LC.
            AudioTrack::Aac(cfg) if (1..=4).contains(&cfg.object_type) => {
                format!("mp4a.40.{}", cfg.object_type)
            }
            AudioTrack::Aac(_) => "mp4a.40.2".to_string(),
            AudioTrack::Mp3 => "mp4a.40.34".to_string(),
        }
    }

    /// Nominal frame duration, for the end of the last segment.
    fn frame_ms(self) -> u32 {
        match self {
            AudioTrack::Aac(cfg) if cfg.sample_rate > 0 => (1024 * 1000 / cfg.sample_rate).max(1),
            AudioTrack::Aac(_) => 23,
            AudioTrack::Mp3 => 26,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// FLV payloads
// ---------------------------------------------------------------------------------------------

enum VideoPacket<'a> {
    Config(VideoFormat, &'a [u8]),
    Frame {
        format: VideoFormat,
        composition_ms: i32,
        data: &'a [u8],
    },
    /// End of sequence, metadata, command frames, codecs TS cannot carry here.
    Other,
}

fn si24(bytes: &[u8]) -> i32 {
    match bytes {
        [a, b, c, ..] => i32::from_be_bytes([*a, *b, *c, 0]) >> 8,
        _ => 0,
    }
}

/// Legacy FLV (codec ids 7 and 12) and the plain Enhanced RTMP forms of `avc1`/`hvc1`.
/// E-RTMP multitrack and ModEx wrappers are not unwrapped: such video is left out of HLS.
fn video_packet(body: &[u8]) -> VideoPacket<'_> {
    let Some(&b0) = body.first() else {
        return VideoPacket::Other;
    };
    if b0 & 0x80 != 0 {
        let format = match body.get(1..5) {
            Some(b"avc1") => VideoFormat::H264,
            Some(b"hvc1") => VideoFormat::H265,
            _ => return VideoPacket::Other,
        };
        if (b0 >> 4) & 0x07 == 5 {
            return VideoPacket::Other; // command frame
        }
        let rest = &body[5..];
        return match b0 & 0x0f {
            codec::video_packet_type::SEQUENCE_START => VideoPacket::Config(format, rest),
            codec::video_packet_type::CODED_FRAMES if rest.len() >= 3 => VideoPacket::Frame {
                format,
                composition_ms: si24(rest),
                data: &rest[3..],
            },
            codec::video_packet_type::CODED_FRAMES_X => VideoPacket::Frame {
                format,
                composition_ms: 0,
                data: rest,
            },
            _ => VideoPacket::Other,
        };
    }
    let format = match b0 & 0x0f {
        7 => VideoFormat::H264,
        12 => VideoFormat::H265,
        _ => return VideoPacket::Other,
    };
    if b0 >> 4 == 5 || body.len() < 5 {
        return VideoPacket::Other;
    }
    match body[1] {
        0 => VideoPacket::Config(format, &body[5..]),
        1 => VideoPacket::Frame {
            format,
            composition_ms: si24(&body[2..5]),
            data: &body[5..],
        },
        _ => VideoPacket::Other,
    }
}

enum AudioPacket<'a> {
    AacConfig(&'a [u8]),
    AacFrame(&'a [u8]),
    Mp3(&'a [u8]),
    Other,
}

fn audio_packet(body: &[u8]) -> AudioPacket<'_> {
    let Some(&b0) = body.first() else {
        return AudioPacket::Other;
    };
    match b0 >> 4 {
        10 => match body.get(1) {
            Some(0) => AudioPacket::AacConfig(&body[2..]),
            Some(1) if body.len() > 2 => AudioPacket::AacFrame(&body[2..]),
            _ => AudioPacket::Other,
        },
        2 | 14 if body.len() > 1 => AudioPacket::Mp3(&body[1..]),
        _ => AudioPacket::Other,
    }
}

// ---------------------------------------------------------------------------------------------
// The packet level
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elementary {
    Video,
    Audio,
}

/// PES packetisation, continuity counters, PSI and PCR for one program of up to one video and
/// one audio stream. Continuity counters carry on across segments, as they would in one long
/// stream, so a player reading segment after segment sees no gap.
#[derive(Debug)]
pub struct TsMuxer {
    pat_cc: ContinuityCounter,
    pmt_cc: ContinuityCounter,
    video_cc: ContinuityCounter,
    audio_cc: ContinuityCounter,
    pmt_version: VersionNumber,
    streams: Option<(Option<StreamType>, Option<StreamType>)>,
    pcr_pid: u16,
    /// Last PCR base written (90 kHz, 33 bits).
    last_pcr: Option<u64>,
}

impl Default for TsMuxer {
    fn default() -> Self {
        TsMuxer {
            pat_cc: ContinuityCounter::new(),
            pmt_cc: ContinuityCounter::new(),
            video_cc: ContinuityCounter::new(),
            audio_cc: ContinuityCounter::new(),
            pmt_version: VersionNumber::new(),
            streams: None,
            pcr_pid: VIDEO_PID,
            last_pcr: None,
        }
    }
}

fn write_packet(out: &mut Vec<u8>, packet: &TsPacket) -> Result<(), TsError> {
    TsPacketWriter::new(&mut *out)
        .write_ts_packet(packet)
        .map_err(encode_error)
}

fn header(pid: u16, cc: ContinuityCounter) -> Result<TsHeader, TsError> {
    Ok(TsHeader {
        transport_error_indicator: false,
        transport_priority: false,
        pid: Pid::new(pid).map_err(encode_error)?,
        transport_scrambling_control: TransportScramblingControl::NotScrambled,
        continuity_counter: cc,
    })
}

fn adaptation_field(random_access: bool, pcr: Option<u64>) -> Result<AdaptationField, TsError> {
    Ok(AdaptationField {
        discontinuity_indicator: false,
        random_access_indicator: random_access,
        es_priority_indicator: false,
        pcr: pcr
            .map(|base| ClockReference::new(base * 300))
            .transpose()
            .map_err(encode_error)?,
        opcr: None,
        splice_countdown: None,
        transport_private_data: Vec::new(),
        extension: None,
    })
}

/// `a` is later than `b` on the 33-bit PTS clock.
fn is_after_33(a: u64, b: u64) -> bool {
    let diff = a.wrapping_sub(b) & TIMESTAMP_MASK;
    diff != 0 && diff < (1 << 32)
}

impl TsMuxer {
    pub fn new() -> Self {
        Self::default()
    }

    fn counter(&mut self, pid: u16) -> &mut ContinuityCounter {
        match pid {
            0 => &mut self.pat_cc,
            PMT_PID => &mut self.pmt_cc,
            VIDEO_PID => &mut self.video_cc,
            _ => &mut self.audio_cc,
        }
    }

    /// The counter for the next packet with payload on `pid`.
    fn next_cc(&mut self, pid: u16) -> ContinuityCounter {
        let counter = self.counter(pid);
        let cc = *counter;
        counter.increment();
        cc
    }

    /// The counter of the last packet with payload on `pid`: what a packet without payload
    /// must repeat.
    fn last_cc(&mut self, pid: u16) -> ContinuityCounter {
        let next = self.counter(pid).as_u8();
        ContinuityCounter::from_u8((next + ContinuityCounter::MAX) & ContinuityCounter::MAX)
            .unwrap_or_default()
    }

    /// Writes a PAT and a PMT listing the given streams. Returns whether the program differs
    /// from the one before (the PMT version is bumped then).
    pub fn write_tables(
        &mut self,
        out: &mut Vec<u8>,
        video: Option<StreamType>,
        audio: Option<StreamType>,
    ) -> Result<bool, TsError> {
        let changed = self.streams.is_some_and(|s| s != (video, audio));
        if changed {
            self.pmt_version.increment();
        }
        self.streams = Some((video, audio));
        self.pcr_pid = if video.is_some() {
            VIDEO_PID
        } else {
            AUDIO_PID
        };

        let pat = Pat {
            transport_stream_id: TRANSPORT_STREAM_ID,
            version_number: VersionNumber::new(),
            table: vec![ProgramAssociation {
                program_num: PROGRAM_NUMBER,
                program_map_pid: Pid::new(PMT_PID).map_err(encode_error)?,
            }],
        };
        let cc = self.next_cc(0);
        write_packet(
            out,
            &TsPacket {
                header: header(0, cc)?,
                adaptation_field: None,
                payload: Some(TsPayload::Pat(pat)),
            },
        )?;

        let mut es_info = Vec::new();
        for (pid, stream_type) in [(VIDEO_PID, video), (AUDIO_PID, audio)] {
            if let Some(stream_type) = stream_type {
                es_info.push(EsInfo {
                    stream_type,
                    elementary_pid: Pid::new(pid).map_err(encode_error)?,
                    descriptors: Vec::new(),
                });
            }
        }
        let pmt = Pmt {
            program_num: PROGRAM_NUMBER,
            pcr_pid: Some(Pid::new(self.pcr_pid).map_err(encode_error)?),
            version_number: self.pmt_version,
            program_info: Vec::new(),
            es_info,
        };
        let cc = self.next_cc(PMT_PID);
        write_packet(
            out,
            &TsPacket {
                header: header(PMT_PID, cc)?,
                adaptation_field: None,
                payload: Some(TsPayload::Pmt(pmt)),
            },
        )?;
        Ok(changed)
    }

    /// The PCR to put on the PCR PID now, if one is due: on every PES of that PID, and never
    /// going backwards (audio may trail video a little).
    fn take_pcr(&mut self, clock: u64) -> u64 {
        let pcr = match self.last_pcr {
            Some(last) if !is_after_33(clock, last) => last,
            _ => clock,
        };
        self.last_pcr = Some(pcr);
        pcr
    }

    /// Writes one access unit as a PES. `dts_90k` is the stream time in 90 kHz units (the PCR
    /// is derived from it), `composition_90k` the PTS - DTS offset. Returns the bytes written.
    pub fn write_pes(
        &mut self,
        out: &mut Vec<u8>,
        stream: Elementary,
        dts_90k: u64,
        composition_90k: u64,
        random_access: bool,
        data: &[u8],
    ) -> Result<usize, TsError> {
        let start_len = out.len();
        let (pid, stream_id) = match stream {
            Elementary::Video => (VIDEO_PID, VIDEO_STREAM_ID),
            Elementary::Audio => (AUDIO_PID, AUDIO_STREAM_ID),
        };
        let clock = dts_90k & TIMESTAMP_MASK;
        let pcr = if pid == self.pcr_pid {
            Some(self.take_pcr(clock))
        } else {
            let pcr_due = self.last_pcr.is_none_or(|last| {
                is_after_33(clock, last) && clock.wrapping_sub(last) & TIMESTAMP_MASK >= PCR_MAX_GAP
            });
            if pcr_due {
                let pcr = self.take_pcr(clock);
                let pcr_pid = self.pcr_pid;
                let cc = self.last_cc(pcr_pid);
                write_packet(
                    out,
                    &TsPacket {
                        header: header(pcr_pid, cc)?,
                        adaptation_field: Some(adaptation_field(false, Some(pcr))?),
                        payload: None,
                    },
                )?;
            }
            None
        };

        let dts = (dts_90k + PTS_OFFSET) & TIMESTAMP_MASK;
        let pts = (dts_90k + PTS_OFFSET + composition_90k) & TIMESTAMP_MASK;
        let with_dts = pts != dts;
        let header_size = PES_FIXED_HEADER_SIZE + PES_TIMESTAMP_SIZE * if with_dts { 2 } else { 1 };
        // The length counts everything after the length field; 0 means "unbounded", which
        // ISO 13818-1 allows for video only.
        let pes_len = header_size - 6 + data.len();
        let pes_packet_len = match u16::try_from(pes_len) {
            Ok(len) => len,
            Err(_) if stream == Elementary::Video => 0,
            Err(_) => return Err(malformed("audio frame", format!("{} bytes", data.len()))),
        };
        let pes_header = PesHeader {
            stream_id: StreamId::new(stream_id),
            priority: false,
            data_alignment_indicator: true,
            copyright: false,
            original_or_copy: false,
            pts: Some(Timestamp::new(pts).map_err(encode_error)?),
            dts: if with_dts {
                Some(Timestamp::new(dts).map_err(encode_error)?)
            } else {
                None
            },
            escr: None,
        };

        let af = if random_access || pcr.is_some() {
            Some(adaptation_field(random_access, pcr)?)
        } else {
            None
        };
        // Adaptation field length and flags bytes, plus the PCR.
        let af_size = match (&af, pcr) {
            (None, _) => 0,
            (Some(_), Some(_)) => 8,
            (Some(_), None) => 2,
        };
        let first_len = data.len().min(TS_PAYLOAD_SIZE - header_size - af_size);
        let cc = self.next_cc(pid);
        write_packet(
            out,
            &TsPacket {
                header: header(pid, cc)?,
                adaptation_field: af,
                payload: Some(TsPayload::PesStart(Pes {
                    header: pes_header,
                    pes_packet_len,
                    data: payload::Bytes::new(&data[..first_len]).map_err(encode_error)?,
                })),
            },
        )?;
        for chunk in data[first_len..].chunks(TS_PAYLOAD_SIZE) {
            let cc = self.next_cc(pid);
            write_packet(
                out,
                &TsPacket {
                    header: header(pid, cc)?,
                    adaptation_field: None,
                    payload: Some(TsPayload::PesContinuation(
                        payload::Bytes::new(chunk).map_err(encode_error)?,
                    )),
                },
            )?;
        }
        Ok(out.len() - start_len)
    }
}

// ---------------------------------------------------------------------------------------------
// Segmentation
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Target segment length: cuts happen at the first start point at least this long after
    /// the segment's start.
    pub fragment_ms: u32,
    /// Cut here even without a keyframe.
    pub max_segment_ms: u32,
    pub max_segment_bytes: usize,
}

impl SegmentLimits {
    pub fn for_fragment(fragment: Duration) -> SegmentLimits {
        let fragment_ms = fragment.as_millis().clamp(100, 600_000) as u32;
        SegmentLimits {
            fragment_ms,
            max_segment_ms: fragment_ms.saturating_mul(3).max(MIN_MAX_SEGMENT_MS),
            max_segment_bytes: MAX_SEGMENT_BYTES,
        }
    }

    /// Keyframes arrive on a millisecond grid; one a little early still ends the segment, or
    /// a 1 s GOP with 1 s fragments would give 2 s segments.
    fn keyframe_tolerance_ms(&self) -> u32 {
        (self.fragment_ms / 10).min(100)
    }
}

/// A complete segment, ready to be listed.
#[derive(Debug, Clone)]
pub struct FinishedSegment {
    pub data: Bytes,
    pub duration_ms: u32,
    /// The segment follows a publisher change, a timestamp jump or a change of streams.
    pub discontinuity: bool,
    /// It starts with a keyframe (or is audio only): it decodes without the one before.
    pub independent: bool,
    /// TS bytes of each PID, PSI counted with the PCR stream.
    pub video_bytes: u64,
    pub audio_bytes: u64,
}

#[derive(Debug)]
struct OpenSegment {
    buf: Vec<u8>,
    start_ts: u32,
    /// The latest timestamp written.
    end_ts: u32,
    last_video_ts: Option<u32>,
    video: bool,
    audio: bool,
    discontinuity: bool,
    independent: bool,
    video_bytes: u64,
    audio_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    No,
    /// End the segment where this frame starts.
    Here,
    /// Timestamps jumped: end the segment after its last frame and mark a discontinuity.
    AfterJump,
}

/// Later of two timestamps on the wrapping 32-bit millisecond clock.
fn later(a: u32, b: u32) -> u32 {
    if (a.wrapping_sub(b) as i32) > 0 {
        a
    } else {
        b
    }
}

/// Turns the channel's frames into HLS segments.
#[derive(Debug)]
pub struct TsSegmenter {
    limits: SegmentLimits,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    mux: TsMuxer,
    open: Option<OpenSegment>,
    discontinuity_pending: bool,
    /// End the open segment at the next start point, however short it is.
    cut_pending: bool,
    last_video_ts: Option<u32>,
    video_interval_ms: u32,
    last_audio_ts: Option<u32>,
    audio_interval_ms: u32,
    /// Audio timestamp since which audio has waited for video that is configured but silent.
    video_awaited_since: Option<u32>,
    /// Frames that could not be muxed (malformed, or a codec the configuration does not match).
    pub dropped_frames: u64,
}

impl TsSegmenter {
    pub fn new(limits: SegmentLimits) -> TsSegmenter {
        TsSegmenter {
            limits,
            video: None,
            audio: None,
            mux: TsMuxer::new(),
            open: None,
            discontinuity_pending: false,
            cut_pending: false,
            last_video_ts: None,
            video_interval_ms: 0,
            last_audio_ts: None,
            audio_interval_ms: 0,
            video_awaited_since: None,
            dropped_frames: 0,
        }
    }

    pub fn limits(&self) -> &SegmentLimits {
        &self.limits
    }

    pub fn video_track(&self) -> Option<&VideoTrack> {
        self.video.as_ref()
    }

    pub fn audio_track(&self) -> Option<AudioTrack> {
        self.audio
    }

    /// RFC 6381 codecs of the current tracks (`avc1.64001f,mp4a.40.2`), if all are known.
    pub fn codecs(&self) -> Option<String> {
        let mut names = Vec::new();
        if let Some(video) = &self.video {
            names.push(video.codecs.clone()?);
        }
        if let Some(audio) = self.audio {
            names.push(audio.codecs());
        }
        (!names.is_empty()).then(|| names.join(","))
    }

    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.video.as_ref().and_then(|v| v.resolution)
    }

    /// The stream continues from another source (a new publisher): the next segment starts
    /// at the next start point and is marked as a discontinuity.
    pub fn mark_discontinuity(&mut self) {
        self.discontinuity_pending = true;
        self.cut_pending = true;
    }

    /// Forget the decoder configurations; the next source sends its own.
    pub fn reset_tracks(&mut self) {
        self.video = None;
        self.audio = None;
        self.last_video_ts = None;
        self.last_audio_ts = None;
        self.video_awaited_since = None;
    }

    /// Whether a segment is being filled.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Ends the open segment: the stream ended.
    pub fn finish(&mut self) -> Option<FinishedSegment> {
        let seg = self.open.as_ref()?;
        // With video, the segment ends where its last picture does; audio running a few
        // milliseconds past it belongs to the same stretch of time.
        let end = match (seg.last_video_ts, self.audio) {
            (Some(video), _) => video.wrapping_add(self.video_interval_ms),
            (None, Some(audio)) if self.audio_interval_ms == 0 => {
                seg.end_ts.wrapping_add(audio.frame_ms())
            }
            (None, _) => seg.end_ts.wrapping_add(self.audio_interval_ms),
        };
        self.close(end)
    }

    /// Feeds one frame; returns the segment it completed, if any.
    pub fn push(&mut self, frame: &MediaFrame) -> Option<FinishedSegment> {
        match frame.kind {
            FrameKind::Metadata => None,
            FrameKind::Video => match video_packet(&frame.body) {
                VideoPacket::Config(format, record) => {
                    self.configure_video(format, record);
                    None
                }
                VideoPacket::Frame {
                    format,
                    composition_ms,
                    data,
                } => self.push_video(
                    frame.timestamp,
                    frame.is_keyframe,
                    format,
                    composition_ms,
                    data,
                ),
                VideoPacket::Other => None,
            },
            FrameKind::Audio => match audio_packet(&frame.body) {
                AudioPacket::AacConfig(asc) => {
                    match codec::parse_aac_config(asc) {
                        Ok(cfg) => self.configure_audio(AudioTrack::Aac(cfg)),
                        Err(_) => self.dropped_frames += 1,
                    }
                    None
                }
                AudioPacket::AacFrame(raw) => match self.audio {
                    Some(AudioTrack::Aac(cfg)) => {
                        // 13 bits of ADTS frame length.
                        if raw.len() + 7 > 0x1fff {
                            self.dropped_frames += 1;
                            return None;
                        }
                        let mut adts = Vec::with_capacity(raw.len() + 7);
                        adts.extend_from_slice(&codec::adts_header(&cfg, raw.len()));
                        adts.extend_from_slice(raw);
                        self.push_audio(frame.timestamp, &adts)
                    }
                    _ => None,
                },
                AudioPacket::Mp3(data) => {
                    // MP3 has no sequence header; its first frame configures the track.
                    self.configure_audio(AudioTrack::Mp3);
                    self.push_audio(frame.timestamp, data)
                }
                AudioPacket::Other => None,
            },
        }
    }

    fn configure_video(&mut self, format: VideoFormat, record: &[u8]) {
        let track = match format {
            VideoFormat::H264 => VideoTrack::from_avc_record(record),
            VideoFormat::H265 => VideoTrack::from_hevc_record(record),
        };
        let Ok(track) = track else {
            self.dropped_frames += 1;
            return;
        };
        if self.video.as_ref() == Some(&track) {
            return;
        }
        if self.open.is_some() {
            // New parameters (or video where there was none): start clean at the next keyframe.
            self.cut_pending = true;
            if self.video.is_some() {
                self.discontinuity_pending = true;
            }
        }
        self.video = Some(track);
    }

    fn configure_audio(&mut self, track: AudioTrack) {
        if self.audio == Some(track) {
            return;
        }
        if self.open.is_some() {
            self.cut_pending = true;
            if self.audio.is_some() {
                self.discontinuity_pending = true;
            }
        }
        self.audio = Some(track);
    }

    /// Whether segments should carry video: it is configured and not silent for longer than a
    /// segment may last (a publisher may announce video and send only audio).
    fn video_active(&self, ts: u32) -> bool {
        if self.video.is_none() {
            return false;
        }
        let since = self.last_video_ts.or(self.video_awaited_since);
        since
            .is_none_or(|since| (ts.wrapping_sub(since) as i32) < self.limits.max_segment_ms as i32)
    }

    fn decide(&self, seg: &OpenSegment, ts: u32, start_point: bool) -> Cut {
        let step = ts.wrapping_sub(seg.end_ts) as i32;
        if !(-JUMP_BACKWARD_MS..=JUMP_FORWARD_MS).contains(&step) {
            return Cut::AfterJump;
        }
        let elapsed = ts.wrapping_sub(seg.start_ts) as i32;
        if start_point {
            let tolerance = if seg.video {
                self.limits.keyframe_tolerance_ms()
            } else {
                // Audio can be cut at any frame: take the last one that keeps the segment
                // within the fragment, so the target duration stays the fragment's.
                self.audio_interval_ms
                    .saturating_sub(1)
                    .min(self.limits.fragment_ms / 2)
            };
            if self.cut_pending || elapsed >= (self.limits.fragment_ms - tolerance) as i32 {
                return Cut::Here;
            }
        }
        if elapsed >= self.limits.max_segment_ms as i32
            || seg.buf.len() >= self.limits.max_segment_bytes
        {
            return Cut::Here;
        }
        Cut::No
    }

    /// Applies a cut decision for a frame at `ts`; returns the completed segment.
    fn cut(&mut self, ts: u32, start_point: bool) -> Option<FinishedSegment> {
        let decision = match &self.open {
            Some(seg) => self.decide(seg, ts, start_point),
            None => return None,
        };
        match decision {
            Cut::No => None,
            Cut::Here => {
                let done = self.close(ts);
                self.open_segment(ts, start_point);
                done
            }
            Cut::AfterJump => {
                let done = self.finish();
                self.discontinuity_pending = true;
                self.open_segment(ts, start_point);
                done
            }
        }
    }

    fn push_video(
        &mut self,
        ts: u32,
        keyframe: bool,
        format: VideoFormat,
        composition_ms: i32,
        data: &[u8],
    ) -> Option<FinishedSegment> {
        let Some(track) = self.video.as_ref().filter(|t| t.format == format) else {
            self.dropped_frames += 1;
            return None;
        };
        let access_unit = match track.annex_b(data, keyframe) {
            Ok(au) => au,
            Err(_) => {
                self.dropped_frames += 1;
                return None;
            }
        };
        if let Some(last) = self.last_video_ts {
            let step = ts.wrapping_sub(last);
            if (1..=1000).contains(&step) {
                self.video_interval_ms = step;
            }
        }
        self.last_video_ts = Some(ts);

        let mut done = None;
        match &self.open {
            None if keyframe => self.open_segment(ts, true),
            // Nothing decodes before the first keyframe.
            None => return None,
            // Video came (back) while segments were audio only: switch at a keyframe.
            Some(seg) if !seg.video => {
                if !keyframe {
                    return None;
                }
                done = self.close(ts);
                self.open_segment(ts, true);
            }
            Some(_) => done = self.cut(ts, keyframe),
        }
        let Some(seg) = self.open.as_mut() else {
            return done;
        };
        let composition = u64::try_from(composition_ms).unwrap_or(0) * 90;
        match self.mux.write_pes(
            &mut seg.buf,
            Elementary::Video,
            u64::from(ts) * 90,
            composition,
            keyframe,
            &access_unit,
        ) {
            Ok(n) => seg.video_bytes += n as u64,
            Err(_) => self.dropped_frames += 1,
        }
        seg.end_ts = later(ts, seg.end_ts);
        seg.last_video_ts = Some(seg.last_video_ts.map_or(ts, |last| later(ts, last)));
        done
    }

    fn push_audio(&mut self, ts: u32, data: &[u8]) -> Option<FinishedSegment> {
        // Nothing to mux without a configuration.
        self.audio?;
        if let Some(last) = self.last_audio_ts {
            let step = ts.wrapping_sub(last);
            if (1..=1000).contains(&step) {
                self.audio_interval_ms = step;
            }
        }
        self.last_audio_ts = Some(ts);
        if self.video.is_some()
            && self.last_video_ts.is_none()
            && self.video_awaited_since.is_none()
        {
            self.video_awaited_since = Some(ts);
        }
        let video_active = self.video_active(ts);

        let mut done = None;
        match &self.open {
            // Audio waits for the first keyframe when there is video to wait for.
            None if video_active => return None,
            None => self.open_segment(ts, true),
            Some(_) => done = self.cut(ts, !video_active),
        }
        let Some(seg) = self.open.as_mut() else {
            return done;
        };
        if !seg.audio {
            return done;
        }
        let random_access = !seg.video;
        match self.mux.write_pes(
            &mut seg.buf,
            Elementary::Audio,
            u64::from(ts) * 90,
            0,
            random_access,
            data,
        ) {
            Ok(n) => seg.audio_bytes += n as u64,
            Err(_) => self.dropped_frames += 1,
        }
        seg.end_ts = later(ts, seg.end_ts);
        done
    }

    fn open_segment(&mut self, ts: u32, independent: bool) {
        let video = self.video_active(ts);
        let audio = self.audio.is_some();
        let mut buf = Vec::with_capacity(256 * 1024);
        let changed = self
            .mux
            .write_tables(
                &mut buf,
                self.video
                    .as_ref()
                    .filter(|_| video)
                    .map(|v| v.format.stream_type()),
                self.audio.map(AudioTrack::stream_type),
            )
            .unwrap_or(false);
        let psi_bytes = buf.len() as u64;
        let discontinuity = std::mem::take(&mut self.discontinuity_pending) || changed;
        self.cut_pending = false;
        self.open = Some(OpenSegment {
            buf,
            start_ts: ts,
            end_ts: ts,
            last_video_ts: None,
            video,
            audio,
            discontinuity,
            independent,
            video_bytes: if video { psi_bytes } else { 0 },
            audio_bytes: if video { 0 } else { psi_bytes },
        });
    }

    fn close(&mut self, end_ts: u32) -> Option<FinishedSegment> {
        let seg = self.open.take()?;
        let measured = end_ts.wrapping_sub(seg.start_ts) as i32;
        let duration_ms = if measured > 0 {
            measured as u32
        } else {
            // A single frame: it lasts one frame interval.
            self.video_interval_ms.max(self.audio_interval_ms).max(1)
        };
        Some(FinishedSegment {
            data: Bytes::from(seg.buf),
            duration_ms,
            discontinuity: seg.discontinuity,
            independent: seg.independent,
            video_bytes: seg.video_bytes,
            audio_bytes: seg.audio_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use mpeg2ts::pes::{PesPacket, PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};

    use super::*;

    // x264 320x240 constrained baseline, from `ffmpeg -f lavfi -i testsrc2 -c:v libx264 -f h264`.
    const SPS: &str = "6742c00dda0507ec0440000003004000000f03c50aa8";
    const PPS: &str = "68ce0fc8";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn avc_header_body(nal_length_size: u8) -> Vec<u8> {
        let sps = hex(SPS);
        let pps = hex(PPS);
        let mut b = vec![0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3]];
        b.push(0xfc | (nal_length_size - 1));
        b.push(0xe1);
        b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        b.extend_from_slice(&sps);
        b.push(1);
        b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        b.extend_from_slice(&pps);
        b
    }

    fn length_prefixed(nals: &[Vec<u8>], nal_length_size: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            let len = (nal.len() as u32).to_be_bytes();
            out.extend_from_slice(&len[4 - nal_length_size as usize..]);
            out.extend_from_slice(nal);
        }
        out
    }

    fn video_body(key: bool, cts: i32, nals: &[Vec<u8>], nal_length_size: u8) -> Vec<u8> {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1];
        b.extend_from_slice(&cts.to_be_bytes()[1..]);
        b.extend(length_prefixed(nals, nal_length_size));
        b
    }

    fn nal(first: u8, len: usize, seed: usize) -> Vec<u8> {
        let mut v = vec![first];
        v.extend((0..len).map(|i| ((i * 7 + seed) % 251) as u8 | 1));
        v
    }

    fn frame(kind: FrameKind, ts: u32, body: Vec<u8>) -> MediaFrame {
        MediaFrame::new(kind, ts, Bytes::from(body))
    }

    const AAC_HEADER: [u8; 4] = [0xaf, 0, 0x12, 0x10];

    fn aac_frame(ts: u32) -> MediaFrame {
        let mut body = vec![0xaf, 1];
        body.extend((0..300).map(|i| (i as u32 + ts) as u8));
        frame(FrameKind::Audio, ts, body)
    }

    struct Gen {
        fps: u32,
        gop: u32,
        video: bool,
        audio: bool,
        nal_length_size: u8,
    }

    impl Default for Gen {
        fn default() -> Self {
            Gen {
                fps: 30,
                gop: 30,
                video: true,
                audio: true,
                nal_length_size: 4,
            }
        }
    }

    impl Gen {
        /// Headers, then video and audio frames ordered by timestamp (video first on ties).
        fn frames(&self, ms: u32) -> Vec<MediaFrame> {
            let mut out = Vec::new();
            if self.video {
                out.push(frame(
                    FrameKind::Video,
                    0,
                    avc_header_body(self.nal_length_size),
                ));
            }
            if self.audio {
                out.push(frame(FrameKind::Audio, 0, AAC_HEADER.to_vec()));
            }
            let mut events: Vec<(u32, u8, u32)> = Vec::new();
            if self.video {
                let mut i = 0;
                loop {
                    let ts = i * 1000 / self.fps;
                    if ts >= ms {
                        break;
                    }
                    events.push((ts, 0, i));
                    i += 1;
                }
            }
            if self.audio {
                let mut j: u32 = 0;
                loop {
                    let ts = (u64::from(j) * 1024 * 1000 / 44100) as u32;
                    if ts >= ms {
                        break;
                    }
                    events.push((ts, 1, j));
                    j += 1;
                }
            }
            events.sort();
            for (ts, kind, i) in events {
                if kind == 0 {
                    let key = i % self.gop == 0;
                    let nals = if key {
                        vec![nal(0x06, 20, 1), nal(0x65, 3000, i as usize)]
                    } else {
                        vec![nal(0x41, 400, i as usize)]
                    };
                    out.push(frame(
                        FrameKind::Video,
                        ts,
                        video_body(key, 0, &nals, self.nal_length_size),
                    ));
                } else {
                    out.push(aac_frame(ts));
                }
            }
            out
        }
    }

    fn run(segmenter: &mut TsSegmenter, frames: &[MediaFrame]) -> Vec<FinishedSegment> {
        let mut out: Vec<FinishedSegment> =
            frames.iter().filter_map(|f| segmenter.push(f)).collect();
        out.extend(segmenter.finish());
        out
    }

    fn limits(fragment_ms: u64) -> SegmentLimits {
        SegmentLimits::for_fragment(Duration::from_millis(fragment_ms))
    }

    struct Parsed {
        packets: Vec<TsPacket>,
        video: Vec<PesPacket<Vec<u8>>>,
        audio: Vec<PesPacket<Vec<u8>>>,
    }

    /// Reads a segment back with mpeg2ts's own reader; panics on anything it rejects.
    fn parse(data: &[u8]) -> Parsed {
        assert_eq!(data.len() % TsPacket::SIZE, 0);
        let mut reader = TsPacketReader::new(data);
        let mut packets = Vec::new();
        while let Some(p) = reader.read_ts_packet().unwrap() {
            packets.push(p);
        }
        assert!(matches!(packets[0].payload, Some(TsPayload::Pat(_))));
        assert!(matches!(packets[1].payload, Some(TsPayload::Pmt(_))));
        let mut pes = PesPacketReader::new(TsPacketReader::new(data));
        let (mut video, mut audio) = (Vec::new(), Vec::new());
        while let Some(p) = pes.read_pes_packet().unwrap() {
            if p.header.stream_id.is_video() {
                video.push(p);
            } else {
                audio.push(p);
            }
        }
        Parsed {
            packets,
            video,
            audio,
        }
    }

    /// Continuity counters per PID: +1 on every packet with payload, repeated on packets without.
    fn assert_continuity(packets: &[TsPacket]) {
        let mut last: HashMap<u16, u8> = HashMap::new();
        for (i, p) in packets.iter().enumerate() {
            let pid = p.header.pid.as_u16();
            let cc = p.header.continuity_counter.as_u8();
            if let Some(&prev) = last.get(&pid) {
                let expected = if p.payload.is_some() {
                    (prev + 1) & 0x0f
                } else {
                    prev
                };
                assert_eq!(cc, expected, "packet {i} on PID {pid:#x}");
            }
            last.insert(pid, cc);
        }
    }

    fn pcr_bases(packets: &[TsPacket]) -> Vec<u64> {
        packets
            .iter()
            .filter_map(|p| p.adaptation_field.as_ref()?.pcr)
            .map(|pcr| pcr.as_u64() / 300)
            .collect()
    }

    fn decode_time(p: &PesPacket<Vec<u8>>) -> u64 {
        p.header.dts.or(p.header.pts).unwrap().as_u64()
    }

    fn nal_types(annex_b: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut i = 0;
        while i + 4 < annex_b.len() {
            if annex_b[i..i + 4] == [0, 0, 0, 1] {
                types.push(annex_b[i + 4] & 0x1f);
                i += 4;
            } else {
                i += 1;
            }
        }
        types
    }

    #[test]
    fn av_segments_are_cut_at_keyframes_and_each_decodes_alone() {
        let frames = Gen::default().frames(5000);
        let mut seg = TsSegmenter::new(limits(1000));
        let segments = run(&mut seg, &frames);
        assert_eq!(segments.len(), 5);
        for (i, s) in segments.iter().enumerate() {
            // The last one ends one frame interval (33 or 34 ms) after its last frame.
            assert!(
                (999..=1001).contains(&s.duration_ms),
                "segment {i}: {}",
                s.duration_ms
            );
            assert!(s.independent && !s.discontinuity);
            let parsed = parse(&s.data);
            let first = &parsed.video[0];
            assert_eq!(
                &nal_types(&first.data)[..5],
                &[9, 7, 8, 6, 5],
                "AUD, SPS, PPS before the IDR in segment {i}"
            );
            assert!(first.data.starts_with(&[0, 0, 0, 1, 0x09, 0xf0]));
            assert_eq!(parsed.video.len(), 30);
            // Every other frame has the AUD but no parameter sets.
            for p in &parsed.video[1..] {
                assert_eq!(nal_types(&p.data), vec![9, 1]);
            }
            assert!(s.video_bytes > 0 && s.audio_bytes > 0);
            assert_eq!(s.video_bytes + s.audio_bytes, s.data.len() as u64);
        }
        assert_eq!(seg.codecs().as_deref(), Some("avc1.42c00d,mp4a.40.2"));
        assert_eq!(seg.resolution(), Some((320, 240)));
    }

    #[test]
    fn counters_pcr_and_timestamps_are_consistent_across_segments() {
        let frames = Gen::default().frames(4000);
        let video_frames = frames
            .iter()
            .filter(|f| f.kind == FrameKind::Video && !f.is_sequence_header)
            .count();
        let audio_frames = frames
            .iter()
            .filter(|f| f.kind == FrameKind::Audio && !f.is_sequence_header)
            .count();
        let segments = run(&mut TsSegmenter::new(limits(1000)), &frames);
        let all: Vec<u8> = segments.iter().flat_map(|s| s.data.to_vec()).collect();
        let parsed = parse(&all);
        assert_continuity(&parsed.packets);
        assert_eq!(parsed.video.len(), video_frames);
        assert_eq!(parsed.audio.len(), audio_frames);

        let pcrs = pcr_bases(&parsed.packets);
        assert!(pcrs.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] <= 9000));
        let dts: Vec<u64> = parsed.video.iter().map(decode_time).collect();
        assert!(dts.windows(2).all(|w| w[1] > w[0]), "video DTS increase");
        let pts: Vec<u64> = parsed.audio.iter().map(decode_time).collect();
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "audio PTS increase");
        // The first frame (ts 0) is at the PTS offset, and the PCR never passes a DTS.
        assert_eq!(dts[0], PTS_OFFSET);
        assert!(pcrs.iter().all(|&p| p + PTS_OFFSET <= *dts.last().unwrap()));
        // ADTS on every audio frame: 300 bytes of AAC + 7 bytes of header.
        for p in &parsed.audio {
            assert_eq!(&p.data[..2], &[0xff, 0xf1]);
            assert_eq!(p.data.len(), 307);
        }
    }

    #[test]
    fn composition_time_gives_pts_after_dts() {
        let mut seg = TsSegmenter::new(limits(1000));
        seg.push(&frame(FrameKind::Video, 0, avc_header_body(4)));
        let key = video_body(true, 66, &[nal(0x65, 100, 0)], 4);
        seg.push(&frame(FrameKind::Video, 40, key));
        let done = seg.finish().unwrap();
        let parsed = parse(&done.data);
        let h = &parsed.video[0].header;
        assert_eq!(h.dts.unwrap().as_u64(), 40 * 90 + PTS_OFFSET);
        assert_eq!(h.pts.unwrap().as_u64(), 106 * 90 + PTS_OFFSET);
    }

    #[test]
    fn longer_fragments_span_several_gops() {
        let frames = Gen::default().frames(6000);
        let segments = run(&mut TsSegmenter::new(limits(2000)), &frames);
        let durations: Vec<u32> = segments.iter().map(|s| s.duration_ms / 10).collect();
        assert_eq!(durations, vec![200, 200, 199]);
    }

    #[test]
    fn audio_only_streams_are_cut_by_time() {
        let frames = Gen {
            video: false,
            ..Gen::default()
        }
        .frames(5000);
        let segments = run(&mut TsSegmenter::new(limits(1000)), &frames);
        assert!(segments.len() >= 4, "{}", segments.len());
        let all: Vec<u8> = segments.iter().flat_map(|s| s.data.to_vec()).collect();
        let parsed = parse(&all);
        assert_continuity(&parsed.packets);
        assert!(parsed.video.is_empty());
        assert_eq!(parsed.audio.len(), frames.len() - 1);
        for s in &segments[..segments.len() - 1] {
            assert!((975..=1000).contains(&s.duration_ms), "{}", s.duration_ms);
            assert!(s.independent);
        }
        let pcrs = pcr_bases(&parsed.packets);
        assert!(pcrs.windows(2).all(|w| w[1] - w[0] <= 9000));
        let total: u32 = segments.iter().map(|s| s.duration_ms).sum();
        assert!((4990..=5030).contains(&total), "{total}");
    }

    #[test]
    fn video_only_streams_work() {
        let frames = Gen {
            audio: false,
            ..Gen::default()
        }
        .frames(3000);
        let segments = run(&mut TsSegmenter::new(limits(1000)), &frames);
        assert_eq!(segments.len(), 3);
        for s in &segments {
            let parsed = parse(&s.data);
            assert!(parsed.audio.is_empty());
            assert_eq!(parsed.video.len(), 30);
        }
    }

    #[test]
    fn short_nal_length_prefixes_are_respected() {
        for size in [1u8, 2, 3] {
            let frames = Gen {
                nal_length_size: size,
                gop: 10,
                ..Gen::default()
            }
            .frames(1000);
            // A 1-byte prefix cannot frame the 3000-byte IDR; such frames are dropped.
            let mut seg = TsSegmenter::new(limits(1000));
            let segments = run(&mut seg, &frames);
            if size == 1 {
                assert!(seg.dropped_frames > 0);
                continue;
            }
            let parsed = parse(&segments[0].data);
            assert_eq!(parsed.video.len(), 30, "nal length size {size}");
            assert_eq!(&nal_types(&parsed.video[0].data)[..5], &[9, 7, 8, 6, 5]);
        }
    }

    #[test]
    fn sparse_video_gets_pcr_only_packets() {
        let frames = Gen {
            fps: 4,
            gop: 4,
            ..Gen::default()
        }
        .frames(3000);
        let segments = run(&mut TsSegmenter::new(limits(1000)), &frames);
        let all: Vec<u8> = segments.iter().flat_map(|s| s.data.to_vec()).collect();
        let parsed = parse(&all);
        assert_continuity(&parsed.packets);
        assert!(parsed
            .packets
            .iter()
            .any(|p| p.payload.is_none() && p.header.pid.as_u16() == VIDEO_PID));
        let pcrs = pcr_bases(&parsed.packets);
        assert!(pcrs.windows(2).all(|w| w[1] - w[0] <= 9000), "{pcrs:?}");
    }

    #[test]
    fn huge_frames_use_an_unbounded_pes_and_read_back_whole() {
        let mut seg = TsSegmenter::new(limits(1000));
        seg.push(&frame(FrameKind::Video, 0, avc_header_body(4)));
        let big = nal(0x65, 200_000, 3);
        seg.push(&frame(
            FrameKind::Video,
            0,
            video_body(true, 0, std::slice::from_ref(&big), 4),
        ));
        seg.push(&frame(
            FrameKind::Video,
            33,
            video_body(false, 0, &[nal(0x41, 10, 0)], 4),
        ));
        let done = seg.finish().unwrap();
        let parsed = parse(&done.data);
        assert_eq!(parsed.video.len(), 2);
        assert!(parsed.video[0].data.ends_with(&big));
        assert_eq!(done.duration_ms, 66);
    }

    #[test]
    fn a_new_source_starts_a_discontinuity_at_its_first_keyframe() {
        let mut seg = TsSegmenter::new(limits(1000));
        let mut segments = Vec::new();
        for f in Gen::default().frames(1500) {
            segments.extend(seg.push(&f));
        }
        seg.mark_discontinuity();
        // The new source continues the timeline (same channel) with its own keyframe.
        for f in Gen::default().frames(2000).iter() {
            let shifted = MediaFrame::new(f.kind, f.timestamp + 1500, f.body.clone());
            segments.extend(seg.push(&shifted));
        }
        segments.extend(seg.finish());
        let flags: Vec<(u32, bool)> = segments
            .iter()
            .map(|s| (s.duration_ms / 10, s.discontinuity))
            .collect();
        assert_eq!(
            flags,
            vec![(100, false), (50, false), (100, true), (99, false)]
        );
    }

    #[test]
    fn timestamps_jumping_back_end_the_segment_with_a_discontinuity() {
        let mut seg = TsSegmenter::new(limits(1000));
        let mut segments = Vec::new();
        for f in Gen::default().frames(1500) {
            segments.extend(seg.push(&f));
        }
        // A fresh channel after a re-publish starts its timeline near zero again.
        for f in Gen::default().frames(1000) {
            segments.extend(seg.push(&f));
        }
        segments.extend(seg.finish());
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[1].duration_ms, 499);
        assert!(segments[2].discontinuity && segments[2].independent);
        let all: Vec<u8> = segments.iter().flat_map(|s| s.data.to_vec()).collect();
        assert_continuity(&parse(&all).packets);
    }

    #[test]
    fn a_gop_longer_than_the_cap_is_cut_without_a_keyframe() {
        let frames = Gen {
            gop: 30 * 40,
            ..Gen::default()
        }
        .frames(30_000);
        let segments = run(&mut TsSegmenter::new(limits(2000)), &frames);
        assert_eq!(segments[0].duration_ms, 12_000);
        assert!(segments[0].independent);
        assert!(!segments[1].independent && !segments[1].discontinuity);
        assert!(segments.iter().all(|s| s.duration_ms <= 12_000));
    }

    #[test]
    fn a_segment_is_cut_when_it_reaches_the_byte_cap() {
        let mut l = limits(2000);
        l.max_segment_bytes = 20_000;
        let frames = Gen {
            gop: 300,
            ..Gen::default()
        }
        .frames(3000);
        let segments = run(&mut TsSegmenter::new(l), &frames);
        assert!(segments.len() > 3);
        assert!(segments.iter().all(|s| s.data.len() < 20_000 + 4000));
    }

    #[test]
    fn video_arriving_after_audio_switches_at_its_first_keyframe() {
        let mut seg = TsSegmenter::new(limits(1000));
        let mut segments = Vec::new();
        seg.push(&frame(FrameKind::Audio, 0, AAC_HEADER.to_vec()));
        for j in 0..60 {
            segments.extend(seg.push(&aac_frame(j * 23)));
        }
        seg.push(&frame(FrameKind::Video, 1380, avc_header_body(4)));
        // Not a keyframe: nothing to start from yet.
        segments.extend(seg.push(&frame(
            FrameKind::Video,
            1380,
            video_body(false, 0, &[nal(0x41, 10, 0)], 4),
        )));
        segments.extend(seg.push(&frame(
            FrameKind::Video,
            1400,
            video_body(true, 0, &[nal(0x65, 10, 0)], 4),
        )));
        segments.extend(seg.push(&aac_frame(1403)));
        segments.extend(seg.finish());
        assert_eq!(segments.len(), 3);
        assert!(!segments[1].discontinuity);
        assert!(segments[2].discontinuity, "the PMT changed");
        let last = parse(&segments[2].data);
        assert_eq!((last.video.len(), last.audio.len()), (1, 1));
    }

    #[test]
    fn announced_video_that_never_comes_does_not_block_audio() {
        let mut seg = TsSegmenter::new(limits(1000));
        seg.push(&frame(FrameKind::Video, 0, avc_header_body(4)));
        seg.push(&frame(FrameKind::Audio, 0, AAC_HEADER.to_vec()));
        let mut segments = Vec::new();
        for j in 0..1000 {
            segments.extend(seg.push(&aac_frame(j * 23)));
        }
        assert!(!segments.is_empty());
        assert!(parse(&segments[0].data).video.is_empty());
    }

    #[test]
    fn hevc_records_and_frames_are_muxed_as_stream_type_0x24() {
        let mut record = vec![1u8; 23];
        record[21] = 0x03; // 4-byte lengths
        record[22] = 3;
        for (nal_type, body) in [
            (32u8, vec![0x40, 1, 0xc]),
            (33, vec![0x42, 1, 1]),
            (34, vec![0x44, 1, 0xc1]),
        ] {
            record.extend_from_slice(&[0x80 | nal_type, 0, 1]);
            record.extend_from_slice(&(body.len() as u16).to_be_bytes());
            record.extend_from_slice(&body);
        }
        let mut header = vec![0x1c, 0, 0, 0, 0];
        header.extend_from_slice(&record);
        let mut seg = TsSegmenter::new(limits(1000));
        seg.push(&frame(FrameKind::Video, 0, header));
        let idr = vec![0x26, 0x01, 0xaf, 0x00];
        let mut body = vec![0x1c, 1, 0, 0, 0];
        body.extend(length_prefixed(std::slice::from_ref(&idr), 4));
        seg.push(&frame(FrameKind::Video, 0, body));
        let done = seg.finish().unwrap();
        let parsed = parse(&done.data);
        let Some(TsPayload::Pmt(pmt)) = &parsed.packets[1].payload else {
            panic!("no PMT");
        };
        assert_eq!(pmt.es_info[0].stream_type, StreamType::H265);
        let data = &parsed.video[0].data;
        assert!(data.starts_with(&[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x40]));
        assert!(data.ends_with(&idr));
    }

    #[test]
    fn mp3_audio_is_carried_as_mpeg_audio() {
        let mut seg = TsSegmenter::new(limits(1000));
        for j in 0..80u32 {
            let mut body = vec![0x2f, 0xff, 0xfb, 0x90, 0x64];
            body.extend(std::iter::repeat_n(j as u8, 400));
            seg.push(&frame(FrameKind::Audio, j * 26, body));
        }
        let done = seg.finish().unwrap();
        let parsed = parse(&done.data);
        assert!(!parsed.audio.is_empty());
        assert_eq!(seg.codecs().as_deref(), Some("mp4a.40.34"));
    }

    #[test]
    fn malformed_frames_are_dropped_not_fatal() {
        let mut seg = TsSegmenter::new(limits(1000));
        seg.push(&frame(FrameKind::Video, 0, avc_header_body(4)));
        // A length prefix that runs past the end.
        let mut bad = vec![0x17, 1, 0, 0, 0, 0, 0, 0x10, 0];
        bad.extend_from_slice(&[0x65, 1, 2]);
        assert!(seg.push(&frame(FrameKind::Video, 0, bad)).is_none());
        assert_eq!(seg.dropped_frames, 1);
        assert!(!seg.is_open());
        // Broken configuration records are refused; the old one stays.
        seg.push(&frame(FrameKind::Video, 0, vec![0x17, 0, 0, 0, 0, 1, 2]));
        assert_eq!(seg.dropped_frames, 2);
        assert!(seg.video_track().is_some());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seg = TsSegmenter::new(limits(500));
        let mut x: u32 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for i in 0..5000u32 {
            let len = (next() % 64) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let kind = match next() % 3 {
                0 => FrameKind::Audio,
                1 => FrameKind::Video,
                _ => FrameKind::Metadata,
            };
            // Keep some of them plausible so the segmenter gets past its headers.
            if i % 7 == 0 && body.len() > 2 {
                body[0] = if kind == FrameKind::Video { 0x17 } else { 0xaf };
            }
            let ts = if i % 500 == 0 { next() } else { i * 10 };
            if let Some(s) = seg.push(&frame(kind, ts, body)) {
                parse(&s.data);
            }
        }
        if let Some(s) = seg.finish() {
            parse(&s.data);
        }
    }

    #[test]
    fn timestamps_wrap_with_the_33_bit_clock() {
        assert!(is_after_33(5, TIMESTAMP_MASK - 5));
        assert!(!is_after_33(TIMESTAMP_MASK - 5, 5));
        assert!(!is_after_33(7, 7));
        // 2^32 ms is exactly 45 laps of the 33-bit 90 kHz clock: RTMP wrap-around is seamless.
        assert_eq!(((1u64 << 32) * 90) & TIMESTAMP_MASK, 0);
    }
}
