//! How a test's stores reach its database: directly, or through a PgBouncer of the test's own.

use reward_store_postgres::testing::{server_url, ScratchDatabase};
use reward_store_postgres::{ConnectOptions, Statements};

use super::pgbouncer::PgBouncer;

/// How the stores reach the database.
#[derive(Clone, Copy)]
pub enum Route {
    Direct,
    /// Through PgBouncer in transaction mode, with statements unnamed, listening directly.
    ThroughPgBouncer,
}

/// Where stores on `route` connect to `database`: the URL, the options, and the PgBouncer in
/// between (to be dropped after the stores). `None` when PgBouncer is missing (said once).
pub async fn connect_to(
    route: Route,
    database: &ScratchDatabase,
) -> Option<(String, ConnectOptions, Option<PgBouncer>)> {
    Some(match route {
        Route::Direct => (database.url().to_owned(), ConnectOptions::default(), None),
        Route::ThroughPgBouncer => {
            let bouncer = PgBouncer::start(&server_url()).await?;
            let options = ConnectOptions {
                listen_url: Some(database.url().to_owned()),
                statements: Statements::Unnamed,
                ..ConnectOptions::default()
            };
            (bouncer.url_for(database.url()), options, Some(bouncer))
        }
    })
}
