//! The tables `reward copy` moves and their columns: the one place that lists them. Both
//! backends' migrations must agree with it: a unit test of `reward-store-sqlite` (export.rs) and
//! the copy's integration test on PostgreSQL (crates/reward/tests/it/copy.rs) fail while a column
//! of either schema is missing here (its table not named in [`NOT_COPIED`]).

/// How a column's values are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TEXT in both schemas.
    Text,
    /// INTEGER in SQLite; BIGINT, INTEGER or SMALLINT in PostgreSQL.
    Integer,
    /// 0/1 in SQLite, BOOLEAN in PostgreSQL.
    Flag,
}

/// What a value goes through on its way (see [`super::reseal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Copied as it is.
    AsIs,
    /// A webhook's secret, sealed under the webhook's id (`id`).
    SealedSecret,
    /// A webhook's `previous_secrets`: a JSON list of sealed secrets.
    SealedPreviousSecrets,
    /// A webhook's extra headers, sealed under its id (`id`); '' for none.
    SealedHeaders,
    /// A kept answer to an `Idempotency-Key`, sealed under `account_id` and `key`; NULL while
    /// reserved.
    SealedAnswer,
    /// A claim by a process of the source (a delivery's lease). The source is stopped, so nobody
    /// holds it any more: copied as NULL, and the target's nodes may claim the row at once.
    ClearedClaim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub treatment: Treatment,
}

/// A table and its columns, in the order rows are read, carried and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    /// Where a column sits in a row of this table.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    /// The column names, comma-separated, for a statement.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|column| column.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
        treatment: Treatment::AsIs,
    }
}

const fn integer(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Integer,
        treatment: Treatment::AsIs,
    }
}

const fn flag(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Flag,
        treatment: Treatment::AsIs,
    }
}

const fn sealed(name: &'static str, treatment: Treatment) -> Column {
    Column {
        name,
        kind: Kind::Text,
        treatment,
    }
}

