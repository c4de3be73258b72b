//! The egress guard: the one way the gateway calls a URL that a tenant gave (a session's callback today, webhook
//! endpoints tomorrow). A tenant's URL is hostile until checked: it may name the gateway itself, Redis, a cloud
//! metadata service or anything else on the private network the gateway can reach.
//!
//! - [`EgressPolicy`] says which addresses may be called: public ones, plus the ranges an operator opens with
//!   `WGATE_EGRESS_ALLOW_NETS` (development and tests open loopback), never the gateway's own listen addresses.
//! - [`EgressClient`] is a reqwest client that enforces it where it matters, when connecting: host names go through
//!   a resolver that drops refused addresses (so a name that resolves to a public address when checked and to a
//!   private one when called, DNS rebinding, still cannot reach it), IP literals are checked before sending, no
//!   proxy is used and redirects are never followed.
//! - [`EgressPolicy::check_url`] is the early check at the moment a tenant hands a URL over (a clear 400 beats a
//!   webhook that silently never arrives).
#![warn(unreachable_pub)]

mod ranges;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

pub use ipnet::IpNet;
pub use ranges::{Rule, embedded_v4, refused_range};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// A destination the policy refuses, with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} is refused: {ip} is {rule} and only public addresses are called")]
pub struct Refused {
    /// The host as the URL names it.
    pub host: String,
    pub ip: IpAddr,
    pub rule: Rule,
}

/// Why a URL cannot be called.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("not an absolute http(s) URL with a host")]
    BadUrl,
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The URL names the gateway itself by its public host and port (a relay to itself would loop).
    #[error("{0} is the gateway's own address")]
    Gateway(String),
}

/// Which addresses a tenant's URL may reach. Cheap to share (`Arc` inside [`EgressClient`]).
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
    own: Vec<SocketAddr>,
    /// The gateway's public host names and ports (`WGATE_PUBLIC_URL`), lower case.
    own_hosts: Vec<(String, u16)>,
}

impl EgressPolicy {
    /// `allow`: ranges opened although a rule refuses them; `own`: the gateway's own listen addresses, refused even
    /// inside an opened range (a callback pointing at the gateway itself would make it call itself in a loop).
    pub fn new(allow: Vec<IpNet>, own: Vec<SocketAddr>) -> Self {
        Self { allow, own, own_hosts: Vec::new() }
    }

