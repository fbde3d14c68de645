//! Which event types a webhook receives: a list, or every type (`["*"]`).

use crate::event::EventType;
use crate::names::Invalid;

/// The name that stands for every event type, also those added after the webhook was made.
pub const EVERY_TYPE: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelection {
    /// `["*"]`: every type, whenever it was added.
    Every,
    /// These types (non-empty, no repeats, in the order given).
    Only(Vec<EventType>),
}

impl EventSelection {
    /// From the names a customer sent. `*` must stand alone; unknown names and an empty list are
    /// refused; a type named twice counts once. `most` bounds the list's length.
    pub fn parse<S: AsRef<str>>(names: &[S], most: usize) -> Result<Self, Invalid> {
        if names.is_empty() {
            return Err(Invalid(
                "Subscribe to at least one event type, or [\"*\"] for every type.".into(),
            ));
        }
        if names.len() > most {
            return Err(Invalid(format!("List at most {most} event types.")));
        }
        if names.iter().any(|name| name.as_ref() == EVERY_TYPE) {
            return if names.len() == 1 {
                Ok(Self::Every)
            } else {
                Err(Invalid(
                    "\"*\" stands alone: it already means every event type.".into(),
                ))
            };
        }
        let mut types = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let kind = EventType::parse(name).ok_or_else(|| unknown(name))?;
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        Ok(Self::Only(types))
    }

    /// Whether an event of this type goes to the webhook.
    pub fn includes(&self, kind: EventType) -> bool {
        match self {
            Self::Every => true,
            Self::Only(types) => types.contains(&kind),
        }
    }

    /// The names as the API shows them and the stores keep them: `["*"]`, or each type.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Self::Every => vec![EVERY_TYPE],
            Self::Only(types) => types.iter().map(|kind| kind.as_str()).collect(),
        }
    }

    /// The selection as stored (a JSON list of names).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.names()).unwrap_or_else(|_| "[]".into())
    }

    /// A selection read back from [`Self::to_json`]; `None` when the text is not one (a corrupt
    /// row). An empty list reads as an empty `Only`, which receives nothing.
    pub fn from_json(text: &str) -> Option<Self> {
        let names: Vec<&str> = serde_json::from_str(text).ok()?;
        if names == [EVERY_TYPE] {
            return Some(Self::Every);
        }
        names
            .iter()
            .map(|name| EventType::parse(name))
            .collect::<Option<Vec<_>>>()
            .map(Self::Only)
    }
}

fn unknown(name: &str) -> Invalid {
    let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    Invalid(format!(
        "Unknown event type '{name}'. Known types: {} (or [\"*\"] alone for every type).",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_includes_all_and_round_trips() {
        let every = EventSelection::parse(&["*"], 10).expect("valid");
        assert!(EventType::ALL.iter().all(|kind| every.includes(*kind)));
        assert_eq!(every.to_json(), r#"["*"]"#);
        assert_eq!(EventSelection::from_json(&every.to_json()), Some(every));
    }

    #[test]
    fn a_list_includes_only_its_types_once_each() {
        let only = EventSelection::parse(&["trigger_event.created", "trigger_event.created"], 10)
            .expect("valid");
        assert_eq!(
            only,
            EventSelection::Only(vec![EventType::TriggerEventCreated])
        );
        assert!(!only.includes(EventType::BalanceCreditPointsIssued));
        assert_eq!(EventSelection::from_json(&only.to_json()), Some(only));
    }

    #[test]
    fn star_beside_a_type_empty_lists_and_unknown_types_are_refused() {
        for names in [vec!["*", "trigger_event.created"], vec![], vec!["nope"]] {
            assert!(EventSelection::parse(&names, 10).is_err(), "{names:?}");
        }
        assert!(EventSelection::parse(&["trigger_event.created"; 3], 2).is_err());
        assert_eq!(EventSelection::from_json("not json"), None);
    }
}
