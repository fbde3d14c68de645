//! What a copied row goes through besides being carried: every sealed value is opened with the
//! source's key and sealed again with the target's under the same context (so it opens in the
//! same row of the target, and only there), and claims of the stopped source are cleared.
//! Values stored plain (written before encryption) are sealed on the way.

use reward_core::rotation::Retired;
use thiserror::Error;

use super::{Cell, Row, Table, Treatment};
use crate::columns::headers_context;
use crate::idempotent::sealing_context_of;
use crate::secrets::{previous_from_stored, previous_to_stored, SecretCipher};

/// A row whose sealed value cannot be carried.
#[derive(Debug, Error)]
pub enum ResealError {
    /// Almost always the wrong source key.
    #[error("{table} {row}: {column} does not open with the source's key ({reason})")]
    DoesNotOpen {
        table: &'static str,
        row: String,
        column: &'static str,
        reason: String,
    },
    #[error("{table}: {column} needs column {needed} beside it, which the row lacks")]
    MissingContext {
        table: &'static str,
        column: &'static str,
        needed: &'static str,
    },
}

/// The keys a copy opens and seals with.
pub struct Keys<'a> {
    pub source: &'a SecretCipher,
    pub target: &'a SecretCipher,
}

/// Makes `row` (of `table`) ready for the target, in place.
pub fn reseal_row(table: &Table, row: &mut Row, keys: &Keys<'_>) -> Result<(), ResealError> {
    for (index, column) in table.columns.iter().enumerate() {
        let context = match column.treatment {
            Treatment::AsIs => continue,
            Treatment::ClearedClaim => {
                row[index] = Cell::Null;
                continue;
            }
            Treatment::SealedSecret
            | Treatment::SealedPreviousSecrets
            | Treatment::SealedHeaders => text_of(table, row, column.name, "id")?.to_owned(),
            Treatment::SealedAnswer => sealing_context_of(
                text_of(table, row, column.name, "account_id")?,
                text_of(table, row, column.name, "key")?,
            ),
        };
        let Cell::Text(stored) = &row[index] else {
            // NULL: nothing sealed (an answer still reserved).
            continue;
        };
        let fails = |reason: String| ResealError::DoesNotOpen {
            table: table.name,
            row: context.clone(),
            column: column.name,
            reason,
        };
        let resealed = match column.treatment {
            Treatment::SealedSecret => {
                let secret = keys
                    .source
                    .open(&context, stored)
                    .map_err(|e| fails(e.to_string()))?;
                keys.target.seal(&context, &secret)
            }
            Treatment::SealedPreviousSecrets => {
                let previous = previous_from_stored(&context, stored)
                    .map_err(|e| fails(e.to_string()))?
                    .into_iter()
                    .map(|retired| {
                        let secret = keys.source.open(&context, &retired.secret)?;
                        Ok(Retired {
                            secret: keys.target.seal(&context, &secret),
                            expires_at: retired.expires_at,
                        })
                    })
                    .collect::<Result<Vec<_>, crate::StoreError>>()
                    .map_err(|e| fails(e.to_string()))?;
                previous_to_stored(&previous)
            }
            Treatment::SealedHeaders if stored.is_empty() => continue,
            Treatment::SealedHeaders => {
                let sealing = headers_context(&context);
                let headers = keys
                    .source
                    .open_text(&sealing, stored)
                    .map_err(|e| fails(e.to_string()))?;
                keys.target.seal_text(&sealing, &headers)
            }
            Treatment::SealedAnswer => {
                let answer = keys
                    .source
                    .open_text(&context, stored)
                    .map_err(|e| fails(e.to_string()))?;
                keys.target.seal_text(&context, &answer)
            }
            Treatment::AsIs | Treatment::ClearedClaim => continue,
        };
        row[index] = Cell::Text(resealed);
    }
    Ok(())
}

/// The text of `needed` in `row`: part of what `column` is sealed under.
fn text_of<'r>(
    table: &Table,
    row: &'r Row,
    column: &'static str,
    needed: &'static str,
) -> Result<&'r str, ResealError> {
    table
        .position(needed)
        .and_then(|index| row.get(index))
        .and_then(Cell::as_text)
        .ok_or(ResealError::MissingContext {
            table: table.name,
            column,
            needed,
        })
}

#[cfg(test)]
mod tests {
    use reward_core::signing::WebhookSecret;
    use reward_core::time::Timestamp;

    use super::*;
    use crate::transfer::TABLES;

