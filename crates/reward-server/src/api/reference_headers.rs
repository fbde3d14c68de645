//! The dashboard's security headers on the API reference (`/docs`, `/openapi.json`): nothing but
//! the pages' own stylesheet may load, no script may run, no other site may frame a page, and
//! no browser may sniff a type.
//!
//! The reference pages carry their stylesheet inline, so the policy allows exactly that
//! stylesheet by its SHA-256 (CSP Level 2 hash sources), computed from a rendered page when the
//! router is built: a change to the stylesheet cannot leave it blocked.

use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::map_response;
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reward_core::digest::sha256_hex;

/// `router` with the headers on every response.
pub fn add<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let policy = content_security_policy(&crate::reference::docs::events_index());
    let policy = HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static(STRICTEST_POLICY));
    router.layer(map_response(move |response: Response| {
        let policy = policy.clone();
        async move { with_headers(response, policy) }
    }))
}

/// Used only if the computed policy were not a valid header value: pages then lose their
/// styles, never their protection.
const STRICTEST_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn with_headers(mut response: Response, policy: HeaderValue) -> Response {
    const HEADERS: [(HeaderName, &str); 3] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The policy for pages shaped like `page`: its inline stylesheets allowed by hash, nothing else.
fn content_security_policy(page: &str) -> String {
    let styles: Vec<String> = inline_styles(page)
        .map(|style| format!("'sha256-{}'", sha256_base64(style)))
        .collect();
    let style_src = if styles.is_empty() {
        "'none'".to_owned()
    } else {
        styles.join(" ")
    };
    format!(
        "default-src 'none'; style-src {style_src}; img-src 'self'; \
         form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The text of each `<style>...</style>` element, exactly as the browser hashes it.
fn inline_styles(page: &str) -> impl Iterator<Item = &str> {
    page.split("<style>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</style>").map(|(style, _)| style))
}

fn sha256_base64(text: &str) -> String {
    let hex = sha256_hex(text.as_bytes());
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
        .collect();
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_styles_are_allowed_by_hash_and_nothing_else() {
        let policy = content_security_policy("<head><style>a{}</style></head><style>b{}</style>");
        assert!(policy.contains(&format!("'sha256-{}'", sha256_base64("a{}"))));
        assert!(policy.contains(&format!("'sha256-{}'", sha256_base64("b{}"))));
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("script-src"));
        assert!(content_security_policy("<p>no style</p>").contains("style-src 'none'"));
    }

    #[test]
    fn the_hash_is_base64_of_the_raw_digest() {
        assert_eq!(
            sha256_base64(""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
