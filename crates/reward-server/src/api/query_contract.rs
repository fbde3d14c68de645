//! The query parameters each authenticated API operation takes, read from the API's own OpenAPI
//! description: any other is refused (422 `unknown_field`), as an unknown field of a body is, so a
//! misspelt filter (`GET /v1/deliveries?staus=failed`) cannot quietly list everything. A
//! parameter given twice is refused too (422 `invalid_value`): which of the two counts would be a
//! guess. `/healthz` needs no key and is not checked: uptime checks add what they like.
//!
//! The document is the contract generated clients are built from, so a parameter a handler reads
//! but the document leaves out is refused before the handler runs: a test of the parameter finds
//! the omission at once.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::extract::{MatchedPath, Query};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::invalid_query;

/// Query parameter names by (method, route as written in the document, `/v1/webhooks/{id}`).
type Contract = HashMap<(Method, String), Vec<String>>;

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let (_, document) = super::documented_routes().split_for_parts();
    serde_json::to_value(&document)
        .map(|document| contract_of(&document))
        .unwrap_or_default()
});

/// Refuses a query parameter the matched operation does not document, or one given twice.
/// Requests without a query string (every write the hot path makes) return at once.
pub fn check(parts: &Parts) -> ApiResult<()> {
    if parts.uri.query().is_none_or(str::is_empty) {
        return Ok(());
    }
    let Some(route) = parts.extensions.get::<MatchedPath>() else {
        return Ok(());
    };
    let Some(known) = CONTRACT.get(&(parts.method.clone(), route.as_str().to_owned())) else {
        return Ok(());
    };
    let Query(pairs) =
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(invalid_query)?;
    check_pairs(&pairs, known)
}

fn check_pairs(pairs: &[(String, String)], known: &[String]) -> ApiResult<()> {
    let mut seen = HashSet::with_capacity(pairs.len());
    for (name, _) in pairs {
        if !known.iter().any(|known| known == name) {
            let takes = if known.is_empty() {
                String::from("This operation takes no query parameters")
            } else {
                format!("Known parameters: {}", known.join(", "))
            };
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
                format!("Unknown query parameter '{name}'. {takes}."),
            )
            .with_field(name.as_str()));
        }
        if !seen.insert(name.as_str()) {
            return Err(ApiError::invalid(
                name,
                format!("The query parameter '{name}' is given more than once; give it once."),
            ));
        }
    }
    Ok(())
}

/// Every operation that names a security scheme, with the names of its query parameters.
fn contract_of(document: &Value) -> Contract {
    let mut contract = Contract::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return contract;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        let shared = query_names(item.get("parameters"));
        for (method, operation) in item {
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let authenticated = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|schemes| !schemes.is_empty());
            if !authenticated {
                continue;
            }
            let mut names = shared.clone();
            names.extend(query_names(operation.get("parameters")));
            contract.insert((method, path.clone()), names);
        }
    }
    contract
}

fn query_names(parameters: Option<&Value>) -> Vec<String> {
    parameters
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|parameter| parameter.get("in").and_then(Value::as_str) == Some("query"))
        .filter_map(|parameter| parameter.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn the_contract_holds_each_authenticated_operations_parameters() {
        let search = &CONTRACT[&(Method::GET, String::from("/v1/deliveries"))];
        for name in ["limit", "cursor", "webhook_id", "event_type", "status"] {
            assert!(search.contains(&name.to_owned()), "{name} in {search:?}");
        }
        assert!(CONTRACT[&(Method::GET, String::from("/v1/webhooks/{id}"))].is_empty());
        assert!(CONTRACT.contains_key(&(Method::POST, String::from("/v1/trigger_events"))));
        // Needs no key: not checked.
        assert!(!CONTRACT.contains_key(&(Method::GET, String::from("/healthz"))));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        let takes = known(&["limit", "status"]);
        assert!(check_pairs(&pairs(&[("limit", "1")]), &takes).is_ok());

        let error = check_pairs(&pairs(&[("staus", "failed")]), &takes).expect_err("unknown");
        assert_eq!(error.code, "unknown_field");
        assert_eq!(error.field.as_deref(), Some("staus"));
        assert!(error.message.contains("limit, status"), "{}", error.message);

        let error = check_pairs(&pairs(&[("a", "1")]), &[]).expect_err("none taken");
        assert!(error.message.contains("takes no query parameters"));

        let twice = pairs(&[("status", "failed"), ("status", "pending")]);
        let error = check_pairs(&twice, &takes).expect_err("twice");
        assert_eq!(error.code, "invalid_value");
        assert_eq!(error.field.as_deref(), Some("status"));
    }
}
