//! FLV file/stream framing: the 13-byte header, tag encoding, and a tag reader for tests and
//! recordings.

use bytes::{BufMut, Bytes, BytesMut};

pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

pub const TAG_HEADER_LEN: usize = 11;
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// The FLV file header plus PreviousTagSize0.
pub const FILE_HEADER_LEN: usize = 13;
/// Tag data sizes are 24-bit.
pub const MAX_TAG_BODY: usize = 0x00ff_ffff;

const FLAG_AUDIO: u8 = 0x04;
const FLAG_VIDEO: u8 = 0x01;

/// "FLV", version 1, audio and video present, header size 9, PreviousTagSize0 = 0.
pub const FLV_HEADER_AV: [u8; 13] = file_header(true, true);

pub const fn file_header(has_audio: bool, has_video: bool) -> [u8; 13] {
    let mut flags = 0;
    if has_audio {
        flags |= FLAG_AUDIO;
    }
    if has_video {
        flags |= FLAG_VIDEO;
    }
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One complete FLV tag: 11-byte header, body, 4-byte PreviousTagSize, in one allocation.
///
/// The timestamp's upper byte goes into the extension byte, so timestamps past 4.6 hours
/// (2^24 ms) survive. A body over 16 MiB cannot be described by the 24-bit size field; RTMP
/// message lengths are 24-bit too, so no publisher can produce one, but if it happens the
/// body is truncated so the byte stream at least stays parseable.
pub fn encode_tag(tag_type: u8, timestamp_ms: u32, body: &[u8]) -> Bytes {
    let body = if body.len() > MAX_TAG_BODY {
        log::error!(
            "FLV tag body of {} bytes exceeds the 24-bit size field; truncating",
            body.len()
        );
        &body[..MAX_TAG_BODY]
    } else {
        body
    };
    let len = body.len() as u32;
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + body.len() + PREVIOUS_TAG_SIZE_LEN);
    out.put_u8(tag_type);
    out.put_uint(u64::from(len), 3);
    out.put_uint(u64::from(timestamp_ms & 0x00ff_ffff), 3);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_uint(0, 3); // stream id
    out.put_slice(body);
    out.put_u32(TAG_HEADER_LEN as u32 + len);
    out.freeze()
}

/// The header of an FLV file/stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
    /// DataOffset: where the first PreviousTagSize starts (9 for version 1).
    pub header_len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data (the filter/reserved bits are masked off).
    pub tag_type: u8,
    pub timestamp: u32,
    pub body: Bytes,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FlvError {
    #[error("stream does not start with the \"FLV\" signature")]
    BadSignature,
    #[error("FLV header size {0} is smaller than the 9-byte header")]
    BadHeaderSize(u32),
    #[error("PreviousTagSize at byte {offset} is {found}, expected {expected}")]
    PreviousTagSizeMismatch {
        offset: usize,
        expected: u32,
        found: u32,
    },
}

enum Parsed<T> {
    /// More bytes are needed.
    Incomplete,
    Done {
        value: T,
        consumed: usize,
    },
}

/// Parses the file header and PreviousTagSize0 at the start of `data`.
fn parse_header(data: &[u8]) -> Result<Parsed<FlvHeader>, FlvError> {
    let sig_len = data.len().min(3);
    if data[..sig_len] != b"FLV"[..sig_len] {
        return Err(FlvError::BadSignature);
    }
    if data.len() < 9 {
        return Ok(Parsed::Incomplete);
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]);
    if header_len < 9 {
        return Err(FlvError::BadHeaderSize(header_len));
    }
    let Some(end) = (header_len as usize).checked_add(PREVIOUS_TAG_SIZE_LEN) else {
        return Err(FlvError::BadHeaderSize(header_len));
    };
    let Some(prev) = data.get(end - PREVIOUS_TAG_SIZE_LEN..end) else {
        return Ok(Parsed::Incomplete);
    };
    let prev = u32::from_be_bytes([prev[0], prev[1], prev[2], prev[3]]);
    if prev != 0 {
        return Err(FlvError::PreviousTagSizeMismatch {
            offset: end - PREVIOUS_TAG_SIZE_LEN,
            expected: 0,
            found: prev,
        });
    }
    Ok(Parsed::Done {
        value: FlvHeader {
            version: data[3],
            has_audio: data[4] & FLAG_AUDIO != 0,
            has_video: data[4] & FLAG_VIDEO != 0,
            header_len,
        },
        consumed: end,
    })
}

