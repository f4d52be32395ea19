//! A live HLS media playlist as a sliding window of in-memory segments, written with `m3u8-rs`.
//!
//! The model keeps what RFC 8216 asks of a live playlist: `EXT-X-MEDIA-SEQUENCE` and
//! `EXT-X-DISCONTINUITY-SEQUENCE` that only grow, a target duration that covers every segment
//! and never shrinks, `EXT-X-PROGRAM-DATE-TIME` on each segment and `EXT-X-ENDLIST` once the
//! stream ended. URIs are left to the caller (they carry the viewer's session).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaSegment, Resolution, VariantStream};

/// EXTINF needs version 3 (decimal durations); nothing else we write needs more.
const PLAYLIST_VERSION: usize = 3;
const EXTINF_DECIMALS: usize = 3;
/// Program date times follow segment durations until they drift this far from the wall clock.
const MAX_DATE_DRIFT: Duration = Duration::from_secs(1);

/// One segment of the window.
#[derive(Debug)]
pub struct Segment {
    pub sequence: u64,
    pub duration_ms: u32,
    pub discontinuity: bool,
    pub program_date_time: SystemTime,
    pub data: Bytes,
    pub video_bytes: u64,
    pub audio_bytes: u64,
}

/// What a new segment brings; the playlist numbers and dates it.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub duration_ms: u32,
    pub discontinuity: bool,
    pub data: Bytes,
    pub video_bytes: u64,
    pub audio_bytes: u64,
}

/// Cheap to clone: segments are shared.
#[derive(Debug, Clone)]
pub struct LivePlaylist {
    window: usize,
    segments: VecDeque<Arc<Segment>>,
    next_sequence: u64,
    discontinuity_sequence: u64,
    target_duration: u64,
    ended: bool,
}

fn ceil_secs(ms: u32) -> u64 {
    u64::from(ms).div_ceil(1000).max(1)
}

impl LivePlaylist {
    /// `window` segments are listed; the first gets `first_sequence`. The target duration
    /// starts at the configured fragment and grows if a segment is longer.
    pub fn new(window: usize, first_sequence: u64, fragment: Duration) -> LivePlaylist {
        LivePlaylist {
            window: window.max(1),
            segments: VecDeque::new(),
            next_sequence: first_sequence,
            discontinuity_sequence: 0,
            target_duration: ceil_secs(u32::try_from(fragment.as_millis()).unwrap_or(u32::MAX)),
            ended: false,
        }
    }