    /// Also refuses URLs naming the gateway by its public URL's host and port (behind a load balancer its
    /// addresses are not the listen addresses).
    pub fn with_public_url(mut self, public: &str) -> Self {
        if let Ok(url) = Url::parse(public)
            && let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default())
        {
            self.own_hosts.push((host.to_ascii_lowercase(), port));
        }
        self
    }

    fn check_host(&self, url: &Url) -> Result<(), EgressError> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        if self.own_hosts.iter().any(|(h, p)| *h == host && *p == port) {
            return Err(EgressError::Gateway(format!("{host}:{port}")));
        }
        Ok(())
    }

    /// Parses a comma- or space-separated list of CIDR ranges (`127.0.0.0/8, ::1/128`); a bare address is its own
    /// one-address range. Empty means none.
    pub fn parse_nets(list: &str) -> Result<Vec<IpNet>, String> {
        list.split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not a CIDR range such as 10.0.0.0/8 or fd00::/8"))
            })
            .collect()
    }

    /// The opened ranges.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    fn opened(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow.iter().any(|net| net.contains(&ip) || v4.is_some_and(|v4| net.contains(&v4)))
    }

    /// The rule refusing `ip` whatever the port, or `None` when it may be called.
    pub fn refusal(&self, ip: IpAddr) -> Option<Rule> {
        refused_range(ip).filter(|_| !self.opened(ip))
    }

    /// The rule refusing a connection to `addr`: the ranges, and the gateway's own listen addresses (a listener on
    /// `0.0.0.0` or `::` stands for every loopback address on its port).
    pub fn refusal_at(&self, addr: SocketAddr) -> Option<Rule> {
        let ip = canonical(addr.ip());
        let own = self.own.iter().any(|o| {
            o.port() == addr.port()
                && (canonical(o.ip()) == ip || (o.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
        });
        if own { Some(Rule::OwnAddress) } else { self.refusal(addr.ip()) }
    }

    /// Checks a URL when a tenant hands it over: an IP literal against the rules, a host name by resolving it (within
    /// `resolve_within`) and refusing it when every address it has is refused. A name that does not resolve now is
    /// let through: it is checked again, address by address, whenever it is called.
    pub async fn check_url(&self, url: &Url, resolve_within: Duration) -> Result<(), EgressError> {
        let port = url.port_or_known_default().ok_or(EgressError::BadUrl)?;
        self.check_host(url)?;
        let host_str = url.host_str().unwrap_or_default().to_owned();
        match url.host() {
            None => Err(EgressError::BadUrl),
            Some(Host::Ipv4(v4)) => self.check_addr(&host_str, SocketAddr::new(v4.into(), port)),
            Some(Host::Ipv6(v6)) => self.check_addr(&host_str, SocketAddr::new(v6.into(), port)),
            Some(Host::Domain(name)) => {
                let addrs = match tokio::time::timeout(resolve_within, tokio::net::lookup_host((name, port))).await {
                    Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
                    Ok(Err(_)) | Err(_) => return Ok(()),
                };
                let mut first_refusal = None;
                for addr in &addrs {
                    match self.check_addr(&host_str, *addr) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            first_refusal.get_or_insert(e);
                        }
                    }
                }
                first_refusal.map_or(Ok(()), Err)
            }
        }
    }

    fn check_addr(&self, host: &str, addr: SocketAddr) -> Result<(), EgressError> {
        match self.refusal_at(addr) {
            None => Ok(()),
            Some(rule) => Err(Refused { host: host.to_owned(), ip: addr.ip(), rule }.into()),
        }
    }

    /// A client that enforces this policy; `builder` brings the caller's timeouts. Proxies are never used (a proxy
    /// would connect where the policy cannot see) and redirects never followed.
    pub fn client(self, builder: reqwest::ClientBuilder) -> reqwest::Result<EgressClient> {
        let policy = Arc::new(self);
        let client = builder
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .build()?;
        Ok(EgressClient { client, policy })
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address, so both forms compare equal.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The system resolver with the refused addresses taken out; a name left without any address fails with the first
/// refusal as its cause.
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.refusal(a.ip()) {
                    None => true,
                    Some(rule) => {
                        refused.get_or_insert(Refused { host: host.clone(), ip: a.ip(), rule });
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A reqwest client bound to an [`EgressPolicy`]: the only client that may call a tenant's URL.
#[derive(Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl EgressClient {
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// A POST to `url`, refused before anything is sent when the URL's host is an IP literal the policy refuses
    /// (a literal never reaches the resolver); a host name is checked by the resolver when connecting.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, EgressError> {
        let parsed = Url::parse(url).map_err(|_| EgressError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EgressError::BadUrl);
        }
        let port = parsed.port_or_known_default().ok_or(EgressError::BadUrl)?;
        self.policy.check_host(&parsed)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        match parsed.host() {
            Some(Host::Ipv4(v4)) => self.policy.check_addr(&host, SocketAddr::new(v4.into(), port))?,
            Some(Host::Ipv6(v6)) => self.policy.check_addr(&host, SocketAddr::new(v6.into(), port))?,
            Some(Host::Domain(_)) => {}
            None => return Err(EgressError::BadUrl),
        }
        Ok(self.client.post(parsed))
    }
}

