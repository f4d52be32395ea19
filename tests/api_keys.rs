//! Control API against the embedded key store: livego's `/control/*` endpoints (every success
//! and error, status and body), the envelope on unknown paths and wrong methods, `/healthz`,
//! the served OpenAPI document, and the full key life cycle with ffmpeg publishing.

#[path = "support/api.rs"]
mod api;
mod common;

use std::time::Duration;

use api::{assert_key_shape, get, post_form, request};
use common::*;

#[test]
fn control_endpoints_answer_with_livego_envelopes() {
    let _slot = heavy_slot();
    let mut srv = Server::start(&[]);
    let api_port = srv.api_port;
    let url = |p: &str| format!("http://127.0.0.1:{api_port}{p}");

    // Missing or empty room: 400 with the usage.
    for endpoint in ["get", "reset", "delete"] {
        for query in ["", "?room=", "?room=%20", "?other=x"] {
            let r = get(&url(&format!("/control/{endpoint}{query}")));
            assert_eq!(r.status, 400, "/control/{endpoint}{query}: {}", r.text());
            let msg = r.message();
            assert!(
                msg.contains(&format!("/control/{endpoint}?room=<ROOM_NAME>")),
                "{msg}"
            );
        }
    }
    // A room that cannot be a stream name.
    let r = get(&url("/control/get?room=a%2Fb"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("invalid room"), "{}", r.text());

    // get: created once, then the same key, over GET and over a POSTed form.
    let r = get(&url("/control/get?room=movie"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let key = r.message();
    assert_key_shape(&key);
    assert_eq!(get(&url("/control/get?room=movie")).message(), key);
    assert_eq!(post_form(&url("/control/get"), "room=movie").message(), key);
    // A form value wins over the query string (Go's ParseForm).
    let other = post_form(&url("/control/get?room=movie"), "room=other").message();
    assert_ne!(other, key);
    assert_key_shape(&other);

    // reset: a new key, which get returns from now on.
    let r = request("PUT", &url("/control/reset?room=movie"), &[], None);
    assert_eq!(
        r.status,
        200,
        "any method works, as in livego: {}",
        r.text()
    );
    let reset = r.message();
    assert_key_shape(&reset);
    assert_ne!(reset, key);
    assert_eq!(get(&url("/control/get?room=movie")).message(), reset);

    // delete: Ok, then 404; get afterwards creates a fresh key.
    let r = post_form(&url("/control/delete"), "room=movie");
    assert_eq!(
        (r.status, r.message().as_str()),
        (200, "Ok"),
        "{}",
        r.text()
    );
    let r = get(&url("/control/delete?room=movie"));
    assert_eq!((r.status, r.message().as_str()), (404, "room not found"));
    let fresh = get(&url("/control/get?room=movie")).message();
    assert!(fresh != key && fresh != reset);
    let r = get(&url("/control/delete?room=never-made"));
    assert_eq!((r.status, r.message().as_str()), (404, "room not found"));

    // Unknown paths and wrong methods are envelopes too.
    let r = get(&url("/no/such/thing"));
    assert_eq!(r.status, 404);
    assert!(r.message().contains("no such endpoint"), "{}", r.text());
    let r = request("POST", &url("/api/clients"), &[], None);
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.message().contains("GET"), "{}", r.text());
    let r = get(&url("/api/clients/0d7f3f7e-4a8e-4d0b-9d6c-8a6b1c2d3e4f"));
    assert_eq!(r.status, 405, "{}", r.text());

    // Health and the API description.
    let r = get(&url("/healthz"));
    assert_eq!(r.status, 200, "{}", r.text());
    let health = r.data();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["key_store"]["backend"], "memory", "{health}");
    assert_eq!(health["key_store"]["ok"], true, "{health}");
    let r = get(&url("/api/openapi.json"));
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_slice(&r.body).expect("OpenAPI JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in ["/control/get", "/stat/livestat", "/api/clients/{id}"] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    srv.assert_alive();
}

/// get → publish with ffmpeg → reset → old key refused, new key works → delete → refused.
#[test]
fn embedded_key_life_cycle_with_ffmpeg() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let room = "cycle";
    let key = srv.key(room);

    let mut first = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live(room, Duration::from_secs(10));

    // The room name is not a key.
    assert_refused(&srv, room, "NetStream.Publish.BadName");

    let r = api::get(&srv.api_url(&format!("/control/reset?room={room}")));
    assert_eq!(r.status, 200, "{}", r.text());
    let new_key = r.message();
    assert_ne!(new_key, key);
    // The old key stops working at once; the publisher already live is not cut off.
    assert_refused(&srv, &key, "NetStream.Publish.BadName");
    assert_ffmpeg_refused(&srv, &media, &key);
    assert!(
        first.is_running(),
        "live publisher cut off by reset: {}",
        first.describe()
    );

    first.kill();
    assert!(
        srv.wait_gone(room, Duration::from_secs(10)),
        "stream did not end"
    );
    let _second = ffmpeg_publisher(&media, &srv.publish_url(&new_key));
    srv.wait_live(room, Duration::from_secs(10));
    let d = decode_frames(&srv.flv_url(room), 1.0);
    assert!(d.ok() && d.frames >= 20, "{}", d.summary());

    let r = api::get(&srv.api_url(&format!("/control/delete?room={room}")));
    assert_eq!((r.status, r.message().as_str()), (200, "Ok"));
    assert_refused(&srv, &new_key, "NetStream.Publish.BadName");
    assert_ffmpeg_refused(&srv, &media, &new_key);
}

/// A harness RTMP client publishing with `name` gets `code` and is closed.
fn assert_refused(srv: &Server, name: &str, code: &str) {
    let (mut client, reply) =
        RtmpClient::start_publish(srv.rtmp_port, "live", name).expect("RTMP exchange");
    assert_eq!(reply.code().as_deref(), Some(code), "{reply:?}");
    assert_eq!(reply.level().as_deref(), Some("error"), "{reply:?}");
    assert!(
        client.wait_closed(Duration::from_secs(5)).is_some(),
        "refused publisher not closed"
    );
}

/// ffmpeg publishing with `key` fails quickly and says why.
fn assert_ffmpeg_refused(srv: &Server, media: &std::path::Path, key: &str) {
    let mut p = ffmpeg_publish_once(media, &srv.publish_url(key), 5.0, true);
    let status = p.wait_timeout(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg with a revoked key: {}",
        p.describe()
    );
    assert!(
        p.stderr().contains("Publish.BadName"),
        "ffmpeg was not told why: {}",
        p.describe()
    );
}
