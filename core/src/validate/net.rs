//! Address rules: IP addresses (pod and host IPs, node addresses, host
//! port bindings) and CIDR ranges (a node's pod ranges), IPv4 and IPv6.

use super::field::{FieldErrors, FieldPath};
use core::net::IpAddr;

/// A CIDR range as `(network address, prefix length)`.
pub(crate) type Cidr = (IpAddr, u8);

/// An IPv4 or IPv6 address in its usual text form.
pub(crate) fn validate_ip(value: &str, path: &FieldPath, errs: &mut FieldErrors) {
    if value.parse::<IpAddr>().is_err() {
        errs.push(path.invalid(
            value,
            "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
}

/// Parse `a.b.c.d/n` or `x:y::/n`: the prefix in range for the family and
/// no bits set past it (`10.0.0.1/24` names a host, not a range). The
/// parser is [`crate::net::Cidr`]'s; this keeps validation's tuple shape.
pub(crate) fn parse_cidr(value: &str) -> Result<Cidr, &'static str> {
    let cidr: crate::net::Cidr = value.parse().map_err(crate::net::CidrError::reason)?;
    Ok((cidr.addr(), cidr.prefix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let good = [
            "10.88.0.0/16",
            "10.88.1.0/24",
            "0.0.0.0/0",
            "10.0.0.1/32",
            "fd00::/64",
            "::/0",
            "2001:db8::1/128",
        ];
        for g in good {
            assert!(parse_cidr(g).is_ok(), "{g} refused");
        }
        let bad = [
            ("10.88.0.0", "valid CIDR"),
            ("10.88.0.0/", "valid CIDR"),
            ("10.88.0.0/+8", "valid CIDR"),
            ("10.88.0.0/0008", "valid CIDR"),
            ("10.88.0/16", "valid CIDR"),
            ("10.88.0.0/33", "at most 32"),
            ("fd00::/129", "at most 128"),
            ("10.88.1.1/24", "network address"),
            ("fd00::1/64", "network address"),
            ("node/24", "valid CIDR"),
        ];
        for (b, why) in bad {
            let e = parse_cidr(b).unwrap_err();
            assert!(e.contains(why), "{b}: {e}");
        }
        assert_eq!(parse_cidr("10.88.0.0/16").unwrap().1, 16);
    }

    #[test]
    fn ips() {
        let path = FieldPath::new("status").child("podIP");
        for (ip, ok) in [
            ("10.88.0.5", true),
            ("fd00::5", true),
            ("10.88.0", false),
            ("host", false),
            ("10.88.0.5/24", false),
        ] {
            let mut errs = FieldErrors::new();
            validate_ip(ip, &path, &mut errs);
            assert_eq!(errs.is_empty(), ok, "{ip}");
        }
    }
}
