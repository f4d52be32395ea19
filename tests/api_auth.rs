//! JWT and CORS on the API. Tokens are signed by `openssl`, independently of the server's JWT
//! library. Every failure is a 403 envelope with the reason; no method bypasses the check
//! (livego answered `OPTIONS /control/get` with the key); CORS preflights get headers only.

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/jwt.rs"]
mod jwt;

use api::{assert_key_shape, request, Reply};
use common::*;
use jwt::{now, token};

const SECRET: &str = "switchboard-test-secret";

/// (content type, bytes) of a request body.
type Body<'a> = Option<(&'a str, &'a [u8])>;

fn forbidden(reply: &Reply, reason: &str, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.text());
    let msg = reply.message();
    assert!(
        msg.contains(reason),
        "{what}: {msg:?} should mention {reason:?}"
    );
}

#[test]
fn jwt_guards_every_route_and_every_method() {
    let _slot = heavy_slot();
    let srv = Server::start(&[&format!("--jwt_secret={SECRET}")]);
    let url = |p: &str| srv.api_url(p);
    let get_key = url("/control/get?room=guarded");
    let bearer = |t: &str| format!("Bearer {t}");

    // Missing token.
    let r = request("GET", &get_key, &[], None);
    forbidden(&r, "Required authorization token not found", "no token");
    // Malformed Authorization header (even with a good ?jwt=, as livego does).
    let good = token(
        "HS256",
        SECRET,
        &format!(r#"{{"sub":"ops","exp":{}}}"#, now() + 300),
    );
    let r = request(
        "GET",
        &format!("{get_key}&jwt={good}"),
        &[("Authorization", &format!("Token {good}"))],
        None,
    );
    forbidden(
        &r,
        "Authorization header format must be Bearer {token}",
        "bad scheme",
    );
    // Malformed tokens.
    for bad in ["abc", "abc.def.ghi", "e30.e30"] {
        let r = request("GET", &get_key, &[("Authorization", &bearer(bad))], None);
        forbidden(&r, "malformed token", bad);
    }
    // Wrong signature.
    let forged = token("HS256", "not-the-secret", "{}");
    let r = request(
        "GET",
        &get_key,
        &[("Authorization", &bearer(&forged))],
        None,
    );
    forbidden(&r, "signature is invalid", "wrong secret");
    // Another algorithm, even with the right secret.
    let hs512 = token("HS512", SECRET, "{}");
    let r = request("GET", &get_key, &[("Authorization", &bearer(&hs512))], None);
    forbidden(
        &r,
        "Expected HS256 signing method but token specified HS512",
        "HS512",
    );
    // An unsigned token.
    let none = format!(
        "{}.{}.",
        jwt::b64url(br#"{"alg":"none","typ":"JWT"}"#),
        jwt::b64url(b"{}")
    );
    let r = request("GET", &format!("{get_key}&jwt={none}"), &[], None);
    assert_eq!(r.status, 403, "alg none: {}", r.text());
    // Expired, and not yet valid.
    let expired = token("HS256", SECRET, &format!(r#"{{"exp":{}}}"#, now() - 30));
    let r = request(
        "GET",
        &get_key,
        &[("Authorization", &bearer(&expired))],
        None,
    );
    forbidden(&r, "Token is expired", "expired");
    let early = token("HS256", SECRET, &format!(r#"{{"nbf":{}}}"#, now() + 600));
    let r = request("GET", &format!("{get_key}&jwt={early}"), &[], None);
    forbidden(&r, "Token is not valid yet", "nbf in the future");

    // Valid via the header and via ?jwt=: the same key.
    let r = request("GET", &get_key, &[("Authorization", &bearer(&good))], None);
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.message();
    assert_key_shape(&key);
    let r = request("GET", &format!("{get_key}&jwt={good}"), &[], None);
    assert_eq!((r.status, r.message()), (200, key.clone()));
    // A token with no claims at all is valid (livego requires none).
    let bare = token("HS256", SECRET, "{}");
    let r = request("GET", &format!("{get_key}&jwt={bare}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());

    // OPTIONS without a token: headers only, never the key (livego's hole).
    let r = request("OPTIONS", &get_key, &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty(), "OPTIONS returned data: {}", r.text());
    let r = request(
        "OPTIONS",
        &get_key,
        &[
            ("Origin", "https://console.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        None,
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty(), "preflight returned data: {}", r.text());
    assert!(!r.text().contains(&key));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let allow_headers = r.header("access-control-allow-headers").unwrap_or_default();
    assert!(allow_headers.contains("Authorization"), "{allow_headers}");
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("DELETE")));

    // Every other route and method is guarded too, the console and unknown paths included.
    let form = (
        "application/x-www-form-urlencoded",
        "room=guarded".as_bytes(),
    );
    let guarded: [(&str, &str, Body); 9] = [
        ("POST", "/control/get", Some(form)),
        ("GET", "/control/reset?room=guarded", None),
        ("GET", "/control/delete?room=guarded", None),
        ("GET", "/stat/livestat", None),
        ("GET", "/api/streams", None),
        ("GET", "/api/clients", None),
        (
            "DELETE",
            "/api/clients/0d7f3f7e-4a8e-4d0b-9d6c-8a6b1c2d3e4f",
            None,
        ),
        ("GET", "/healthz", None),
        ("GET", "/no/such/path", None),
    ];
    for (method, path, body) in guarded {
        let r = request(
            method,
            &url(path),
            &[("Origin", "https://console.example")],
            body,
        );
        forbidden(
            &r,
            "Required authorization token not found",
            &format!("{method} {path}"),
        );
        // The browser may read the reason: the 403 carries the CORS header.
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{method} {path}"
        );
        let r = request(
            method,
            &url(path),
            &[("Authorization", &bearer(&good))],
            body,
        );
        assert_ne!(
            r.status,
            403,
            "{method} {path} with a valid token: {}",
            r.text()
        );
    }
    // The console's page and files load without a token (the page then asks for one); they
    // carry no keys or statistics, and a path dressed up as a console file reaches no API.
    for path in ["/", "/statics/app.js"] {
        let r = request("GET", &url(path), &[], None);
        assert_ne!(r.status, 403, "{path}: {}", r.text());
        assert!(!r.text().contains(&key), "{path} leaked the key");
    }
    for path in [
        "/statics/../control/get?room=guarded",
        "/statics/%2e%2e/control/get?room=guarded",
    ] {
        let r = request("GET", &url(path), &[], None);
        assert!(
            !r.text().contains(&key),
            "{path} leaked the key: {}",
            r.text()
        );
        assert_ne!(r.status, 200, "{path}: {}", r.text());
    }
    // The key was never changed by a refused request.
    let r = request("GET", &get_key, &[("Authorization", &bearer(&good))], None);
    assert_eq!(r.status, 200);
}

#[test]
fn cors_follows_the_configured_origins() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--api_cors_origins=https://a.example, http://b.example:8080"]);
    let url = srv.api_url("/control/get?room=cors");

    let r = request("GET", &url, &[("Origin", "https://a.example")], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert!(r.headers_named("vary").iter().any(|v| v.contains("Origin")));

    let r = request("GET", &url, &[("Origin", "https://evil.example")], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let r = request(
        "OPTIONS",
        &url,
        &[
            ("Origin", "http://b.example:8080"),
            ("Access-Control-Request-Method", "DELETE"),
        ],
        None,
    );
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://b.example:8080")
    );
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("DELETE") && m.contains("POST")));
    assert!(r.header("access-control-max-age").is_some());

    let r = request(
        "OPTIONS",
        &url,
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
}
