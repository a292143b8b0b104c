//! Network address types shared by validation and IPAM: [`Cidr`], an IPv4
//! or IPv6 range in prefix notation (`10.88.0.0/16`, `fd00::/64`), with the
//! arithmetic an allocator needs (an address's offset in the range and the
//! address at an offset). Parsing is strict: a range whose address has bits
//! set past the prefix (`10.88.1.1/24`) names a host, not a range, and is
//! refused. Nothing here touches an interface or a routing table.

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// Why a text is not a CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    Shape,
    PrefixTooLongV4,
    PrefixTooLongV6,
    HostBits,
}

impl CidrError {
    /// The reason as a static text, for field errors.
    pub fn reason(self) -> &'static str {
        match self {
            CidrError::Shape => "must be a valid CIDR range (e.g. 10.88.0.0/16 or fd00::/64)",
            CidrError::PrefixTooLongV4 => "prefix length must be at most 32 for an IPv4 range",
            CidrError::PrefixTooLongV6 => "prefix length must be at most 128 for an IPv6 range",
            CidrError::HostBits => {
                "must be a network address: bits past the prefix length must be zero"
            }
        }
    }
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for CidrError {}

/// An IPv4 or IPv6 range: a network address and a prefix length, with no
/// bits set in the address past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The range `addr/prefix`; refuses a prefix too long for the family
    /// and an address with host bits set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        let cidr = Cidr::containing(addr, prefix)?;
        if cidr.addr != addr {
            return Err(CidrError::HostBits);
        }
        Ok(cidr)
    }

    /// The range of length `prefix` that holds `ip` (`10.88.1.7` and 24
    /// give `10.88.1.0/24`); refuses a prefix too long for the family.
    pub fn containing(ip: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        match ip {
            IpAddr::V4(_) if prefix > 32 => return Err(CidrError::PrefixTooLongV4),
            IpAddr::V6(_) if prefix > 128 => return Err(CidrError::PrefixTooLongV6),
            _ => {}
        }
        let cidr = Cidr { addr: ip, prefix };
        Ok(Cidr {
            addr: from_bits(ip, to_bits(ip) & !cidr.host_mask()),
            prefix,
        })
    }

    /// The network address (the first address of the range).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The address width of the family: 32 or 128.
    pub fn family_bits(&self) -> u8 {
        if self.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// The offset of the last address of the range (the IPv4 broadcast
    /// address): the range holds `last_offset() + 1` addresses.
    pub fn last_offset(&self) -> u128 {
        self.host_mask()
    }

    /// The last address of the range (for IPv4, its broadcast address).
    pub fn last(&self) -> IpAddr {
        from_bits(self.addr, to_bits(self.addr) | self.host_mask())
    }

    /// True when `ip` is of the range's family and inside it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some()
    }

    /// How far `ip` is from the network address, when inside the range.
    pub fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        if ip.is_ipv4() != self.is_ipv4() {
            return None;
        }
        let bits = to_bits(ip);
        (bits & !self.host_mask() == to_bits(self.addr)).then(|| bits & self.host_mask())
    }

    /// The address `offset` past the network address, when inside the range.
    pub fn nth(&self, offset: u128) -> Option<IpAddr> {
        (offset <= self.host_mask()).then(|| from_bits(self.addr, to_bits(self.addr) | offset))
    }

    /// The bits of an address past the prefix, as a mask.
    fn host_mask(&self) -> u128 {
        let host_bits = u32::from(self.family_bits() - self.prefix);
        1u128.checked_shl(host_bits).map_or(u128::MAX, |b| b - 1)
    }
}

/// An address as a number, IPv4 in the low 32 bits.
fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family`'s kind whose number is `bits`; for IPv4 only
/// the low 32 bits count.
fn from_bits(family: IpAddr, bits: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parse `a.b.c.d/n` or `x:y::/n`: the prefix in decimal without sign
    /// or leading zeros beyond three digits, in range for the family, and
    /// no bits set past it.
    fn from_str(value: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = value.split_once('/').ok_or(CidrError::Shape)?;
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Shape)?;
        let digits_only =
            !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit());
        if !digits_only {
            return Err(CidrError::Shape);
        }
        let prefix: u8 = prefix.parse().map_err(|_| CidrError::Shape)?;
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: CidrError| {
            serde::de::Error::custom(alloc::format!("{text:?}: {}", e.reason()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        for text in [
            "10.88.0.0/16",
            "0.0.0.0/0",
            "10.0.0.1/32",
            "fd00::/64",
            "::/0",
        ] {
            assert_eq!(cidr(text).to_string(), text);
        }
    }

    #[test]
    fn refusals_name_the_reason() {
        let cases = [
            ("10.88.0.0", CidrError::Shape),
            ("10.88.0.0/", CidrError::Shape),
            ("10.88.0.0/+8", CidrError::Shape),
            ("10.88.0.0/0008", CidrError::Shape),
            ("10.88.0/16", CidrError::Shape),
            ("10.88.0.0/33", CidrError::PrefixTooLongV4),
            ("fd00::/129", CidrError::PrefixTooLongV6),
            ("10.88.1.1/24", CidrError::HostBits),
            ("fd00::1/64", CidrError::HostBits),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Cidr>(), Err(want), "{text}");
        }
    }

    #[test]
    fn offsets_and_bounds() {
        let v4 = cidr("10.88.1.0/24");
        assert_eq!(v4.last_offset(), 255);
        assert_eq!(v4.last(), "10.88.1.255".parse::<IpAddr>().unwrap());
        assert_eq!(v4.nth(5), Some("10.88.1.5".parse().unwrap()));
        assert_eq!(v4.nth(256), None);
        assert_eq!(v4.offset_of("10.88.1.200".parse().unwrap()), Some(200));
        assert_eq!(v4.offset_of("10.88.2.0".parse().unwrap()), None);
        assert_eq!(v4.offset_of("::1".parse().unwrap()), None);

        let v6 = cidr("fd00:1::/120");
        assert_eq!(v6.last(), "fd00:1::ff".parse::<IpAddr>().unwrap());
        assert!(v6.contains("fd00:1::7".parse().unwrap()));
        assert!(!v6.contains("fd00:1::100".parse().unwrap()));

        let everything = cidr("::/0");
        assert_eq!(everything.last_offset(), u128::MAX);
        assert_eq!(
            everything.nth(u128::MAX),
            Some(Ipv6Addr::from(u128::MAX).into())
        );
        assert_eq!(
            Cidr::containing("10.88.1.7".parse().unwrap(), 24),
            Ok(cidr("10.88.1.0/24"))
        );
        assert_eq!(
            Cidr::containing("fd00::1:2".parse().unwrap(), 112),
            Ok(cidr("fd00::1:0/112"))
        );
        assert_eq!(
            Cidr::containing("fd00::1".parse().unwrap(), 129),
            Err(CidrError::PrefixTooLongV6)
        );
        let host = cidr("10.0.0.1/32");
        assert_eq!(host.last_offset(), 0);
        assert_eq!(host.last(), host.addr());
    }

    #[test]
    fn serde_as_text() {
        let c = cidr("10.88.0.0/16");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"10.88.0.0/16\"");
        assert_eq!(serde_json::from_str::<Cidr>(&json).unwrap(), c);
        let err = serde_json::from_str::<Cidr>("\"10.88.0.1/16\"").unwrap_err();
        assert!(err.to_string().contains("network address"), "{err}");
    }
}
