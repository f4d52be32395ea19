//! AMF0 bodies the server writes itself: `onMetaData` script data and status commands.
//!
//! rml_amf0 serializes objects from a `HashMap`, so its key order changes from run to run, and
//! it cannot write an ECMA array, which is what FLV files and flv.js expect for `onMetaData`.
//! The handful of AMF0 types needed here are therefore written directly; rml_amf0 is still the
//! reader the tests check against.

use bytes::{BufMut, Bytes, BytesMut};
use rml_rtmp::sessions::StreamMetadata;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const LONG_STRING: u8 = 0x0c;

/// A value as written by this module.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Number(f64),
    Boolean(bool),
    String(&'a str),
    Null,
}

fn put_value(out: &mut BytesMut, value: &Value<'_>) {
    match *value {
        Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(n);
        }
        Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            // Descriptions can echo client-supplied names of any length.
            Err(_) => {
                out.put_u8(LONG_STRING);
                out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                out.put_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
            }
        },
        Value::Null => out.put_u8(NULL),
    }
}

/// Property names are UTF-8 with a u16 length and no type marker. All names written here are
/// short constants.
fn put_key(out: &mut BytesMut, key: &str) {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_slice(&key.as_bytes()[..usize::from(len)]);
}

fn put_properties(out: &mut BytesMut, properties: &[(&str, Value<'_>)]) {
    for (key, value) in properties {
        put_key(out, key);
        put_value(out, value);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

fn put_object(out: &mut BytesMut, properties: &[(&str, Value<'_>)]) {
    out.put_u8(OBJECT);
    put_properties(out, properties);
}

fn put_ecma_array(out: &mut BytesMut, properties: &[(&str, Value<'_>)]) {
    out.put_u8(ECMA_ARRAY);
    out.put_u32(u32::try_from(properties.len()).unwrap_or(u32::MAX));
    put_properties(out, properties);
}

/// `name, transaction id, null, {properties}`: the shape of every status command.
fn command(name: &str, transaction_id: f64, properties: &[(&str, Value<'_>)]) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    put_value(&mut out, &Value::String(name));
    put_value(&mut out, &Value::Number(transaction_id));
    put_value(&mut out, &Value::Null);
    put_object(&mut out, properties);
    out.freeze()
}

/// `onMetaData` script data (without `@setDataFrame`) with the fields the publisher gave.
pub fn metadata_body(metadata: &StreamMetadata) -> Bytes {
    let number = |v: Option<u32>| v.map(|n| Value::Number(f64::from(n)));
    // An f32 such as 29.97 widens to 29.969999313354492; players display this value, so
    // round it back to what the encoder meant.
    let frame_rate = metadata
        .video_frame_rate
        .map(|f| Value::Number((f64::from(f) * 1000.0).round() / 1000.0));
    let fields = [
        ("width", number(metadata.video_width)),
        ("height", number(metadata.video_height)),
        ("videocodecid", number(metadata.video_codec_id)),
        ("videodatarate", number(metadata.video_bitrate_kbps)),
        ("framerate", frame_rate),
        ("audiocodecid", number(metadata.audio_codec_id)),
        ("audiodatarate", number(metadata.audio_bitrate_kbps)),
        ("audiosamplerate", number(metadata.audio_sample_rate)),
        ("audiochannels", number(metadata.audio_channels)),
        ("stereo", metadata.audio_is_stereo.map(Value::Boolean)),
        ("encoder", metadata.encoder.as_deref().map(Value::String)),
    ];
    let present: Vec<(&str, Value<'_>)> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let mut out = BytesMut::with_capacity(256);
    put_value(&mut out, &Value::String("onMetaData"));
    put_ecma_array(&mut out, &present);
    out.freeze()
}

/// `onStatus(0, null, {level, code, description})`.
pub fn on_status_body(code: &str, description: &str, level: &str) -> Bytes {
    command(
        "onStatus",
        0.0,
        &[
            ("level", Value::String(level)),
            ("code", Value::String(code)),
            ("description", Value::String(description)),
        ],
    )
}

/// `_error(transaction_id, null, {level: "error", code, description})`, the reply to a
/// command that failed.
pub fn error_body(transaction_id: f64, code: &str, description: &str) -> Bytes {
    command(
        "_error",
        transaction_id,
        &[
            ("level", Value::String("error")),
            ("code", Value::String(code)),
            ("description", Value::String(description)),
        ],
    )
}

/// `onFCPublish(0, null, {code: "NetStream.Publish.Start", description: stream_key})`.
/// Some encoders (older FMLE-style ones) wait for it after `FCPublish` before publishing.
pub fn fc_publish_status_body(stream_key: &str) -> Bytes {
    command(
        "onFCPublish",
        0.0,
        &[
            ("code", Value::String("NetStream.Publish.Start")),
            ("description", Value::String(stream_key)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::rml_amf0::{deserialize, Amf0Value};
    use std::collections::HashMap;

    fn decode(body: &[u8]) -> Vec<Amf0Value> {
        deserialize(&mut std::io::Cursor::new(body)).unwrap()
    }

    fn props(value: &Amf0Value) -> HashMap<String, Amf0Value> {
        value.clone().get_object_properties().unwrap()
    }

    fn full_metadata() -> StreamMetadata {
        let mut m = StreamMetadata::new();
        m.video_width = Some(1920);
        m.video_height = Some(1080);
        m.video_codec_id = Some(7);
        m.video_bitrate_kbps = Some(4500);
        m.video_frame_rate = Some(29.97);
        m.audio_codec_id = Some(10);
        m.audio_bitrate_kbps = Some(160);
        m.audio_sample_rate = Some(48000);
        m.audio_channels = Some(2);
        m.audio_is_stereo = Some(true);
        m.encoder = Some("obs-output module (libobs version 30.0.0)".into());
        m
    }

    #[test]
    fn metadata_is_an_ecma_array_that_rml_amf0_reads_back() {
        let body = metadata_body(&full_metadata());
        // "onMetaData" string, then the ECMA array marker and its 11 entries.
        assert_eq!(&body[..13], b"\x02\x00\x0aonMetaData");
        assert_eq!(body[13], ECMA_ARRAY);
        assert_eq!(&body[14..18], &11u32.to_be_bytes());
        assert_eq!(&body[body.len() - 3..], &[0, 0, OBJECT_END]);

        let values = decode(&body);
        assert_eq!(values.len(), 2);
        assert_eq!(values[0], Amf0Value::Utf8String("onMetaData".into()));
        let p = props(&values[1]);
        assert_eq!(p.len(), 11);
        assert_eq!(p["width"], Amf0Value::Number(1920.0));
        assert_eq!(p["height"], Amf0Value::Number(1080.0));
        assert_eq!(p["videocodecid"], Amf0Value::Number(7.0));
        assert_eq!(p["videodatarate"], Amf0Value::Number(4500.0));
        assert_eq!(p["framerate"], Amf0Value::Number(29.97));
        assert_eq!(p["audiocodecid"], Amf0Value::Number(10.0));
        assert_eq!(p["audiodatarate"], Amf0Value::Number(160.0));
        assert_eq!(p["audiosamplerate"], Amf0Value::Number(48000.0));
        assert_eq!(p["audiochannels"], Amf0Value::Number(2.0));
        assert_eq!(p["stereo"], Amf0Value::Boolean(true));
        assert_eq!(
            p["encoder"],
            Amf0Value::Utf8String("obs-output module (libobs version 30.0.0)".into())
        );
    }

    #[test]
    fn metadata_round_trips_through_stream_metadata() {
        let original = full_metadata();
        let values = decode(&metadata_body(&original));
        let mut parsed = StreamMetadata::new();
        parsed.apply_metadata_values(props(&values[1]));
        assert_eq!(parsed, original);
    }

    #[test]
    fn absent_metadata_fields_are_left_out() {
        let mut m = StreamMetadata::new();
        m.video_width = Some(640);
        m.audio_is_stereo = Some(false);
        let body = metadata_body(&m);
        let p = props(&decode(&body)[1]);
        assert_eq!(p.len(), 2);
        assert_eq!(p["stereo"], Amf0Value::Boolean(false));
        assert_eq!(&body[14..18], &2u32.to_be_bytes());

        let empty = metadata_body(&StreamMetadata::new());
        assert!(props(&decode(&empty)[1]).is_empty());
    }

    #[test]
    fn metadata_field_order_is_stable() {
        let a = metadata_body(&full_metadata());
        let b = metadata_body(&full_metadata());
        assert_eq!(a, b);
        let width_at = a.windows(5).position(|w| w == b"width").unwrap();
        let encoder_at = a.windows(7).position(|w| w == b"encoder").unwrap();
        assert!(width_at < encoder_at);
    }

    #[test]
    fn on_status_is_a_command_with_level_code_and_description() {
        let body = on_status_body(
            "NetStream.Play.Start",
            "Started playing live/movie.",
            "status",
        );
        let values = decode(&body);
        assert_eq!(values[0], Amf0Value::Utf8String("onStatus".into()));
        assert_eq!(values[1], Amf0Value::Number(0.0));
        assert_eq!(values[2], Amf0Value::Null);
        let p = props(&values[3]);
        assert_eq!(p["level"], Amf0Value::Utf8String("status".into()));
        assert_eq!(
            p["code"],
            Amf0Value::Utf8String("NetStream.Play.Start".into())
        );
        assert_eq!(
            p["description"],
            Amf0Value::Utf8String("Started playing live/movie.".into())
        );
        // Object marker first, then "level" as the first key.
        assert_eq!(body[21], OBJECT);
        assert_eq!(&body[22..29], b"\x00\x05level");
    }

    #[test]
    fn error_replies_carry_the_failed_transaction_id() {
        let values = decode(&error_body(
            5.0,
            "NetStream.Publish.BadName",
            "live/x is taken",
        ));
        assert_eq!(values[0], Amf0Value::Utf8String("_error".into()));
        assert_eq!(values[1], Amf0Value::Number(5.0));
        assert_eq!(values[2], Amf0Value::Null);
        let p = props(&values[3]);
        assert_eq!(p["level"], Amf0Value::Utf8String("error".into()));
        assert_eq!(
            p["code"],
            Amf0Value::Utf8String("NetStream.Publish.BadName".into())
        );
        assert_eq!(
            p["description"],
            Amf0Value::Utf8String("live/x is taken".into())
        );
    }

    #[test]
    fn on_fc_publish_names_the_stream_key() {
        let values = decode(&fc_publish_status_body("movie"));
        assert_eq!(values[0], Amf0Value::Utf8String("onFCPublish".into()));
        assert_eq!(values[1], Amf0Value::Number(0.0));
        assert_eq!(values[2], Amf0Value::Null);
        let p = props(&values[3]);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p["code"],
            Amf0Value::Utf8String("NetStream.Publish.Start".into())
        );
        assert_eq!(p["description"], Amf0Value::Utf8String("movie".into()));
    }

    #[test]
    fn strings_longer_than_64k_use_the_long_string_marker() {
        let long = "k".repeat(70_000);
        let body = on_status_body("c", &long, "status");
        let at = body.windows(11).position(|w| w == b"description").unwrap() + 11;
        assert_eq!(body[at], LONG_STRING);
        assert_eq!(&body[at + 1..at + 5], &70_000u32.to_be_bytes());
        assert_eq!(&body[body.len() - 3..], &[0, 0, OBJECT_END]);
    }
}
