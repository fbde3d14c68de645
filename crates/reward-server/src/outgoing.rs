//! What every outgoing HTTP client of ours shares (the delivery sender, the trace exporter):
//! rustls on the `ring` provider with the Web PKI roots built in (no dependence on the host's
//! certificate store), HTTP/1.1, `https` or plain `http` (the sender refuses `http` itself in
//! secure mode, before connecting).

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// Wraps a TCP connector (with its own resolver and timeouts) in our TLS settings.
pub fn https_connector<R>(
    http: HttpConnector<R>,
) -> anyhow::Result<HttpsConnector<HttpConnector<R>>> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}
