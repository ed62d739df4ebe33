//! The address guard of endpoints made through the API: the API must not be a way
//! into the gateway's network.
//!
//! A URL is absolute, without credentials, `https` (or `http` to a host in
//! `webhooks.allow_http_hosts`), and its host must not be, or resolve to, a loopback, private,
//! link-local, shared (100.64/10), multicast, unspecified or otherwise reserved address, IPv4 or
//! IPv6 (an IPv4 address inside an IPv6 one is judged as IPv4). The `url` crate reads a host the
//! way browsers do, so every spelling of an address (`127.1`, `2130706433`, `0x7f.1`,
//! `[::ffff:127.0.0.1]`) is the address it names; a name (`localhost.`) is judged by what it
//! resolves to.
//!
//! The check runs when an endpoint is made or changed, and again at every delivery on the
//! addresses the connection is made to: the deliverer's HTTP client resolves names through
//! [`GuardedResolve`], which hands the connector only addresses that pass, so a name that
//! resolves somewhere else later cannot get through. `webhooks.allow_private_networks` lifts
//! the address rule (the sandbox's demo shop is on loopback). `webhooks.url`, the operator's
//! own configuration, is not guarded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use url::{Host, Url};

use crate::configuration::WebhookSettings;
use crate::domain::validation::FieldError;
use crate::error_code::ErrorCode;

/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns a host name into addresses. The system's resolver in production; tests hold a
/// [`FixedResolver`] and change what a name resolves to.
#[async_trait]
pub trait NameResolver: Send + Sync + 'static {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

#[async_trait]
impl NameResolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// A resolver whose answers the caller sets (tests): a name it was not told of does not resolve.
#[derive(Default)]
pub struct FixedResolver(Mutex<std::collections::HashMap<String, Vec<IpAddr>>>);

impl FixedResolver {
    pub fn set(&self, host: &str, addresses: Vec<IpAddr>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_ascii_lowercase(), addresses);
    }
}

#[async_trait]
impl NameResolver for FixedResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))
    }
}

/// Whether an address is one an endpoint must not reach (unless private networks are allowed).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        // 0.0.0.0/8: "this network", the unspecified address among them.
        || a == 0
        // 100.64.0.0/10: shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24: IETF protocol assignments; 198.18.0.0/15: benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        // 240.0.0.0/4: reserved.
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fe80::/10 link-local, fec0::/10 (deprecated) site-local.
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // fc00::/7: unique local (IPv6's private networks).
        || (first & 0xfe00) == 0xfc00
        // 2001:db8::/32: documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
}

/// The IPv4 address an IPv6 one carries: v4-mapped (`::ffff:a.b.c.d`), v4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && (s[6] != 0 || s[7] > 1))) {
        return Some(low);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The address rules of webhook endpoints, with the resolver they use.
pub struct AddressGuard {
    allow_http_hosts: Vec<String>,
    allow_private_networks: bool,
    resolver: Arc<dyn NameResolver>,
}

impl AddressGuard {
    pub fn new(settings: &WebhookSettings, resolver: Option<Arc<dyn NameResolver>>) -> Self {
        Self {
            allow_http_hosts: settings
                .allow_http_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            allow_private_networks: settings.allow_private_networks,
            resolver: resolver.unwrap_or_else(|| Arc::new(SystemResolver)),
        }
    }

    /// Checks an endpoint URL as given to the API: its form, and where its host resolves now.
    /// Every refusal names `url` and says what to send instead.
    pub async fn check_url(&self, raw: &str) -> Result<Url, FieldError> {
        let url = self.check_form(raw)?;
        let refused = |why: String| FieldError::new("url", ErrorCode::InvalidUrl, why);
        let addresses = match url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => match self.resolve(name).await {
                Ok(addresses) if !addresses.is_empty() => addresses,
                _ => {
                    return Err(refused(format!(
                        "the host `{name}` of `url` does not resolve: give a host name that resolves in public DNS"
                    )));
                }
            },
            None => return Err(refused("`url` has no host".into())),
        };
        if let Some(ip) = self.first_refused(&addresses) {
            return Err(refused(format!(
                "`url` points at {ip}, a loopback, private, link-local, shared, multicast or reserved address, which endpoints may not reach: give a public address (an operator may set webhooks.allow_private_networks)"
            )));
        }
        Ok(url)
    }

    /// The URL's form: absolute, no credentials, https or an allowed http host.
    fn check_form(&self, raw: &str) -> Result<Url, FieldError> {
        let refused = |why: &str| FieldError::new("url", ErrorCode::InvalidUrl, why);
        let url = Url::parse(raw).map_err(|_| {
            refused("`url` is an absolute URL such as https://shop.example/webhooks")
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                "`url` may not hold credentials (user:password@): authenticate deliveries by their signature instead",
            ));
        }
        let host = url
            .host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http_hosts.contains(&host) => {}
            "http" => {
                return Err(refused(
                    "`url` must use https (http only to a host in webhooks.allow_http_hosts)",
                ));
            }
            _ => return Err(refused("`url` must be an https URL")),
        }
        if host.is_empty() {
            return Err(refused("`url` has no host"));
        }
        Ok(url)
    }

    fn first_refused(&self, addresses: &[IpAddr]) -> Option<IpAddr> {
        if self.allow_private_networks {
            return None;
        }
        addresses.iter().copied().find(|ip| is_internal(*ip))
    }

    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        match tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(host)).await {
            Ok(answer) => answer,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the host name did not resolve in time",
            )),
        }
    }

    /// Checks a delivery's URL before sending: an address written in the URL is connected to
    /// as it is (no resolver is asked), so it is judged here; a name is judged by
    /// [`GuardedResolve`] at connection time. Answers why not, for the attempt's `error`.
    pub fn check_before_sending(&self, url: &str) -> Result<(), String> {
        let url = Url::parse(url).map_err(|_| "the endpoint's URL does not parse".to_owned())?;
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match self.first_refused(&[ip]) {
            Some(ip) => Err(refused_at_delivery(ip)),
            None => Ok(()),
        }
    }

    /// The resolver the deliverer's HTTP client connects through.
    pub fn resolver(self: &Arc<Self>) -> GuardedResolve {
        GuardedResolve(self.clone())
    }
}