/// A reqwest error as it may be logged: what went wrong and why, without the URL (a tenant's URL may carry a
/// secret in its path or query).
pub fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "body failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut out = kind.to_owned();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Whether a reqwest error was the policy refusing the destination (at connect time).
pub fn refused_by_policy(e: &reqwest::Error) -> Option<Refused> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &str, own: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            EgressPolicy::parse_nets(allow).expect("nets"),
            own.iter().map(|o| o.parse().expect("socket address")).collect(),
        )
    }

    #[test]
    fn an_opened_range_lets_its_addresses_through_and_nothing_else() {
        let p = policy("127.0.0.0/8, ::1", &[]);
        assert_eq!(p.refusal("127.0.0.1".parse().unwrap()), None);
        assert_eq!(p.refusal("::ffff:127.0.0.1".parse().unwrap()), None);
        assert_eq!(p.refusal("::1".parse().unwrap()), None);
        assert_eq!(p.refusal("10.0.0.1".parse().unwrap()), Some(Rule::Private));
        assert_eq!(p.refusal("8.8.8.8".parse().unwrap()), None);
    }

    #[test]
    fn the_gateways_own_listen_addresses_are_refused_even_inside_an_opened_range() {
        let p = policy("127.0.0.0/8", &["127.0.0.1:8080", "0.0.0.0:9464"]);
        assert_eq!(p.refusal_at("127.0.0.1:8080".parse().unwrap()), Some(Rule::OwnAddress));
        assert_eq!(p.refusal_at("[::ffff:127.0.0.1]:8080".parse().unwrap()), Some(Rule::OwnAddress));
        assert_eq!(p.refusal_at("127.0.0.2:9464".parse().unwrap()), Some(Rule::OwnAddress));
        assert_eq!(p.refusal_at("127.0.0.1:8081".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn the_gateways_public_url_is_refused_by_name() {
        let p = policy("", &[]).with_public_url("https://GW.example.com");
        let url = Url::parse("https://gw.example.com:443/hooks/x").unwrap();
        assert!(matches!(p.check_url(&url, Duration::from_millis(10)).await, Err(EgressError::Gateway(_))));
        let other = Url::parse("https://gw.example.com:8443/hook").unwrap();
        assert!(p.check_host(&other).is_ok());
    }

    #[test]
    fn a_malformed_range_is_reported() {
        let e = EgressPolicy::parse_nets("10.0.0.0/8, nope").unwrap_err();
        assert!(e.contains("\"nope\""), "{e}");
        assert!(EgressPolicy::parse_nets("").unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_call_is_described_without_its_url_and_a_refusal_is_recognised() {
        wgate_service::init_crypto();
        let open = policy("127.0.0.0/8", &[]).client(reqwest::Client::builder()).unwrap();
        // Port 9 (discard) is closed on a test machine: a connect error on a URL holding a secret.
        let e = open.post("http://127.0.0.1:9/hook/s3cret?token=abc").unwrap().send().await.unwrap_err();
        let text = describe(e);
        assert!(text.starts_with("could not connect") && !text.contains("s3cret") && !text.contains("token"), "{text}");

        let closed = policy("", &[]).client(reqwest::Client::builder()).unwrap();
        assert!(
            matches!(closed.post("http://127.0.0.1:9/x"), Err(EgressError::Refused(r)) if r.rule == Rule::Loopback)
        );
        let e = closed.post("http://localhost:9/x").unwrap().send().await.unwrap_err();
        assert_eq!(refused_by_policy(&e).map(|r| r.rule), Some(Rule::Loopback), "{e:?}");
    }

    #[tokio::test]
    async fn a_literal_or_a_name_that_resolves_only_to_refused_addresses_is_refused_at_check() {
        let p = policy("", &[]);
        let within = Duration::from_secs(2);
        for (url, rule) in [
            ("http://127.0.0.1:9/x", Rule::Loopback),
            ("http://[::1]/x", Rule::Loopback),
            ("http://169.254.169.254/latest/meta-data", Rule::LinkLocal),
            ("http://[::ffff:10.0.0.1]/", Rule::Private),
            ("http://localhost:1/", Rule::Loopback),
        ] {
            match p.check_url(&Url::parse(url).unwrap(), within).await {
                Err(EgressError::Refused(r)) => assert_eq!(r.rule, rule, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let open = policy("127.0.0.0/8, ::1", &[]);
        assert!(open.check_url(&Url::parse("http://localhost:1/").unwrap(), within).await.is_ok());
    }
}