/// Every table copied, in copy order (an account before what it owns, a webhook before its
/// deliveries, though neither schema enforces it).
pub const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        columns: &[text("id"), text("name"), integer("created_at")],
    },
    Table {
        name: "api_keys",
        columns: &[
            text("account_id"),
            text("id"),
            text("name"),
            text("key_hash"),
            text("display_prefix"),
            integer("created_at"),
            integer("last_used_at"),
            integer("revoked_at"),
        ],
    },
    Table {
        name: "sessions",
        columns: &[
            text("account_id"),
            text("token_hash"),
            text("api_key_id"),
            integer("created_at"),
            integer("expires_at"),
        ],
    },
    Table {
        name: "webhooks",
        columns: &[
            text("account_id"),
            text("id"),
            text("name"),
            text("url"),
            text("events"),
            flag("enabled"),
            text("disabled_reason"),
            sealed("secret", Treatment::SealedSecret),
            integer("created_at"),
            integer("updated_at"),
            sealed("previous_secrets", Treatment::SealedPreviousSecrets),
            text("filter"),
            sealed("headers", Treatment::SealedHeaders),
            text("description"),
            text("metadata"),
            integer("rate_limit"),
            integer("rate_next_at"),
            text("ordering"),
        ],
    },
    Table {
        name: "triggers",
        columns: &[
            text("account_id"),
            text("id"),
            text("name"),
            text("rule_kind"),
            text("rule_amount"),
            integer("created_at"),
            integer("updated_at"),
        ],
    },
    Table {
        name: "users",
        columns: &[
            text("account_id"),
            text("id"),
            integer("balance"),
            integer("created_at"),
            integer("sequence"),
            integer("event_position"),
        ],
    },
    Table {
        name: "trigger_events",
        columns: &[
            text("account_id"),
            text("id"),
            text("user_id"),
            text("trigger_id"),
            text("value"),
            integer("credit_points_issued"),
            integer("created_at"),
        ],
    },
    Table {
        name: "idempotency_keys",
        columns: &[
            text("account_id"),
            text("key"),
            text("request_fingerprint"),
            text("trigger_event_id"),
            integer("created_at"),
        ],
    },
    Table {
        name: "idempotent_responses",
        columns: &[
            text("account_id"),
            text("key"),
            text("request_fingerprint"),
            integer("status"),
            sealed("body", Treatment::SealedAnswer),
            integer("created_at"),
        ],
    },
    Table {
        name: "events",
        columns: &[
            text("account_id"),
            text("id"),
            text("event_type"),
            integer("created_at"),
            // The exact bytes sent and signed: text in, the same text out.
            text("payload"),
            text("user_id"),
            integer("user_position"),
            // The W3C traceparent of the span that recorded the event: a copied event's later
            // attempts still join the trace of the request that recorded it.
            text("trace_parent"),
        ],
    },
    Table {
        name: "deliveries",
        columns: &[
            text("account_id"),
            text("id"),
            text("webhook_id"),
            text("event_id"),
            text("event_type"),
            text("status"),
            integer("attempt_count"),
            integer("schedule_attempts"),
            integer("next_attempt_at"),
            integer("manual_attempt_at"),
            integer("last_status_code"),
            Column {
                name: "lease_expires_at",
                kind: Kind::Integer,
                treatment: Treatment::ClearedClaim,
            },
            integer("created_at"),
            integer("updated_at"),
            text("order_user"),
            integer("order_position"),
        ],
    },
    Table {
        name: "attempts",
        columns: &[
            text("account_id"),
            text("delivery_id"),
            text("id"),
            integer("number"),
            integer("started_at"),
            integer("duration_ms"),
            integer("status_code"),
            text("response_body"),
            text("error"),
        ],
    },
    Table {
        name: "attempt_rollups",
        columns: &[
            text("account_id"),
            text("webhook_id"),
            integer("hour_start"),
            integer("latency_bucket"),
            integer("succeeded"),
            integer("failed"),
        ],
    },
    Table {
        name: "webhook_failure_runs",
        columns: &[
            text("account_id"),
            text("webhook_id"),
            integer("failing_since"),
        ],
    },
];

/// Tables of a schema that are not copied, and why.
pub const NOT_COPIED: &[(&str, &str)] = &[
    (
        "webhook_deletions",
        "SQLite only: webhooks deleted whose deliveries were still being removed; those \
         deliveries are left out of the copy instead",
    ),
    (
        "reward_migrations",
        "PostgreSQL only: written by its own migrations",
    ),
    (
        "delivery_keys",
        "PostgreSQL only: the deliveries' search keys, written by the target from the copied \
         deliveries",
    ),
];

/// Columns of the PostgreSQL schema only, left to their default by the copy, and why.
pub const TARGET_DEFAULTED: &[(&str, &str, &str)] = &[(
    "attempt_rollups",
    "shard",
    "PostgreSQL only: which node counted the row (one per node, summed when read); \
     copied rows are shard 0",
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_and_column_is_named_once() {
        let mut tables: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(tables.len(), TABLES.len());
        for table in TABLES {
            let mut columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
            columns.sort_unstable();
            columns.dedup();
            assert_eq!(columns.len(), table.columns.len(), "{}", table.name);
        }
    }

    #[test]
    fn sealed_columns_have_the_columns_their_context_needs() {
        for table in TABLES {
            for column in table.columns {
                let needs: &[&str] = match column.treatment {
                    Treatment::SealedSecret
                    | Treatment::SealedPreviousSecrets
                    | Treatment::SealedHeaders => &["id"],
                    Treatment::SealedAnswer => &["account_id", "key"],
                    Treatment::AsIs | Treatment::ClearedClaim => &[],
                };
                for needed in needs {
                    assert!(table.position(needed).is_some(), "{}", table.name);
                }
            }
        }
    }
}
