//! The OpenAPI description of the API (`docs/openapi.json`), served at `/api/openapi.json` and
//! kept in step with the code by the tests below.

use actix_web::http::header::ContentType;
use actix_web::HttpResponse;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::dev::Service;
    use actix_web::http::Method;
    use actix_web::test::{self, TestRequest};
    use actix_web::{App, HttpResponse};
    use serde_json::Value;

    use super::DOCUMENT;
    use crate::api::{routes, ROUTES};

    const HTTP_METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("docs/openapi.json is valid JSON")
    }

    /// (method, path) operations the document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = doc();
        let paths = doc["paths"].as_object().expect("paths is an object");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("path item is an object");
                item.keys()
                    .filter(|k| HTTP_METHODS.contains(&k.as_str()))
                    .map(|m| (m.clone(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// (method, path) operations the code registers, `ANY` documented as GET and POST.
    fn registered() -> BTreeSet<(String, String)> {
        ROUTES
            .iter()
            .flat_map(|(method, path)| {
                let methods: &[&str] = match *method {
                    "ANY" => &["get", "post"],
                    "GET" => &["get"],
                    "DELETE" => &["delete"],
                    other => panic!("ROUTES method {other} has no documentation rule"),
                };
                methods
                    .iter()
                    .map(|m| (m.to_string(), path.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_registered_route_is_documented() {
        let documented = documented();
        let missing: Vec<_> = registered().difference(&documented).cloned().collect();
        assert!(
            missing.is_empty(),
            "routes missing from docs/openapi.json: {missing:?}"
        );
    }

    #[test]
    fn the_document_describes_only_our_routes_with_their_methods() {
        let registered = registered();
        let our_paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
        let extra: Vec<_> = documented()
            .into_iter()
            .filter(|(_, path)| our_paths.contains(path.as_str()))
            .filter(|op| !registered.contains(op))
            .collect();
        assert!(
            extra.is_empty(),
            "docs/openapi.json documents methods the code does not serve: {extra:?}"
        );
    }

    #[test]
    fn route_paths_are_unique() {
        let mut seen = BTreeSet::new();
        for (_, path) in ROUTES {
            assert!(seen.insert(*path), "{path} is registered twice");
        }
    }

    /// Paths documented by other modules (relays, console) must at least be routed by the app.
    #[actix_web::test]
    async fn every_documented_path_is_routed() {
        let app = test::init_service(
            App::new()
                .wrap_fn(|req, _srv| {
                    // Report the pattern the router would pick; never run a handler.
                    let pattern = req.match_pattern().unwrap_or_default();
                    let res = HttpResponse::NoContent()
                        .insert_header(("x-pattern", pattern))
                        .finish();
                    std::future::ready(Ok(req.into_response(res)))
                })
                .configure(routes),
        )
        .await;
        for (method, path) in documented() {
            let concrete = path.replace(['{', '}'], "");
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let res = app
                .call(
                    TestRequest::default()
                        .method(method)
                        .uri(&concrete)
                        .to_request(),
                )
                .await
                .expect("routes");
            let pattern = res
                .headers()
                .get("x-pattern")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert_eq!(
                without_regexes(pattern),
                path,
                "{concrete} is not routed to {path}"
            );
        }
    }

    /// `/statics/{tail:.*}` → `/statics/{tail}`: OpenAPI path templates have no regexes.
    fn without_regexes(pattern: &str) -> String {
        let mut out = String::new();
        let (mut depth, mut skipping) = (0usize, false);
        for c in pattern.chars() {
            match c {
                '{' => {
                    depth += 1;
                    if !skipping {
                        out.push(c);
                    }
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        skipping = false;
                    }
                    if !skipping {
                        out.push(c);
                    }
                }
                ':' if depth == 1 && !skipping => skipping = true,
                _ if skipping => {}
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn regexes_are_stripped_from_patterns() {
        assert_eq!(without_regexes("/statics/{tail:.*}"), "/statics/{tail}");
        assert_eq!(without_regexes("/api/clients/{id}"), "/api/clients/{id}");
        assert_eq!(without_regexes("/a:b/{x:[0-9]{2}}/c"), "/a:b/{x}/c");
    }

    #[test]
    fn every_operation_documents_its_responses() {
        let doc = doc();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "an OpenAPI 3 document"
        );
        for (method, path) in documented() {
            let op = &doc["paths"][&path][&method];
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses
                    .keys()
                    .any(|code| code.starts_with('2') || code.starts_with('3')),
                "{method} {path}: no success response"
            );
            // `security: []` marks the console's public files; everything else is behind JWT.
            let public = op["security"].as_array().is_some_and(Vec::is_empty);
            assert_eq!(
                public,
                crate::api::statics::is_public_path(&path.replace(['{', '}'], "")),
                "{method} {path}: documented security differs from the JWT check"
            );
            if !public {
                assert!(
                    responses.contains_key("403"),
                    "{method} {path}: no 403 (JWT)"
                );
            }
        }
    }
}
