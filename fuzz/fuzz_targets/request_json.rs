//! Request bodies, read as every handler reads them (`api::input::JsonObject`): never a panic;
//! bytes that are not JSON give 400 invalid_json, JSON that is not an object 422, and every
//! field reader gives its type or a 4xx naming the field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reward_server::api::input::JsonObject;

fuzz_target!(|input: (&[u8], &str)| {
    let (bytes, field) = input;
    let parsed = serde_json::from_slice::<serde_json::Value>(bytes);
    let object = match JsonObject::parse(bytes) {
        Ok(object) => object,
        Err(error) => {
            match parsed {
                Ok(serde_json::Value::Object(_)) => panic!("an object was refused"),
                Ok(_) => assert_eq!(error.status.as_u16(), 422),
                Err(_) => assert_eq!(error.status.as_u16(), 400),
            }
            return;
        }
    };
    drop(object);
    let fresh = || JsonObject::parse(bytes).expect("parsed once");
    let named = |error: reward_server::api::error::ApiError| {
        assert!(error.status.is_client_error());
        assert!(error.field.is_some());
    };
    let _ = fresh()
        .only(&["name", "url", "events", "enabled"])
        .map_err(named);
    let _ = fresh().string(field).map_err(named);
    let _ = fresh().optional_string(field).map_err(named);
    let _ = fresh().bool_if_present(field).map_err(named);
    let _ = fresh().string_list(field).map_err(named);
    let _ = fresh().integer(field).map_err(named);
    let _ = fresh().number(field).map_err(named);
    let _ = fresh().optional_number(field).map_err(named);
    if let Ok(Some(nested)) = fresh().optional_object(field) {
        let _ = nested.only(&["per_unit", "fixed"]).map_err(named);
    }
});
