//! Which IP addresses a tenant's URL may never reach, as a pure function of the address: no IO, no settings.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// Why an address is refused. Each rule names its ranges, so an error message can say which one matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`), `fc00::/7` and the old site-local `fec0::/10`.
    Private,
    /// `169.254.0.0/16` (the cloud metadata address `169.254.169.254` among them), `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    Cgnat,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// Not routable on the internet: `192.0.0.0/24`, `198.18.0.0/15`, `240.0.0.0/4` (broadcast included).
    Reserved,
    /// One of the gateway's own listen addresses.
    OwnAddress,
}

impl Rule {
    /// The rule and its ranges, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "loopback (127.0.0.0/8, ::1)",
            Self::Private => "private (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7)",
            Self::LinkLocal => "link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10)",
            Self::Cgnat => "carrier-grade NAT (100.64.0.0/10)",
            Self::Multicast => "multicast (224.0.0.0/4, ff00::/8)",
            Self::Unspecified => "unspecified (0.0.0.0/8, ::)",
            Self::Reserved => "reserved (192.0.0.0/24, 198.18.0.0/15, 240.0.0.0/4)",
            Self::OwnAddress => "the gateway's own listen address",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The rule that refuses `ip`, or `None` for a public address. IPv6 forms that carry an IPv4 address
/// (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
/// by the IPv4 address they carry.
pub fn refused_range(ip: IpAddr) -> Option<Rule> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one.
pub fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible (deprecated) `::a.b.c.d`, but not `::` and `::1` themselves.
    if s[..6] == [0; 6] && !(v6.is_unspecified() || v6.is_loopback()) {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // NAT64 well-known prefix `64:ff9b::/96`.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 6to4 `2002:AABB:CCDD::/48`.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

fn refused_v4(ip: Ipv4Addr) -> Option<Rule> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => Rule::Unspecified,
        (127, ..) => Rule::Loopback,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Rule::Private,
        (169, 254, _) => Rule::LinkLocal,
        (100, 64..=127, _) => Rule::Cgnat,
        (224..=239, ..) => Rule::Multicast,
        (192, 0, 0) | (198, 18..=19, _) | (240..=255, ..) => Rule::Reserved,
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<Rule> {
    if ip.is_unspecified() {
        return Some(Rule::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Rule::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return refused_v4(v4);
    }
    let first = ip.segments()[0];
    match first {
        _ if first & 0xfe00 == 0xfc00 => Some(Rule::Private),
        _ if first & 0xffc0 == 0xfec0 => Some(Rule::Private),
        _ if first & 0xffc0 == 0xfe80 => Some(Rule::LinkLocal),
        _ if first & 0xff00 == 0xff00 => Some(Rule::Multicast),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Option<Rule> {
        refused_range(s.parse().expect("an IP address"))
    }

    #[test]
    fn every_documented_range_is_refused_with_its_rule() {
        for (ip, expected) in [
            ("127.0.0.1", Rule::Loopback),
            ("127.255.1.2", Rule::Loopback),
            ("::1", Rule::Loopback),
            ("10.1.2.3", Rule::Private),
            ("172.16.0.1", Rule::Private),
            ("172.31.255.255", Rule::Private),
            ("192.168.1.1", Rule::Private),
            ("fc00::1", Rule::Private),
            ("fd12:3456::1", Rule::Private),
            ("169.254.169.254", Rule::LinkLocal),
            ("fe80::1", Rule::LinkLocal),
            ("100.64.0.1", Rule::Cgnat),
            ("100.127.255.254", Rule::Cgnat),
            ("224.0.0.1", Rule::Multicast),
            ("ff02::1", Rule::Multicast),
            ("0.0.0.0", Rule::Unspecified),
            ("::", Rule::Unspecified),
            ("255.255.255.255", Rule::Reserved),
            ("::ffff:127.0.0.1", Rule::Loopback),
            ("::ffff:169.254.169.254", Rule::LinkLocal),
            ("::ffff:10.0.0.1", Rule::Private),
            ("::127.0.0.1", Rule::Loopback),
            ("64:ff9b::a9fe:a9fe", Rule::LinkLocal),
            ("2002:7f00:1::", Rule::Loopback),
        ] {
            assert_eq!(rule(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in
            ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "169.255.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]
        {
            assert_eq!(rule(ip), None, "{ip}");
        }
    }

    proptest::proptest! {
        #[test]
        fn an_ipv4_address_and_its_mapped_form_get_the_same_answer(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert_eq!(refused_range(IpAddr::V4(v4)), refused_range(IpAddr::V6(v4.to_ipv6_mapped())));
        }
    }
}
