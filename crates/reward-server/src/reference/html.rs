//! Tiny HTML helpers for the reference pages: escaping, and the page frame with its stylesheet.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Pretty JSON inside a `<pre><code>` block.
pub fn json_block(value: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("<pre><code>{}</code></pre>", escape(&pretty))
}

const STYLE: &str = include_str!("reference.css");

/// A whole page: title, navigation and body. No scripts: it reads without JavaScript.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Reward API Reference</title><style>{STYLE}</style></head>\
         <body><header><a class=\"brand\" href=\"/docs\">Reward API Reference</a>\
         <nav><a href=\"/docs\">API</a> <a href=\"/docs/events\">Events</a> \
         <a href=\"/openapi.json\">openapi.json</a></nav></header><main>{body}</main></body></html>",
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