    fn table(name: &str) -> &'static Table {
        TABLES
            .iter()
            .find(|table| table.name == name)
            .expect("table")
    }

    fn cell(table: &Table, row: &Row, column: &str) -> Cell {
        row[table.position(column).expect("column")].clone()
    }

    fn text(cell: Cell) -> String {
        match cell {
            Cell::Text(text) => text,
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn a_webhook_row_opens_with_the_target_key_only() {
        let (source, target) = (SecretCipher::new([1; 32]), SecretCipher::new([2; 32]));
        let webhooks = table("webhooks");
        let (secret, old) = (WebhookSecret::generate(), WebhookSecret::generate());
        let mut row: Row = webhooks
            .columns
            .iter()
            .map(|column| match column.name {
                "id" => Cell::Text("wh_1".into()),
                "secret" => Cell::Text(source.seal("wh_1", &secret)),
                "previous_secrets" => Cell::Text(previous_to_stored(&[
                    Retired {
                        secret: source.seal("wh_1", &old),
                        expires_at: Timestamp::from_millis(9),
                    },
                    // From before encryption: plain, sealed on the way.
                    Retired {
                        secret: old.expose().to_owned(),
                        expires_at: Timestamp::from_millis(8),
                    },
                ])),
                "headers" => Cell::Text(source.seal_text("wh_1/headers", r#"{"X-A":"b"}"#)),
                _ => Cell::Null,
            })
            .collect();
        let keys = Keys {
            source: &source,
            target: &target,
        };
        reseal_row(webhooks, &mut row, &keys).expect("resealed");
        let stored = text(cell(webhooks, &row, "secret"));
        assert_eq!(target.open("wh_1", &stored).expect("opens"), secret);
        assert!(source.open("wh_1", &stored).is_err());
        let previous = text(cell(webhooks, &row, "previous_secrets"));
        assert!(!previous.contains("whsec_"));
        let opened = target.open_previous("wh_1", &previous).expect("opens");
        assert_eq!(opened.len(), 2);
        assert!(opened.iter().all(|retired| retired.secret == old));
        assert_eq!(opened[0].expires_at.as_millis(), 9);
        let headers = text(cell(webhooks, &row, "headers"));
        assert_eq!(
            target.open_text("wh_1/headers", &headers).expect("opens"),
            r#"{"X-A":"b"}"#
        );

        // The row is now sealed with the target's key: as a source with the other key, it is
        // refused, naming the column, rather than carried on.
        let mut again = row.clone();
        assert!(matches!(
            reseal_row(webhooks, &mut again, &keys),
            Err(ResealError::DoesNotOpen {
                column: "secret",
                ..
            })
        ));
    }

    #[test]
    fn answers_and_claims_and_empty_headers() {
        let (source, target) = (SecretCipher::new([1; 32]), SecretCipher::new([2; 32]));
        let keys = Keys {
            source: &source,
            target: &target,
        };
        let answers = table("idempotent_responses");
        let context = "idempotent:acc_1/k1";
        let mut row: Row = answers
            .columns
            .iter()
            .map(|column| match column.name {
                "account_id" => Cell::Text("acc_1".into()),
                "key" => Cell::Text("k1".into()),
                "body" => Cell::Text(source.seal_text(context, "{}")),
                _ => Cell::Null,
            })
            .collect();
        reseal_row(answers, &mut row, &keys).expect("resealed");
        let body = text(cell(answers, &row, "body"));
        assert_eq!(target.open_text(context, &body).expect("opens"), "{}");

        let deliveries = table("deliveries");
        let mut row: Row = deliveries
            .columns
            .iter()
            .map(|_| Cell::Integer(7))
            .collect();
        reseal_row(deliveries, &mut row, &keys).expect("carried");
        assert_eq!(cell(deliveries, &row, "lease_expires_at"), Cell::Null);
        assert_eq!(cell(deliveries, &row, "next_attempt_at"), Cell::Integer(7));

        let webhooks = table("webhooks");
        let mut row: Row = webhooks
            .columns
            .iter()
            .map(|column| match column.name {
                "id" => Cell::Text("wh_1".into()),
                "secret" => Cell::Text(WebhookSecret::generate().expose().to_owned()),
                "previous_secrets" => Cell::Text("[]".into()),
                "headers" => Cell::Text(String::new()),
                _ => Cell::Null,
            })
            .collect();
        reseal_row(webhooks, &mut row, &keys).expect("resealed");
        assert_eq!(cell(webhooks, &row, "headers"), Cell::Text(String::new()));
        assert!(!SecretCipher::is_plain(&text(cell(
            webhooks, &row, "secret"
        ))));
    }
}
