//! Self-contained RTMP chunk encoding of one message.
//!
//! rml_rtmp's `ChunkSerializer` compresses headers against the previous message on each chunk
//! stream, so its output is only valid on the connection that produced it. Media fanned out to
//! many viewers is encoded once here instead: every message starts with a type-0 (full) header,
//! so the same bytes are valid on any connection with the same outgoing chunk size.

use bytes::{BufMut, Bytes, BytesMut};

/// Timestamps at or above this go in the 4-byte extended timestamp field.
const EXTENDED_TIMESTAMP_MARKER: u32 = 0x00ff_ffff;
/// Message lengths are 24-bit.
pub const MAX_MESSAGE_LEN: usize = 0x00ff_ffff;
/// Largest chunk stream id a 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65599;
/// Largest chunk size RTMP allows (the top bit of SetChunkSize must be 0).
const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;

const FMT_FULL: u8 = 0;
const FMT_CONTINUATION: u8 = 3;

fn basic_header_len(csid: u32) -> usize {
    match csid {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid - 64;
            out.put_u8(fmt | 1);
            out.put_u8((id & 0xff) as u8);
            out.put_u8((id >> 8) as u8);
        }
    }
}

/// Encodes one RTMP message as a type-0 chunk followed by type-3 continuation chunks.
///
/// `csid` must be in 2..=65599 and the payload at most 16 MiB - 1; these are programming
/// errors (caught by debug assertions) and are clamped/truncated in release builds so the
/// output is at least well-formed. A `chunk_size` of 0 is treated as 1.
///
/// When the timestamp needs the extended field it is repeated in every continuation chunk,
/// which is what librtmp, ffmpeg and rml_rtmp expect.
pub fn encode_message(
    csid: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: u32,
) -> Bytes {
    debug_assert!((2..=MAX_CSID).contains(&csid), "invalid csid {csid}");
    debug_assert!(payload.len() <= MAX_MESSAGE_LEN, "RTMP message too long");
    let csid = csid.clamp(2, MAX_CSID);
    let payload = &payload[..payload.len().min(MAX_MESSAGE_LEN)];
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK_SIZE) as usize;

    let extended = timestamp >= EXTENDED_TIMESTAMP_MARKER;
    let ext_len = if extended { 4 } else { 0 };
    let bh_len = basic_header_len(csid);
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    let total = bh_len + 11 + ext_len + payload.len() + (chunks - 1) * (bh_len + ext_len);

    let mut out = BytesMut::with_capacity(total);
    put_basic_header(&mut out, FMT_FULL, csid);
    out.put_uint(u64::from(timestamp.min(EXTENDED_TIMESTAMP_MARKER)), 3);
    out.put_uint(payload.len() as u64, 3);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    for (i, chunk) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            put_basic_header(&mut out, FMT_CONTINUATION, csid);
            if extended {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(chunk);
    }
    debug_assert_eq!(out.len(), total);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::chunk_io::ChunkDeserializer;
    use rml_rtmp::messages::MessagePayload;

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn decode_all(bytes: &[u8], chunk_size: u32) -> Vec<MessagePayload> {
        let mut d = ChunkDeserializer::new();
        d.set_max_chunk_size(chunk_size as usize).unwrap();
        let mut out = Vec::new();
        let mut input = bytes;
        while let Some(msg) = d.get_next_message(input).unwrap() {
            out.push(msg);
            input = &[];
        }
        out
    }

    fn check_round_trip(csid: u32, timestamp: u32, len: usize, chunk_size: u32) {
        let data = payload(len);
        let bytes = encode_message(csid, 9, 1, timestamp, &data, chunk_size);
        let msgs = decode_all(&bytes, chunk_size);
        assert_eq!(
            msgs.len(),
            1,
            "csid {csid} ts {timestamp} len {len} cs {chunk_size}"
        );
        let m = &msgs[0];
        assert_eq!(m.type_id, 9);
        assert_eq!(m.message_stream_id, 1);
        assert_eq!(m.timestamp.value, timestamp);
        assert_eq!(&m.data[..], &data[..]);
    }

    #[test]
    fn messages_smaller_equal_and_larger_than_the_chunk_size_decode_with_rml_rtmp() {
        for len in [0, 1, 127, 128, 129, 256, 1000, 128 * 5 + 3] {
            check_round_trip(9, 1234, len, 128);
        }
        for len in [4095, 4096, 4097, 4096 * 3, 4096 * 3 + 1, 100_000] {
            check_round_trip(9, 40, len, 4096);
        }
    }

    #[test]
    fn extended_timestamps_are_repeated_in_every_chunk() {
        for ts in [0x00ff_fffe, 0x00ff_ffff, 0x0100_0000, 0xffff_ffff] {
            for len in [0, 10, 128, 129, 1000] {
                check_round_trip(8, ts, len, 128);
            }
        }
        let bytes = encode_message(8, 8, 1, 0x0100_0000, &payload(300), 128);
        // 1 + 11 + 4 header, then two continuations of 1 + 4 each.
        assert_eq!(bytes.len(), 16 + 300 + 2 * 5);
        assert_eq!(&bytes[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&bytes[12..16], &0x0100_0000u32.to_be_bytes());
        let second = 16 + 128;
        assert_eq!(bytes[second], 0xc8);
        assert_eq!(
            &bytes[second + 1..second + 5],
            &0x0100_0000u32.to_be_bytes()
        );
    }

    #[test]
    fn the_header_layout_is_exact() {
        let bytes = encode_message(7, 18, 0x0102_0304, 0x00ab_cdef, &[1, 2, 3], 128);
        assert_eq!(
            &bytes[..],
            &[
                0x07, // fmt 0, csid 7
                0xab, 0xcd, 0xef, // timestamp
                0, 0, 3,  // length
                18, // type
                0x04, 0x03, 0x02, 0x01, // stream id, little-endian
                1, 2, 3,
            ][..]
        );
    }

    #[test]
    fn two_and_three_byte_basic_headers_decode() {
        for csid in [2, 63, 64, 65, 319, 320, 1000, MAX_CSID] {
            check_round_trip(csid, 10, 300, 128);
        }
        let two = encode_message(64, 9, 1, 0, &[], 128);
        assert_eq!(&two[..2], &[0x00, 0x00]);
        let three = encode_message(320, 9, 1, 0, &[], 128);
        assert_eq!(&three[..3], &[0x01, 0x00, 0x01]);
        let continuation = encode_message(320, 9, 1, 0, &payload(129), 128);
        assert_eq!(
            &continuation[3 + 11 + 128..3 + 11 + 128 + 3],
            &[0xc1, 0x00, 0x01]
        );
    }

    #[test]
    fn independently_encoded_messages_on_one_csid_decode_back_to_back() {
        let a = payload(5000);
        let b = payload(10);
        let c = payload(4096);
        let mut stream = Vec::new();
        stream.extend_from_slice(&encode_message(9, 9, 1, 100, &a, 4096));
        stream.extend_from_slice(&encode_message(9, 9, 1, 0x0200_0000, &b, 4096));
        stream.extend_from_slice(&encode_message(9, 8, 3, 50, &c, 4096));
        let msgs = decode_all(&stream, 4096);
        assert_eq!(msgs.len(), 3);
        assert_eq!((msgs[0].timestamp.value, &msgs[0].data[..]), (100, &a[..]));
        assert_eq!(
            (msgs[1].timestamp.value, &msgs[1].data[..]),
            (0x0200_0000, &b[..])
        );
        assert_eq!(msgs[2].timestamp.value, 50);
        assert_eq!((msgs[2].type_id, msgs[2].message_stream_id), (8, 3));
        assert_eq!(&msgs[2].data[..], &c[..]);
    }

    #[test]
    fn the_output_is_sized_exactly() {
        for (len, cs) in [(0, 128), (128, 128), (129, 128), (9000, 4096)] {
            let bytes = encode_message(9, 9, 1, 0, &payload(len), cs);
            let chunks = (len as u32).div_ceil(cs).max(1) as usize;
            assert_eq!(bytes.len(), 12 + len + (chunks - 1));
        }
    }

    #[test]
    fn a_zero_chunk_size_does_not_hang() {
        let bytes = encode_message(9, 9, 1, 0, &[1, 2, 3], 0);
        assert_eq!(decode_all(&bytes, 1)[0].data.as_ref(), &[1, 2, 3]);
    }
}