    /// Appends a segment (dropping the oldest beyond the window) and returns its sequence
    /// number. `now` is when its last frame arrived. A new segment also reopens an ended
    /// playlist: the stream is live again.
    pub fn push(&mut self, segment: NewSegment, now: SystemTime) -> u64 {
        let duration = Duration::from_millis(u64::from(segment.duration_ms));
        let measured = now.checked_sub(duration).unwrap_or(now);
        let program_date_time = match self.segments.back() {
            Some(prev) if !segment.discontinuity => {
                let follows =
                    prev.program_date_time + Duration::from_millis(u64::from(prev.duration_ms));
                let drift = match follows.duration_since(measured) {
                    Ok(ahead) => ahead,
                    Err(behind) => behind.duration(),
                };
                if drift <= MAX_DATE_DRIFT {
                    follows
                } else {
                    measured
                }
            }
            _ => measured,
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.target_duration = self.target_duration.max(ceil_secs(segment.duration_ms));
        self.segments.push_back(Arc::new(Segment {
            sequence,
            duration_ms: segment.duration_ms,
            discontinuity: segment.discontinuity,
            program_date_time,
            data: segment.data,
            video_bytes: segment.video_bytes,
            audio_bytes: segment.audio_bytes,
        }));
        while self.segments.len() > self.window {
            if let Some(gone) = self.segments.pop_front() {
                if gone.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        self.ended = false;
        sequence
    }

    /// The stream ended (`#EXT-X-ENDLIST`), or resumed.
    pub fn set_ended(&mut self, ended: bool) {
        self.ended = ended;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.segments.iter()
    }

    /// A segment still in the window.
    pub fn segment(&self, sequence: u64) -> Option<&Arc<Segment>> {
        let first = self.segments.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    pub fn media_sequence(&self) -> u64 {
        self.segments
            .front()
            .map_or(self.next_sequence, |s| s.sequence)
    }

    /// The sequence number the next segment will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// Bytes held by the window.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|s| s.data.len()).sum()
    }

    /// The highest bit rate of any segment in the window (BANDWIDTH of a variant).
    pub fn peak_bandwidth(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.data.len() as u64 * 8 * 1000 / u64::from(s.duration_ms.max(1)))
            .max()
            .unwrap_or(0)
    }

    /// The average bit rate over the window.
    pub fn average_bandwidth(&self) -> u64 {
        let bytes: u64 = self.segments.iter().map(|s| s.data.len() as u64).sum();
        let ms: u64 = self.segments.iter().map(|s| u64::from(s.duration_ms)).sum();
        bytes * 8 * 1000 / ms.max(1)
    }

    /// The media playlist, with each segment's URI made by `uri`.
    pub fn render(&self, uri: impl Fn(&Segment) -> String) -> Vec<u8> {
        m3u8_rs::WRITE_OPT_FLOAT_PRECISION.store(EXTINF_DECIMALS, Ordering::Relaxed);
        let playlist = MediaPlaylist {
            version: Some(PLAYLIST_VERSION),
            target_duration: self.target_duration,
            media_sequence: self.media_sequence(),
            discontinuity_sequence: self.discontinuity_sequence,
            end_list: self.ended,
            segments: self
                .segments
                .iter()
                .map(|s| MediaSegment {
                    uri: uri(s),
                    duration: s.duration_ms as f32 / 1000.0,
                    discontinuity: s.discontinuity,
                    program_date_time: Some(
                        chrono::DateTime::<chrono::Utc>::from(s.program_date_time).fixed_offset(),
                    ),
                    ..MediaSegment::default()
                })
                .collect(),
            ..MediaPlaylist::default()
        };
        let mut out = Vec::with_capacity(128 + 160 * self.segments.len());
        // Writing into a Vec cannot fail.
        let _ = playlist.write_to(&mut out);
        out
    }
}

/// What a master playlist says about its single variant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
}

/// A master playlist with one variant: how a viewer gets a session-specific media playlist URI.
pub fn render_master(variant: &Variant) -> Vec<u8> {
    let playlist = MasterPlaylist {
        version: Some(PLAYLIST_VERSION),
        variants: vec![VariantStream {
            uri: variant.uri.clone(),
            // BANDWIDTH is mandatory; a variant with an unknown rate still needs a number.
            bandwidth: variant.bandwidth.max(1),
            average_bandwidth: variant.average_bandwidth,
            codecs: variant.codecs.clone(),
            resolution: variant.resolution.map(|(w, h)| Resolution {
                width: u64::from(w),
                height: u64::from(h),
            }),
            ..VariantStream::default()
        }],
        ..MasterPlaylist::default()
    };
    let mut out = Vec::with_capacity(256);
    let _ = playlist.write_to(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use m3u8_rs::Playlist;

    fn seg(duration_ms: u32, discontinuity: bool) -> NewSegment {
        NewSegment {
            duration_ms,
            discontinuity,
            data: Bytes::from(vec![0x47; 188 * 10]),
            video_bytes: 1500,
            audio_bytes: 380,
        }
    }

    fn parse(text: &[u8]) -> MediaPlaylist {
        match m3u8_rs::parse_playlist_res(text).unwrap() {
            Playlist::MediaPlaylist(p) => p,
            Playlist::MasterPlaylist(_) => panic!("expected a media playlist"),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn the_window_slides_and_the_sequence_grows() {
        let mut pl = LivePlaylist::new(3, 1, Duration::from_secs(2));
        for i in 0..5 {
            pl.push(seg(2000, false), at(2 * i + 2));
        }
        assert_eq!(pl.len(), 3);
        assert_eq!(pl.media_sequence(), 3);
        assert!(pl.segment(2).is_none());
        assert_eq!(pl.segment(5).map(|s| s.sequence), Some(5));
        assert!(pl.segment(6).is_none());
        let text = pl.render(|s| format!("room/{}.ts", s.sequence));
        let parsed = parse(&text);
        assert_eq!(parsed.media_sequence, 3);
        assert_eq!(parsed.target_duration, 2);
        assert_eq!(parsed.version, Some(3));
        let uris: Vec<&str> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["room/3.ts", "room/4.ts", "room/5.ts"]);
        assert!(!parsed.end_list);
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("#EXTINF:2.000,"), "{text}");
    }

    #[test]
    fn target_duration_is_the_ceiling_of_the_longest_segment_and_never_shrinks() {
        let mut pl = LivePlaylist::new(2, 1, Duration::from_secs(2));
        pl.push(seg(2001, false), at(2));
        assert_eq!(pl.target_duration(), 3);
        pl.push(seg(8340, false), at(10));
        assert_eq!(pl.target_duration(), 9);
        pl.push(seg(2000, false), at(12));
        pl.push(seg(2000, false), at(14));
        assert_eq!(parse(&pl.render(|_| "x.ts".into())).target_duration, 9);
    }

    #[test]
    fn program_date_times_follow_durations_and_reanchor_on_drift() {
        let mut pl = LivePlaylist::new(6, 1, Duration::from_secs(2));
        pl.push(seg(2000, false), at(2));
        // Arrives 300 ms late: still follows on from the first.
        pl.push(seg(2000, false), at(4) + Duration::from_millis(300));
        // 5 s late (the publisher stalled): re-anchored on the wall clock.
        pl.push(seg(2000, false), at(11));
        let dates: Vec<SystemTime> = pl.segments().map(|s| s.program_date_time).collect();
        assert_eq!(dates, vec![at(0), at(2), at(9)]);
        let parsed = parse(&pl.render(|_| "x.ts".into()));
        assert!(parsed
            .segments
            .iter()
            .all(|s| s.program_date_time.is_some()));
    }

    #[test]
    fn discontinuities_are_tagged_and_counted_when_they_leave() {
        let mut pl = LivePlaylist::new(2, 1, Duration::from_secs(2));
        pl.push(seg(2000, false), at(2));
        pl.push(seg(2000, true), at(4));
        let parsed = parse(&pl.render(|_| "x.ts".into()));
        assert!(parsed.segments[1].discontinuity);
        assert_eq!(parsed.discontinuity_sequence, 0);
        pl.push(seg(2000, false), at(6));
        pl.push(seg(2000, false), at(8));
        let parsed = parse(&pl.render(|_| "x.ts".into()));
        assert_eq!(parsed.discontinuity_sequence, 1);
        assert!(parsed.segments.iter().all(|s| !s.discontinuity));
    }

    #[test]
    fn an_ended_playlist_has_endlist_until_new_segments_come() {
        let mut pl = LivePlaylist::new(3, 1, Duration::from_secs(1));
        pl.push(seg(1000, false), at(1));
        pl.set_ended(true);
        assert!(parse(&pl.render(|_| "x.ts".into())).end_list);
        pl.push(seg(1000, true), at(30));
        assert!(!pl.is_ended());
        assert!(!parse(&pl.render(|_| "x.ts".into())).end_list);
    }

    #[test]
    fn bandwidth_is_measured_over_the_window() {
        let mut pl = LivePlaylist::new(3, 1, Duration::from_secs(1));
        assert_eq!(pl.peak_bandwidth(), 0);
        pl.push(seg(1000, false), at(1));
        assert_eq!(pl.peak_bandwidth(), 1880 * 8);
        pl.push(seg(2000, false), at(3));
        assert_eq!(pl.peak_bandwidth(), 1880 * 8);
        assert_eq!(pl.average_bandwidth(), 1880 * 2 * 8 / 3);
    }

    #[test]
    fn the_master_playlist_points_at_the_variant() {
        let text = render_master(&Variant {
            uri: "room.m3u8?s=abc".into(),
            bandwidth: 900_000,
            average_bandwidth: Some(800_000),
            codecs: Some("avc1.42c00d,mp4a.40.2".into()),
            resolution: Some((640, 360)),
        });
        match m3u8_rs::parse_playlist_res(&text).unwrap() {
            Playlist::MasterPlaylist(m) => {
                let v = &m.variants[0];
                assert_eq!(v.uri, "room.m3u8?s=abc");
                assert_eq!(v.bandwidth, 900_000);
                assert_eq!(v.codecs.as_deref(), Some("avc1.42c00d,mp4a.40.2"));
                assert_eq!(v.resolution.map(|r| (r.width, r.height)), Some((640, 360)));
            }
            Playlist::MediaPlaylist(_) => panic!("expected a master playlist"),
        }
    }
}
