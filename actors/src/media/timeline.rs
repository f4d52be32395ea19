//! A channel's timeline: publisher timestamps rebased so that viewers see one monotonic
//! clock even when the publisher changes or restarts.
//!
//! Players (flv.js, ffplay, VLC) stall or drop frames when timestamps jump backwards, and a
//! new publisher, or an encoder restarting inside its session, starts again near zero.
//! Each such discontinuity starts a new segment that continues shortly after the furthest
//! timestamp already sent; within a segment the publisher's own spacing is kept exactly.
//!
//! All arithmetic wraps, as RTMP timestamps do after 2^32 ms (49.7 days), and "after" is
//! judged by the signed wrapping difference.

/// Gap between the end of one segment and the start of the next: about one frame at 30 fps,
/// so the first new frame is not stacked on the previous publisher's last one.
pub const SEGMENT_GAP_MS: u32 = 33;

/// A backwards step larger than this within one publisher is a restart, not A/V interleave.
pub const MAX_BACKWARD_STEP_MS: u32 = 1000;

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Added (wrapping) to input timestamps of the current segment.
    offset: u32,
    last_input: Option<u32>,
    last_output: Option<u32>,
    /// The latest output ever produced; new segments start after it.
    furthest_output: Option<u32>,
    new_segment_pending: bool,
}

/// `a` is later than `b` on a wrapping 32-bit clock.
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next input timestamp begins a new publisher's segment.
    pub fn start_publisher(&mut self) {
        self.new_segment_pending = true;
    }

    /// Maps a publisher timestamp onto the channel timeline.
    pub fn map(&mut self, input_ts: u32) -> u32 {
        let restarted = self.last_input.is_some_and(|last| {
            let back = last.wrapping_sub(input_ts) as i32;
            back > MAX_BACKWARD_STEP_MS as i32
        });
        if let Some(furthest) = self.furthest_output {
            if self.new_segment_pending || restarted {
                let start = furthest.wrapping_add(SEGMENT_GAP_MS);
                self.offset = start.wrapping_sub(input_ts);
            }
        }
        // Before any output the first publisher keeps its own timestamps (offset 0).
        self.new_segment_pending = false;

        let output = input_ts.wrapping_add(self.offset);
        self.last_input = Some(input_ts);
        self.last_output = Some(output);
        if self.furthest_output.is_none_or(|f| is_after(output, f)) {
            self.furthest_output = Some(output);
        }
        output
    }

    /// The most recently returned output timestamp.
    pub fn last_output(&self) -> Option<u32> {
        self.last_output
    }

    /// The latest output timestamp so far; differs from [`Timeline::last_output`] only after
    /// a small backwards step (e.g. audio interleaved just behind video).
    pub fn furthest_output(&self) -> Option<u32> {
        self.furthest_output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_all(t: &mut Timeline, inputs: &[u32]) -> Vec<u32> {
        inputs.iter().map(|&ts| t.map(ts)).collect()
    }

    #[test]
    fn the_first_publisher_keeps_its_timestamps() {
        let mut t = Timeline::new();
        assert_eq!(t.last_output(), None);
        t.start_publisher();
        assert_eq!(map_all(&mut t, &[5000, 5033, 5066]), vec![5000, 5033, 5066]);
        assert_eq!(t.last_output(), Some(5066));
    }

    #[test]
    fn a_new_publisher_continues_after_the_last_output_with_a_gap() {
        let mut t = Timeline::new();
        map_all(&mut t, &[0, 40, 80]);
        t.start_publisher();
        assert_eq!(
            map_all(&mut t, &[0, 40, 100]),
            vec![
                80 + SEGMENT_GAP_MS,
                120 + SEGMENT_GAP_MS,
                180 + SEGMENT_GAP_MS
            ]
        );
        // A publisher that starts far ahead is pulled back just the same.
        t.start_publisher();
        let start = 180 + 2 * SEGMENT_GAP_MS;
        assert_eq!(
            map_all(&mut t, &[900_000, 900_020]),
            vec![start, start + 20]
        );
    }

    #[test]
    fn small_backward_steps_pass_through_unchanged() {
        let mut t = Timeline::new();
        assert_eq!(
            map_all(
                &mut t,
                &[1000, 1040, 1023, 1080, 1063, 1080 - MAX_BACKWARD_STEP_MS]
            ),
            vec![1000, 1040, 1023, 1080, 1063, 1080 - MAX_BACKWARD_STEP_MS]
        );
    }

    #[test]
    fn a_big_backward_jump_starts_a_new_segment() {
        let mut t = Timeline::new();
        map_all(&mut t, &[60_000, 60_040]);
        // The encoder restarted inside the session.
        assert_eq!(
            map_all(&mut t, &[0, 40]),
            vec![60_040 + SEGMENT_GAP_MS, 60_080 + SEGMENT_GAP_MS]
        );
    }

    #[test]
    fn a_new_segment_starts_after_the_furthest_output_not_the_last() {
        let mut t = Timeline::new();
        // video then audio slightly behind
        map_all(&mut t, &[1000, 990]);
        assert_eq!(t.last_output(), Some(990));
        assert_eq!(t.furthest_output(), Some(1000));
        t.start_publisher();
        assert_eq!(t.map(0), 1000 + SEGMENT_GAP_MS);
    }

    #[test]
    fn timestamps_wrap_after_49_days_without_a_new_segment() {
        let mut t = Timeline::new();
        let near_end = u32::MAX - 40;
        assert_eq!(
            map_all(&mut t, &[near_end, near_end + 33, 25, 58]),
            vec![near_end, near_end + 33, 25, 58]
        );
        // A switch right after the wrap continues from the wrapped furthest output.
        t.start_publisher();
        assert_eq!(t.map(7), 58 + SEGMENT_GAP_MS);
    }

    #[test]
    fn the_output_wraps_when_the_offset_carries_it_past_u32_max() {
        let mut t = Timeline::new();
        t.map(u32::MAX - 10);
        t.start_publisher();
        let first = t.map(0);
        assert_eq!(first, (u32::MAX - 10).wrapping_add(SEGMENT_GAP_MS));
        assert_eq!(t.map(100), first.wrapping_add(100));
    }

    #[test]
    fn start_publisher_before_any_input_is_the_first_publisher() {
        let mut t = Timeline::new();
        t.start_publisher();
        t.start_publisher();
        assert_eq!(t.map(123), 123);
        assert_eq!(t.map(156), 156);
    }
}
