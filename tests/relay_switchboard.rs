//! Relays between two Switchboard instances, and the relay API's refusals.

mod common;
#[path = "support/relays.rs"]
mod relays;

use common::*;
use relays::assert_plays_h264_640x360;
use std::time::Duration;

/// Pull A's stream into B and play it from B; push A's stream to B and play it there; stop
/// both. `/api/relays` on each side follows every step.
#[test]
fn pull_and_push_between_two_switchboards() {
    let _slot = heavy_slot();
    let media = test_media();
    let a = Server::start(&[]);
    let b = Server::start(&[]);
    let key = a.key("source");
    let _publisher = ffmpeg_publisher(&media, &a.publish_url(&key));
    a.wait_live("source", Duration::from_secs(10));

    // Pull: A's room "source" becomes B's room "pulled", without any key on B.
    assert!(relays::list(&b).is_empty());
    let started = relays::start(&b, "pull", "live", "pulled", &a.play_url("source"));
    assert_eq!(started["kind"], "pull");
    assert_eq!(started["origin"], "api");
    assert_eq!(started["target"], a.play_url("source"));
    let running = relays::wait_relay(
        &b,
        "pull running",
        Duration::from_secs(10),
        relays::is("pull", "live", "pulled", "running"),
    );
    assert!(running["last_error"].is_null(), "{running}");
    b.wait_live("pulled", Duration::from_secs(10));
    assert_plays_h264_640x360(&b.flv_url("pulled"));
    let pulled = relays::wait_relay(&b, "pull with bytes", Duration::from_secs(5), |r| {
        r["kind"] == "pull" && r["bytes"].as_u64().unwrap_or(0) > 100_000
    });
    assert_eq!(pulled["reconnects"], 0, "{pulled}");
    // The relay is the pulled stream's publisher on B.
    let streams = http_get(&format!("http://127.0.0.1:{}/streams", b.flv_port))
        .expect("GET /streams")
        .json();
    assert!(
        streams["publishers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|s| s["key"] == "live/pulled")),
        "{streams}"
    );

    let stopped = relays::stop(&b, "pull", "live", "pulled");
    assert_eq!(stopped["kind"], "pull");
    assert!(relays::list(&b).is_empty(), "{:?}", relays::list(&b));
    assert!(
        b.wait_gone("pulled", Duration::from_secs(5)),
        "B still serves the pulled stream after the pull stopped"
    );

    // Push: A's room "source" goes to B with B's publish key for room "pushed".
    let b_key = b.key("pushed");
    let started = relays::start(&a, "push", "live", "source", &b.publish_url(&b_key));
    assert_eq!(started["kind"], "push");
    relays::wait_relay(
        &a,
        "push running",
        Duration::from_secs(10),
        relays::is("push", "live", "source", "running"),
    );
    b.wait_live("pushed", Duration::from_secs(10));
    assert_plays_h264_640x360(&b.flv_url("pushed"));
    relays::wait_relay(&a, "push with bytes", Duration::from_secs(5), |r| {
        r["kind"] == "push" && r["bytes"].as_u64().unwrap_or(0) > 100_000
    });
    // The push is listed among A's stream's players, as a relay.
    let stat = http_get(&a.api_url("/stat/livestat"))
        .expect("livestat")
        .json();
    assert!(stat.to_string().contains("relay"), "{stat}");

    relays::stop(&a, "push", "live", "source");
    assert!(relays::list(&a).is_empty());
    assert!(
        b.wait_gone("pushed", Duration::from_secs(5)),
        "B still serves the pushed stream after the push stopped"
    );
    // A's own stream is untouched by all of this.
    a.wait_live("source", Duration::from_secs(2));
}

/// A pull whose remote stream ends retires the local stream after `read_timeout`, keeps
/// retrying, and brings the stream back when the remote is published again.
#[test]
fn pull_follows_the_remote_stream_ending_and_returning() {
    let _slot = heavy_slot();
    let media = test_media();
    let a = Server::start(&[]);
    let b = Server::start_with_config(
        &format!("relay_backoff_min_ms = 200\nrelay_backoff_max_ms = 1000\n{DEFAULT_CONFIG}"),
        &["--read_timeout=3"],
    );
    let key = a.key("source");
    let mut publisher = ffmpeg_publisher(&media, &a.publish_url(&key));
    a.wait_live("source", Duration::from_secs(10));
    relays::start(&b, "pull", "live", "mirror", &a.play_url("source"));
    b.wait_live("mirror", Duration::from_secs(10));

    publisher.kill();
    assert!(
        b.wait_gone("mirror", Duration::from_secs(3 + 10 + 5)),
        "the pulled stream outlived its remote by more than read_timeout + write_timeout"
    );
    let waiting = relays::list(&b);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_ne!(waiting[0]["state"], "running", "{waiting:?}");

    let _publisher = ffmpeg_publisher(&media, &a.publish_url(&key));
    a.wait_live("source", Duration::from_secs(10));
    b.wait_live("mirror", Duration::from_secs(15));
    assert_plays_h264_640x360(&b.flv_url("mirror"));
    relays::stop(&b, "pull", "live", "mirror");
}

/// Every malformed or impossible request gets its own status code and the JSON envelope.
#[test]
fn bad_relay_requests_get_precise_status_codes() {
    let _slot = heavy_slot();
    let srv = Server::start(&[]);
    let remote = "url=rtmp%3A%2F%2F127.0.0.1%3A1%2Flive%2Fx";
    for kind in ["pull", "push"] {
        for (query, status) in [
            (String::new(), 400),
            (format!("app=live&name=r&{remote}"), 400),
            (format!("oper=restart&app=live&name=r&{remote}"), 400),
            (format!("oper=start&name=r&{remote}"), 400),
            (format!("oper=start&app=live&{remote}"), 400),
            ("oper=start&app=live&name=r".to_string(), 400),
            (
                "oper=start&app=live&name=r&url=http%3A%2F%2Fh%2Flive%2Fx".to_string(),
                400,
            ),
            (
                "oper=start&app=live&name=r&url=rtmp%3A%2F%2Fh%2Flive".to_string(),
                400,
            ),
            (
                "oper=start&app=live&name=r&url=rtmp%3A%2F%2Fh%3A99999%2Flive%2Fx".to_string(),
                400,
            ),
            (format!("oper=start&app=nosuchapp&name=r&{remote}"), 400),
            ("oper=stop&app=live&name=nosuchrelay".to_string(), 404),
            ("oper=stop&name=r".to_string(), 400),
        ] {
            let (got, body) = relays::control(&srv, kind, &query);
            assert_eq!(got, status, "/control/{kind}?{query}: {body}");
            assert!(body["data"].is_string(), "/control/{kind}?{query}: {body}");
        }
        // Start twice: the second is a conflict; stop twice: the second is unknown.
        let (got, body) =
            relays::control(&srv, kind, &format!("oper=start&app=live&name=r&{remote}"));
        assert_eq!(got, 200, "{body}");
        let (got, body) =
            relays::control(&srv, kind, &format!("oper=start&app=live&name=r&{remote}"));
        assert_eq!(got, 409, "{body}");
        assert_eq!(relays::list(&srv).len(), 1);
        let (got, body) = relays::control(&srv, kind, "oper=stop&app=live&name=r");
        assert_eq!(got, 200, "{body}");
        let (got, body) = relays::control(&srv, kind, "oper=stop&app=live&name=r");
        assert_eq!(got, 404, "{body}");
        assert!(relays::list(&srv).is_empty());
    }
    // A form body works like the query string.
    let form = "oper=start&app=live&name=f&url=rtmp%3A%2F%2F127.0.0.1%3A1%2Flive%2Fx";
    let r = http_post_form(&srv.api_url("/control/push"), form);
    assert_eq!(r.0, 200, "{}", r.1);
    let r = http_post_form(&srv.api_url("/control/push"), "oper=stop&app=live&name=f");
    assert_eq!(r.0, 200, "{}", r.1);

    // A failing relay says why in the listing.
    relays::start(&srv, "pull", "live", "dead", "rtmp://127.0.0.1:1/live/x");
    let failing = relays::wait_relay(&srv, "with an error", Duration::from_secs(10), |r| {
        r["last_error"].is_string()
    });
    assert!(
        failing["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1:1"),
        "{failing}"
    );
    assert!(
        ["backing-off", "connecting"].contains(&failing["state"].as_str().unwrap_or("")),
        "{failing}"
    );
    relays::stop(&srv, "pull", "live", "dead");

    // relay_allow restricts targets; a target outside it is forbidden.
    let restricted = Server::start_with_config(
        &format!("relay_allow = [\"rtmp://127.0.0.1:1935/live/\"]\n{DEFAULT_CONFIG}"),
        &[],
    );
    let (got, body) = relays::control(
        &restricted,
        "push",
        "oper=start&app=live&name=r&url=rtmp%3A%2F%2F127.0.0.1%3A1936%2Flive%2Fx",
    );
    assert_eq!(got, 403, "{body}");
    let (got, body) = relays::control(
        &restricted,
        "push",
        "oper=start&app=live&name=r&url=rtmp%3A%2F%2F127.0.0.1%2Flive%2Fx",
    );
    assert_eq!(got, 200, "{body}");
}

/// POST an urlencoded form; (status, body text).
fn http_post_form(url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut sock = std::net::TcpStream::connect(host).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        sock,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = sock.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}
