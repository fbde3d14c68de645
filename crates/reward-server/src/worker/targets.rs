//! Where deliveries may connect (SPEC §6). In secure mode every address a webhook's host resolves
//! to is checked, and only public ones are handed to the connector: the check and the connection
//! use the same resolution, so DNS rebinding has no second lookup to exploit. Literal IP hosts
//! never reach a resolver, so the sender checks those itself ([`refusal_for_literal_host`]).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use reward_core::names::{is_public_ip, WebhookUrl};

use super::dns::TargetDns;

/// Resolves webhook hosts with [`TargetDns`] (asynchronous, bounded, the system's
/// configuration); in secure mode drops every non-public address (and fails when none is left).
#[derive(Clone)]
pub struct TargetResolver {
    pub public_only: bool,
    pub dns: TargetDns,
}

type Resolved = Result<std::vec::IntoIter<SocketAddr>, Box<dyn std::error::Error + Send + Sync>>;

impl tower_service::Service<Name> for TargetResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Resolved> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let public_only = self.public_only;
        let dns = self.dns.clone();
        Box::pin(async move {
            let host = name.as_str();
            let resolved: Vec<SocketAddr> = dns
                .lookup(host)
                .await?
                .iter()
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if !public_only {
                return Ok(resolved.into_iter());
            }
            let public = public_addresses(resolved);
            if public.is_empty() {
                return Err(format!(
                    "refused: {host} resolves only to non-public addresses (loopback, private, \
                     link-local, multicast, unspecified or metadata)"
                )
                .into());
            }
            Ok(public.into_iter())
        })
    }
}

/// The addresses a secure delivery may connect to.
pub fn public_addresses(resolved: Vec<SocketAddr>) -> Vec<SocketAddr> {
    resolved
        .into_iter()
        .filter(|address| is_public_ip(address.ip()))
        .collect()
}

/// In secure mode, why a URL whose host is a literal IP (or `localhost`) must not be contacted.
pub fn refusal_for_literal_host(url: &WebhookUrl) -> Option<String> {
    let host = url.url().host()?;
    let address: IpAddr = match host {
        url::Host::Ipv4(v4) => v4.into(),
        url::Host::Ipv6(v6) => v6.into(),
        url::Host::Domain(_) => return None,
    };
    (!is_public_ip(address)).then(|| format!("refused: {address} is not a public address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reward_core::names::TargetPolicy;

    #[test]
    fn only_public_addresses_survive() {
        let resolved = vec![
            "127.0.0.1:0".parse().expect("addr"),
            "10.0.0.1:0".parse().expect("addr"),
            "[::1]:0".parse().expect("addr"),
            "93.184.216.34:0".parse().expect("addr"),
        ];
        assert_eq!(
            public_addresses(resolved),
            vec!["93.184.216.34:0".parse().expect("addr")]
        );
    }

    #[test]
    fn literal_private_hosts_are_refused() {
        let url =
            WebhookUrl::parse("http://127.0.0.1:9/x", TargetPolicy::AllowInsecure).expect("url");
        assert!(refusal_for_literal_host(&url).is_some());
        let url =
            WebhookUrl::parse("https://93.184.216.34/x", TargetPolicy::SecureOnly).expect("url");
        assert!(refusal_for_literal_host(&url).is_none());
        let url =
            WebhookUrl::parse("https://example.com/x", TargetPolicy::SecureOnly).expect("url");
        assert!(refusal_for_literal_host(&url).is_none());
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback_addresses() {
        use tower_service::Service;
        let dns = TargetDns::from_system(std::time::Duration::from_secs(3));
        let name: Name = "localhost".parse().expect("name");
        let mut secure = TargetResolver {
            public_only: true,
            dns: dns.clone(),
        };
        let outcome = secure.call(name).await;
        let error = outcome.expect_err("localhost must be refused");
        assert!(error.to_string().contains("refused"), "{error}");
        let name: Name = "localhost".parse().expect("name");
        let mut insecure = TargetResolver {
            public_only: false,
            dns,
        };
        let allowed = insecure.call(name).await;
        assert!(allowed.expect("insecure mode resolves").next().is_some());
    }
}