/// The tag type, timestamp and body range of the tag at the start of `data`, with its
/// trailing PreviousTagSize checked. `base` is only used for error offsets.
fn parse_tag(
    data: &[u8],
    base: usize,
) -> Result<Parsed<(u8, u32, std::ops::Range<usize>)>, FlvError> {
    if data.len() < TAG_HEADER_LEN {
        return Ok(Parsed::Incomplete);
    }
    let tag_type = data[0] & 0x1f;
    let size = u32::from_be_bytes([0, data[1], data[2], data[3]]);
    let timestamp = u32::from_be_bytes([data[7], data[4], data[5], data[6]]);
    let body_end = TAG_HEADER_LEN + size as usize;
    let end = body_end + PREVIOUS_TAG_SIZE_LEN;
    let Some(prev) = data.get(body_end..end) else {
        return Ok(Parsed::Incomplete);
    };
    let prev = u32::from_be_bytes([prev[0], prev[1], prev[2], prev[3]]);
    let expected = TAG_HEADER_LEN as u32 + size;
    if prev != expected {
        return Err(FlvError::PreviousTagSizeMismatch {
            offset: base + body_end,
            expected,
            found: prev,
        });
    }
    Ok(Parsed::Done {
        value: (tag_type, timestamp, TAG_HEADER_LEN..body_end),
        consumed: end,
    })
}

/// Parses every complete tag in `data`.
///
/// `data` is either the start of an FLV stream (beginning with its 13-byte header, which is
/// then returned) or a run of tags that follows a header already consumed. A trailing partial
/// tag is left unparsed: the returned count says how many bytes were consumed, so a caller
/// can keep the rest for later. An incomplete header consumes nothing.
pub fn parse_tags(data: &[u8]) -> Result<(Option<FlvHeader>, Vec<FlvTag>, usize), FlvError> {
    let mut pos = 0;
    let mut header = None;
    // Tag types are small numbers, never 'F' (0x46), so the signature is unambiguous.
    if data.is_empty() || data[0] == b'F' {
        match parse_header(data)? {
            Parsed::Incomplete => return Ok((None, Vec::new(), 0)),
            Parsed::Done { value, consumed } => {
                header = Some(value);
                pos = consumed;
            }
        }
    }
    let mut tags = Vec::new();
    while let Parsed::Done { value, consumed } = parse_tag(&data[pos..], pos)? {
        let (tag_type, timestamp, range) = value;
        tags.push(FlvTag {
            tag_type,
            timestamp,
            body: Bytes::copy_from_slice(&data[pos + range.start..pos + range.end]),
        });
        pos += consumed;
    }
    Ok((header, tags, pos))
}

/// Incremental FLV reader: feed it bytes as they arrive, take out complete tags.
///
/// Tag bodies are slices of the reader's buffer, not copies.
#[derive(Debug, Default)]
pub struct FlvReader {
    buffer: BytesMut,
    header: Option<FlvHeader>,
    /// Set after an error: the stream position is lost, so no further tags are produced.
    failed: Option<FlvError>,
}

impl FlvReader {
    /// A reader for a stream that starts with the FLV file header.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The file header, once it has been read.
    pub fn header(&self) -> Option<&FlvHeader> {
        self.header.as_ref()
    }