fn refused_at_delivery(ip: IpAddr) -> String {
    format!(
        "not sent: the endpoint's host resolves to {ip}, a loopback, private, link-local, shared, multicast or reserved address, which endpoints may not reach"
    )
}

/// The deliverer's resolver: resolves through the guard's resolver and answers only addresses
/// that pass, so the connection is made to a checked address.
#[derive(Clone)]
pub struct GuardedResolve(Arc<AddressGuard>);

impl reqwest::dns::Resolve for GuardedResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let addresses = guard.resolve(name.as_str()).await?;
            let (refused, allowed): (Vec<IpAddr>, Vec<IpAddr>) = addresses
                .into_iter()
                .partition(|ip| guard.first_refused(&[*ip]).is_some());
            if allowed.is_empty() {
                let why = match refused.first() {
                    Some(ip) => refused_at_delivery(*ip),
                    None => "the endpoint's host does not resolve".to_owned(),
                };
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs =
                Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why the guard gave the connector no address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    /// The guard's refusal somewhere in a request error's chain, if that is why it failed.
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<String> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = current {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return Some(refused.0.clone());
            }
            current = e.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address written in a stored URL (made while private networks were allowed, say) is
    /// refused when the delivery goes out; a name is left to the resolver.
    #[test]
    fn an_address_in_the_url_is_judged_before_sending() {
        let strict = guard(false);
        for url in [
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://169.254.169.254/latest",
        ] {
            let refused = strict.check_before_sending(url).unwrap_err();
            assert!(refused.starts_with("not sent"), "{url}: {refused}");
        }
        assert_eq!(
            strict.check_before_sending("https://93.184.215.14/hook"),
            Ok(())
        );
        assert_eq!(
            strict.check_before_sending("https://localhost./hook"),
            Ok(())
        );
        assert_eq!(
            guard(true).check_before_sending("https://127.0.0.1/hook"),
            Ok(())
        );
    }

    fn guard(allow_private: bool) -> AddressGuard {
        let resolver = Arc::new(FixedResolver::default());
        resolver.set("localhost.", vec!["127.0.0.1".parse().unwrap()]);
        resolver.set("localhost", vec!["::1".parse().unwrap()]);
        resolver.set("shop.example", vec!["93.184.215.14".parse().unwrap()]);
        resolver.set(
            "mixed.example",
            vec![
                "93.184.215.14".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            ],
        );
        AddressGuard::new(
            &WebhookSettings {
                allow_http_hosts: vec!["plain.example".into()],
                allow_private_networks: allow_private,
                ..WebhookSettings::default()
            },
            Some(resolver),
        )
    }

    #[tokio::test]
    async fn every_spelling_of_an_internal_address_is_refused_naming_url() {
        let g = guard(false);
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::1]/",
            "https://[::]/",
            "https://0.0.0.0/",
            "https://localhost./",
            "https://localhost/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[ff02::1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://mixed.example/",
        ] {
            let e = g.check_url(url).await.unwrap_err();
            assert_eq!(e.param, "url", "{url}");
            assert_eq!(e.code, ErrorCode::InvalidUrl, "{url}");
        }
        assert!(g.check_url("https://shop.example/hooks").await.is_ok());
        assert!(g.check_url("https://93.184.215.14/hooks").await.is_ok());
    }

    #[tokio::test]
    async fn form_rules_name_url() {
        let g = guard(false);
        for url in [
            "/relative",
            "shop.example/hooks",
            "https://user:pw@shop.example/",
            "https://user@shop.example/",
            "http://shop.example/",
            "ftp://shop.example/",
            "https://unknown.example/",
        ] {
            let e = g.check_url(url).await.unwrap_err();
            assert_eq!(e.param, "url", "{url}");
        }
        // http only to an allowed host (which must still resolve).
        let e = g.check_url("http://plain.example/").await.unwrap_err();
        assert!(e.message.contains("does not resolve"), "{}", e.message);
    }

    #[tokio::test]
    async fn allow_private_networks_lifts_the_address_rule_only() {
        let g = guard(true);
        assert!(g.check_url("https://127.1/").await.is_ok());
        assert!(g.check_url("https://localhost./").await.is_ok());
        assert!(g.check_url("http://127.0.0.1/").await.is_err());
        assert!(g.check_url("https://u:p@127.0.0.1/").await.is_err());
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
