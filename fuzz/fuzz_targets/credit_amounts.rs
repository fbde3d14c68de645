//! Decimal amounts: a trigger event's `value` and a rule's `per_unit`, as JSON numbers in any
//! spelling. Never a panic, never negative points; `fixed` ignores the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reward_core::credit::CreditRule;

fuzz_target!(|input: (&str, &str, i64)| {
    let (value, per_unit, fixed) = input;
    let value: Option<serde_json::Number> = serde_json::from_str(value).ok();
    let Ok(per_unit) = serde_json::from_str::<serde_json::Number>(per_unit) else {
        return;
    };
    assert!(CreditRule::PerUnit(per_unit).points_for(value.as_ref()) >= 0);
    assert_eq!(
        CreditRule::Fixed(fixed).points_for(value.as_ref()),
        fixed.max(0)
    );
});
