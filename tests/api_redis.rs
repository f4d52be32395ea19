//! The Redis key store against a real `redis-server` started by each test on a free port: the
//! key life cycle with ffmpeg, the namespaces and their atomic updates, keys surviving a
//! server restart, Redis killed and restarted under a live stream, and Redis down at startup.

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/redis.rs"]
mod redis;
#[path = "support/viewer.rs"]
mod viewer;

use std::thread;
use std::time::{Duration, Instant};

use api::assert_key_shape;
use common::*;
use redis::RedisServer;
use viewer::FlvWatcher;

fn start_server(redis: &RedisServer) -> Server {
    Server::start(&[&format!("--redis_addr={}", redis.addr())])
}

fn get(srv: &Server, path: &str) -> api::Reply {
    api::get(&srv.api_url(path))
}

/// A harness RTMP client publishing with `name`; returns the status code it got.
fn publish_status(srv: &Server, name: &str) -> (String, Duration) {
    let started = Instant::now();
    let (_client, reply) =
        RtmpClient::start_publish(srv.rtmp_port, "live", name).expect("RTMP exchange");
    (reply.code().unwrap_or_default(), started.elapsed())
}

#[test]
fn redis_key_life_cycle_namespaces_and_server_restart() {
    let _slot = heavy_slot();
    let media = test_media();
    let redis = RedisServer::start();
    let srv = start_server(&redis);
    let room = "redisroom";

    let key = srv.key(room);
    assert_key_shape(&key);
    assert_eq!(srv.key(room), key, "get is idempotent");
    assert_eq!(
        redis.cli(&["GET", &format!("switchboard:room:{room}")]),
        key
    );
    assert_eq!(redis.cli(&["GET", &format!("switchboard:key:{key}")]), room);
    assert_eq!(redis.cli(&["EXISTS", room]), "0", "no unprefixed keys");
    assert_eq!(redis.cli(&["EXISTS", &key]), "0", "no unprefixed keys");

    // The key publishes; the room name does not (livego #213).
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live(room, Duration::from_secs(10));
    assert_eq!(publish_status(&srv, room).0, "NetStream.Publish.BadName");
    publisher.kill();
    assert!(srv.wait_gone(room, Duration::from_secs(10)));

    // Reset replaces both mappings: the old key is gone from Redis and refused.
    let r = get(&srv, &format!("/control/reset?room={room}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let new_key = r.message();
    assert_ne!(new_key, key);
    assert_eq!(
        redis.cli(&["GET", &format!("switchboard:room:{room}")]),
        new_key
    );
    assert_eq!(
        redis.cli(&["EXISTS", &format!("switchboard:key:{key}")]),
        "0"
    );
    assert_eq!(publish_status(&srv, &key).0, "NetStream.Publish.BadName");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&new_key));
    srv.wait_live(room, Duration::from_secs(10));
    publisher.kill();
    assert!(srv.wait_gone(room, Duration::from_secs(10)));

    // Delete removes both; a second delete is 404 (livego answered 404 on success).
    let r = get(&srv, &format!("/control/delete?room={room}"));
    assert_eq!(
        (r.status, r.message().as_str()),
        (200, "Ok"),
        "{}",
        r.text()
    );
    assert_eq!(redis.cli(&["KEYS", "switchboard:*"]), "");
    let r = get(&srv, &format!("/control/delete?room={room}"));
    assert_eq!((r.status, r.message().as_str()), (404, "room not found"));
    assert_eq!(
        publish_status(&srv, &new_key).0,
        "NetStream.Publish.BadName"
    );

    // Keys survive a restart of the server.
    let kept = srv.key("kept");
    drop(srv);
    let srv = start_server(&redis);
    assert_eq!(srv.key("kept"), kept, "key changed across a server restart");
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url(&kept));
    srv.wait_live("kept", Duration::from_secs(10));
    let health = get(&srv, "/healthz").data();
    assert_eq!(health["key_store"]["backend"], "redis", "{health}");
    assert_eq!(health["key_store"]["ok"], true, "{health}");
}

#[test]
fn redis_killed_mid_run_then_restarted() {
    let _slot = heavy_slot();
    let media = test_media();
    let mut redis = RedisServer::start_persistent();
    let mut srv = start_server(&redis);
    let room = "outage";
    let key = srv.key(room);
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live(room, Duration::from_secs(10));
    let viewer = FlvWatcher::open(&srv.flv_url(room));

    redis.kill();

    // The API says 503 promptly, with a message.
    let r = get(&srv, &format!("/control/get?room={room}"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.message().contains("Redis"), "{}", r.text());
    assert!(r.elapsed < Duration::from_secs(4), "took {:?}", r.elapsed);
    for path in ["/control/reset?room=x", "/control/delete?room=x"] {
        let r = get(&srv, path);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
    }
    let health = get(&srv, "/healthz").data();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["key_store"]["ok"], false, "{health}");

    // A new publish is refused with a clear status, not left hanging.
    let (code, took) = publish_status(&srv, &key);
    assert_eq!(code, "NetStream.Publish.Failed");
    assert!(took < Duration::from_secs(5), "refusal took {took:?}");

    // The live stream is unaffected: the publisher runs, the viewer keeps receiving, and
    // statistics (which need no key store) still answer.
    let during = viewer.bytes_during(Duration::from_secs(2));
    assert!(viewer.ended().is_none(), "viewer ended during the outage");
    assert!(
        during > 50_000,
        "viewer got {during} bytes in 2 s of the outage"
    );
    assert!(publisher.is_running(), "{}", publisher.describe());
    let stat = get(&srv, "/stat/livestat").data();
    assert_eq!(
        stat["publishers"].as_array().map(Vec::len),
        Some(1),
        "{stat}"
    );

    // Redis comes back: the API works again without a restart, with the same key.
    redis.restart();
    let back = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let r = get(&srv, &format!("/control/get?room={room}"));
        (r.status == 200).then(|| r.message())
    });
    assert_eq!(back.as_deref(), Some(key.as_str()), "API did not recover");
    let other = srv.key("after");
    let _second = ffmpeg_publisher(&media, &srv.publish_url(&other));
    srv.wait_live("after", Duration::from_secs(10));
    assert!(srv.log().contains("unreachable"), "outage not logged");
    thread::sleep(Duration::from_millis(100));
    srv.assert_alive();
}

#[test]
fn redis_down_at_startup() {
    let _slot = heavy_slot();
    let port = free_port();
    let srv = Server::start(&[&format!("--redis_addr=127.0.0.1:{port}")]);

    let r = get(&srv, "/control/get?room=early");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.message().contains(&format!("127.0.0.1:{port}")),
        "{}",
        r.text()
    );
    let (code, took) = publish_status(&srv, "0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_eq!(code, "NetStream.Publish.Failed");
    assert!(took < Duration::from_secs(5), "refusal took {took:?}");
    let logged = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        srv.log().contains("unreachable").then_some(())
    });
    assert!(
        logged.is_some(),
        "no clear error in the log:\n{}",
        srv.log()
    );

    let redis = RedisServer::start_on_port(port);
    let key = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let r = get(&srv, "/control/get?room=early");
        (r.status == 200).then(|| r.message())
    })
    .expect("API did not recover when Redis came up");
    assert_key_shape(&key);
    assert_eq!(redis.cli(&["GET", "switchboard:room:early"]), key);
}
