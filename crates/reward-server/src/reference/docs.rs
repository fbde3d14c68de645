//! `/docs`: the API reference as server-rendered HTML, made from the same OpenAPI document as
//! `/openapi.json` (so it cannot drift from the code), plus a page per event type.

use reward_core::event::EventType;
use serde_json::Value;

use super::html::{escape, json_block, page};
use super::openapi::{event_payload_schema, event_schema_name};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The `#/components/schemas/X` name a schema refers to, if it is a reference.
fn reference_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.rsplit('/').next())
}

fn schema_summary(schema: &Value) -> String {
    if let Some(name) = reference_name(schema) {
        return format!("<a href=\"#schema-{0}\"><code>{0}</code></a>", escape(name));
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_summary(items));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = options.iter().map(schema_summary).collect();
            return parts.join(" or ");
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "value".to_owned(),
    };
    format!("<code>{}</code>", escape(&kind))
}

fn operation_html(method: &str, path: &str, operation: &Value) -> String {
    let mut html = format!(
        "<section class=\"op\" id=\"{anchor}\"><h3><span class=\"method {method}\">{upper}</span><code>{path}</code></h3>",
        anchor = escape(&format!("{method}-{path}")),
        upper = method.to_uppercase(),
        path = escape(path),
    );
    if let Some(summary) = operation.get("summary").and_then(Value::as_str) {
        html.push_str(&format!("<p><strong>{}</strong></p>", escape(summary)));
    }
    if let Some(description) = operation.get("description").and_then(Value::as_str) {
        html.push_str(&format!("<p>{}</p>", escape(description)));
    }
    if let Some(parameters) = operation.get("parameters").and_then(Value::as_array) {
        html.push_str(
            "<div class=\"table-scroll\"><table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>",
        );
        for parameter in parameters {
            html.push_str(&format!(
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(parameter["name"].as_str().unwrap_or("")),
                if parameter["required"] == true {
                    " <span class=\"muted\">required</span>"
                } else {
                    ""
                },
                escape(parameter["in"].as_str().unwrap_or("")),
                schema_summary(&parameter["schema"]),
                escape(parameter["description"].as_str().unwrap_or("")),
            ));
        }
        html.push_str("</table></div>");
    }
    if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") {
        html.push_str(&format!("<p>Request body: {}</p>", schema_summary(schema)));
    }
    if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
        html.push_str(
            "<div class=\"table-scroll\"><table><tr><th>status</th><th>meaning</th><th>body</th></tr>",
        );
        for (status, response) in responses {
            let body = response
                .pointer("/content/application~1json/schema")
                .map(schema_summary)
                .unwrap_or_default();
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(status),
                escape(response["description"].as_str().unwrap_or("")),
                body
            ));
        }
        html.push_str("</table></div>");
    }
    html.push_str("</section>");
    html
}

const INTRODUCTION: &str = "<h1>Reward API Reference</h1>\
<p>Every <code>/v1</code> route takes <code>Authorization: Bearer &lt;api_key&gt;</code>. Bodies are JSON \
(at most 256 KiB). Errors answer a 4xx status and <code>{\"error\": {\"code\", \"message\", \"field\"?}}</code>: \
JSON that does not parse is 400, a missing field, wrong type or invalid value 422. Lists take \
<code>?limit=</code> (1–100, default 20) and <code>?cursor=</code> and answer \
<code>{\"data\": [...], \"next_cursor\"}</code>, newest first. The same reference as a machine-readable \
document: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>";