    /// Bytes received but not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete tag, `Ok(None)` if more bytes are needed. After an error every call
    /// returns the same error.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.next_tag_inner();
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn next_tag_inner(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.header.is_none() {
            match parse_header(&self.buffer)? {
                Parsed::Incomplete => return Ok(None),
                Parsed::Done { value, consumed } => {
                    self.header = Some(value);
                    let _ = self.buffer.split_to(consumed);
                }
            }
        }
        match parse_tag(&self.buffer, 0)? {
            Parsed::Incomplete => Ok(None),
            Parsed::Done { value, consumed } => {
                let (tag_type, timestamp, range) = value;
                let mut tag = self.buffer.split_to(consumed);
                tag.truncate(range.end);
                let body = tag.split_off(range.start).freeze();
                Ok(Some(FlvTag {
                    tag_type,
                    timestamp,
                    body,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut out = FLV_HEADER_AV.to_vec();
        for (t, ts, body) in tags {
            out.extend_from_slice(&encode_tag(*t, *ts, body));
        }
        out
    }

    #[test]
    fn the_av_header_is_the_canonical_13_bytes() {
        assert_eq!(
            FLV_HEADER_AV,
            [0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 0x09, 0, 0, 0, 0]
        );
        assert_eq!(file_header(true, false)[4], 0x04);
        assert_eq!(file_header(false, true)[4], 0x01);
        assert_eq!(file_header(false, false)[4], 0x00);
    }

    #[test]
    fn a_tag_has_header_body_and_previous_tag_size() {
        let tag = encode_tag(TAG_VIDEO, 0x0102_0304, &[0xaa, 0xbb, 0xcc]);
        assert_eq!(
            &tag[..],
            &[
                9, 0, 0, 3, // type, size
                0x02, 0x03, 0x04, 0x01, // timestamp low 24 bits, then the upper byte
                0, 0, 0, // stream id
                0xaa, 0xbb, 0xcc, // body
                0, 0, 0, 14, // PreviousTagSize = 11 + 3
            ][..]
        );
    }

    #[test]
    fn an_empty_body_still_makes_a_well_formed_tag() {
        let tag = encode_tag(TAG_SCRIPT, 0, &[]);
        assert_eq!(tag.len(), 15);
        assert_eq!(&tag[11..], &[0, 0, 0, 11]);
    }

    #[test]
    fn tags_round_trip_through_parse_tags() {
        let data = stream(&[
            (TAG_SCRIPT, 0, b"meta"),
            (TAG_VIDEO, 0, &[0x17, 0]),
            (TAG_AUDIO, 0xffff_fffe, &[0xaf, 1, 2]),
        ]);
        let (header, tags, consumed) = parse_tags(&data).unwrap();
        let header = header.unwrap();
        assert!(header.has_audio && header.has_video);
        assert_eq!((header.version, header.header_len), (1, 9));
        assert_eq!(consumed, data.len());
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].tag_type, TAG_SCRIPT);
        assert_eq!(&tags[0].body[..], b"meta");
        assert_eq!(tags[2].timestamp, 0xffff_fffe);
        assert_eq!(&tags[2].body[..], &[0xaf, 1, 2]);
    }

    #[test]
    fn parse_tags_stops_before_a_partial_tag() {
        let data = stream(&[(TAG_VIDEO, 1, &[1, 2, 3]), (TAG_VIDEO, 2, &[4, 5, 6])]);
        let first_end = 13 + 11 + 3 + 4;
        for cut in first_end..data.len() {
            let (header, tags, consumed) = parse_tags(&data[..cut]).unwrap();
            assert!(header.is_some());
            assert_eq!(tags.len(), 1, "cut at {cut}");
            assert_eq!(consumed, first_end);
        }
        // The rest parses on its own as a headerless run of tags.
        let (header, tags, consumed) = parse_tags(&data[first_end..]).unwrap();
        assert!(header.is_none());
        assert_eq!(tags[0].timestamp, 2);
        assert_eq!(consumed, data.len() - first_end);
    }

    #[test]
    fn an_incomplete_header_consumes_nothing() {
        for cut in 0..13 {
            assert_eq!(
                parse_tags(&FLV_HEADER_AV[..cut]).unwrap(),
                (None, vec![], 0)
            );
        }
    }

    #[test]
    fn corrupt_streams_are_errors() {
        assert_eq!(parse_tags(b"FLX\x01"), Err(FlvError::BadSignature));
        let mut data = FLV_HEADER_AV.to_vec();
        data[8] = 5;
        assert_eq!(parse_tags(&data), Err(FlvError::BadHeaderSize(5)));
        let mut data = stream(&[(TAG_VIDEO, 1, &[1, 2, 3])]);
        let last = data.len() - 1;
        data[last] = 99;
        assert_eq!(
            parse_tags(&data),
            Err(FlvError::PreviousTagSizeMismatch {
                offset: 13 + 14,
                expected: 14,
                found: 99
            })
        );
    }

    #[test]
    fn a_longer_header_is_skipped_by_its_declared_size() {
        let mut data = vec![
            b'F', b'L', b'V', 1, 5, 0, 0, 0, 12, 0xee, 0xee, 0xee, 0, 0, 0, 0,
        ];
        data.extend_from_slice(&encode_tag(TAG_AUDIO, 5, &[1]));
        let (header, tags, _) = parse_tags(&data).unwrap();
        assert_eq!(header.unwrap().header_len, 12);
        assert_eq!(tags[0].timestamp, 5);
    }

    #[test]
    fn the_reader_returns_tags_as_bytes_trickle_in() {
        let data = stream(&[
            (TAG_SCRIPT, 0, b"m"),
            (TAG_VIDEO, 40, &[0x17, 1, 0, 0, 0]),
            (TAG_AUDIO, 41, &[]),
        ]);
        let mut reader = FlvReader::new();
        let mut tags = Vec::new();
        for byte in &data {
            reader.push(std::slice::from_ref(byte));
            while let Some(tag) = reader.next_tag().unwrap() {
                tags.push(tag);
            }
        }
        assert!(reader.header().unwrap().has_video);
        assert_eq!(reader.buffered(), 0);
        let summary: Vec<_> = tags
            .iter()
            .map(|t| (t.tag_type, t.timestamp, t.body.len()))
            .collect();
        assert_eq!(summary, vec![(18, 0, 1), (9, 40, 5), (8, 41, 0)]);
        assert_eq!(&tags[1].body[..], &[0x17, 1, 0, 0, 0]);
    }

    #[test]
    fn the_reader_stays_failed_after_an_error() {
        let mut reader = FlvReader::new();
        reader.push(b"XYZ");
        assert_eq!(reader.next_tag(), Err(FlvError::BadSignature));
        reader.push(&FLV_HEADER_AV);
        assert_eq!(reader.next_tag(), Err(FlvError::BadSignature));
    }
}