/// `/docs`: every operation, grouped by tag, then every schema.
pub fn index(document: &Value) -> String {
    let mut by_tag: Vec<(String, Vec<String>)> = Vec::new();
    let mut toc = String::from("<ul class=\"toc\">");
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let tag = operation
                    .pointer("/tags/0")
                    .and_then(Value::as_str)
                    .unwrap_or("Other")
                    .to_owned();
                let html = operation_html(method, path, operation);
                match by_tag.iter_mut().find(|(name, _)| *name == tag) {
                    Some((_, operations)) => operations.push(html),
                    None => by_tag.push((tag, vec![html])),
                }
                toc.push_str(&format!(
                    "<li><a href=\"#{}\">{} {}</a></li>",
                    escape(&format!("{method}-{path}")),
                    method.to_uppercase(),
                    escape(path)
                ));
            }
        }
    }
    toc.push_str("</ul>");
    let mut body = String::from(INTRODUCTION);
    body.push_str("<h2>Webhook events</h2><ul>");
    for kind in EventType::ALL {
        body.push_str(&format!(
            "<li><a href=\"/docs/events/{0}\"><code>{0}</code></a>: {1}</li>",
            kind.as_str(),
            escape(kind.description())
        ));
    }
    body.push_str("</ul><h2>Operations</h2>");
    body.push_str(&toc);
    for (tag, operations) in by_tag {
        body.push_str(&format!("<h2>{}</h2>", escape(&tag)));
        for operation in operations {
            body.push_str(&operation);
        }
    }
    body.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            body.push_str(&format!(
                "<h3 id=\"schema-{0}\"><code>{0}</code></h3>{1}",
                escape(name),
                json_block(schema)
            ));
        }
    }
    page("API", &body)
}

/// `/docs/events`: the event types.
pub fn events_index() -> String {
    let mut body = String::from("<h1>Webhook events</h1><p>Each event is a signed JSON POST to your endpoint. Pick one:</p><ul>");
    for kind in EventType::ALL {
        body.push_str(&format!(
            "<li><a href=\"/docs/events/{0}\"><code>{0}</code></a>: {1}</li>",
            kind.as_str(),
            escape(kind.description())
        ));
    }
    body.push_str("</ul>");
    page("Events", &body)
}

const VERIFYING: &str = "<h2>Verifying the signature</h2>\
<p>Every delivery carries the <a href=\"https://www.standardwebhooks.com/\">Standard Webhooks</a> headers \
<code>webhook-id</code>, <code>webhook-timestamp</code> and <code>webhook-signature</code>. To verify:</p>\
<ol><li>Take your webhook's secret (<code>whsec_...</code>) and base64-decode the part after <code>whsec_</code>: that is the key.</li>\
<li>Build the signed content <code>{webhook-id}.{webhook-timestamp}.{raw request body}</code>, using the body's bytes exactly as received.</li>\
<li>Compute HMAC-SHA256 of it with the key and base64-encode the result.</li>\
<li>Accept when any space-separated <code>v1,&lt;signature&gt;</code> entry of <code>webhook-signature</code> matches, compared in constant time. During a secret rotation there are two entries for 24 hours.</li>\
<li>Refuse timestamps more than 5 minutes from your clock, to stop replays.</li></ol>\
<p>Any Standard Webhooks library does all of this (for example <code>standardwebhooks</code> for Python, JavaScript or Rust). \
To try it locally: <code>reward listen --secret whsec_... --port 9000</code> verifies and prints each event. \
Answer 2xx within the timeout to acknowledge; anything else is retried with exponential backoff, and \
the same <code>webhook-id</code> tells you a retry from a new event.</p>";

/// `/docs/events/{type}`: when it fires, its JSON Schema, an example and how to verify it.
pub fn event_page(kind: EventType) -> String {
    let body = format!(
        "<h1><code>{name}</code></h1><p>{description}</p>\
         <h2>Example</h2>{example}<h2>Payload schema</h2><p class=\"muted\">Component <code>{component}</code> in \
         <a href=\"/openapi.json\">/openapi.json</a>; the <code>data</code> schema alone is also in \
         <code>GET /v1/event_types</code>.</p>{schema}{VERIFYING}",
        name = kind.as_str(),
        description = escape(kind.description()),
        example = json_block(&kind.example()),
        component = event_schema_name(kind),
        schema = json_block(&event_payload_schema(kind)),
    );
    page(kind.as_str(), &body)
}
