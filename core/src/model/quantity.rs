//! Resource quantities ("500m", "128Mi", "1.5Gi", "2e3") parsed into exact
//! integers. A quantity is held as a count of nano-units in an `i128`, which
//! is exact for every suffix from `n` to `Ei`, and remembers which notation
//! it was written in so that it prints back the way a user wrote it.

use alloc::string::String;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

const NANO: i128 = 1_000_000_000;
/// No quantity may exceed 2^63 base units (the range Kubernetes accepts).
const MAX_NANOS: i128 = (i64::MAX as i128) * NANO;

/// Which notation a quantity is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum QuantityFormat {
    /// Powers of 1024: Ki, Mi, Gi, Ti, Pi, Ei.
    BinarySI,
    /// Powers of 1000: n, u, m, (none), k, M, G, T, P, E.
    #[default]
    DecimalSI,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// An exact resource amount: CPU in cores, memory in bytes, or any count.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nanos: i128,
    format: QuantityFormat,
}

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantity {0:?} is empty or not a number (expected forms such as 500m, 128Mi, 1.5Gi, 2e3)"
    )]
    Syntax(String),
    #[error("quantity {0:?} has an unknown suffix (known: n u m k M G T P E Ki Mi Gi Ti Pi Ei)")]
    Suffix(String),
    #[error("quantity {0:?} is out of range (at most 2^63 units)")]
    Range(String),
}

const BINARY: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: [(&str, i32); 9] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

impl Quantity {
    /// Zero, in decimal notation.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: QuantityFormat::DecimalSI,
    };

    /// Parse the Kubernetes quantity syntax. Digits finer than a nano-unit
    /// round up, as Kubernetes rounds them.
    pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
        let syntax = || QuantityError::Syntax(input.into());
        let range = || QuantityError::Range(input.into());
        let s = input.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_len = s
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (number, suffix) = s.split_at(num_len);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
            return Err(syntax());
        }
        if number.len() > 40 {
            return Err(range());
        }
        let mut mantissa: i128 = 0;
        for d in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa * 10 + i128::from(d - b'0');
        }
        // value = mantissa * 10^exp10 * 1024^pow1024 (base units)
        let mut exp10 = -(frac_part.len() as i32);
        let mut pow1024 = 0u32;
        let format = if let Some(&(_, p)) = BINARY.iter().find(|(n, _)| *n == suffix) {
            pow1024 = p;
            QuantityFormat::BinarySI
        } else if let Some(&(_, e)) = DECIMAL.iter().find(|(n, _)| *n == suffix) {
            exp10 += e;
            QuantityFormat::DecimalSI
        } else if suffix.is_empty() {
            QuantityFormat::DecimalSI
        } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            let e: i32 = exp.parse().map_err(|_| syntax())?;
            if !(-40..=40).contains(&e) {
                return Err(range());
            }
            exp10 += e;
            QuantityFormat::DecimalExponent
        } else {
            return Err(QuantityError::Suffix(input.into()));
        };
        let mut nanos = mantissa;
        for _ in 0..pow1024 {
            nanos = nanos.checked_mul(1024).ok_or_else(range)?;
        }
        let scale = exp10 + 9;
        if scale >= 0 {
            nanos = nanos
                .checked_mul(10i128.checked_pow(scale as u32).ok_or_else(range)?)
                .ok_or_else(range)?;
        } else {
            let div = 10i128.checked_pow(scale.unsigned_abs()).ok_or_else(range)?;
            nanos = (nanos + div - 1) / div;
        }
        if nanos > MAX_NANOS {
            return Err(range());
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// `n` whole base units (bytes, cores, pods) in decimal notation.
    pub const fn from_units(n: i64) -> Quantity {
        Quantity {
            nanos: n as i128 * NANO,
            format: QuantityFormat::DecimalSI,
        }
    }

    /// `n` bytes, printed with a binary suffix where one divides it.
    pub const fn from_bytes(n: i64) -> Quantity {
        Quantity {
            nanos: n as i128 * NANO,
            format: QuantityFormat::BinarySI,
        }
    }

    /// `m` thousandths of a unit (millicores for CPU).
    pub const fn from_millis(m: i64) -> Quantity {
        Quantity {
            nanos: m as i128 * 1_000_000,
            format: QuantityFormat::DecimalSI,
        }
    }

    /// The exact amount in nano-units.
    pub const fn nanos(&self) -> i128 {
        self.nanos
    }

    /// Thousandths of a unit, rounded up (CPU in millicores).
    pub const fn millis(&self) -> i64 {
        div_ceil(self.nanos, 1_000_000) as i64
    }

    /// Whole units, rounded up (memory in bytes).
    pub const fn value(&self) -> i64 {
        div_ceil(self.nanos, NANO) as i64
    }

    /// The notation this quantity prints in.
    pub const fn format(&self) -> QuantityFormat {
        self.format
    }

    pub const fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub const fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The sum, in the notation of `self` (saturating at the range limit).
    pub fn saturating_add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: (self.nanos + other.nanos).clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }

    /// The difference, in the notation of `self` (saturating).
    pub fn saturating_sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: (self.nanos - other.nanos).clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }
}

const fn div_ceil(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d > 0 {
        q + 1
    } else {
        q
    }
}

impl fmt::Display for Quantity {
    /// The canonical spelling in the quantity's own notation: the largest
    /// suffix that divides the amount exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let n = self.nanos.unsigned_abs();
        let nano = NANO as u128;
        if n % nano == 0 {
            let units = n / nano;
            match self.format {
                QuantityFormat::BinarySI => {
                    for (name, p) in BINARY.iter().rev() {
                        let div = 1024u128.pow(*p);
                        if units % div == 0 {
                            return write!(f, "{sign}{}{name}", units / div);
                        }
                    }
                    if units < 1024 {
                        return write!(f, "{sign}{units}");
                    }
                }
                QuantityFormat::DecimalExponent => {
                    let (mut m, mut e) = (units, 0);
                    while m % 1000 == 0 {
                        m /= 1000;
                        e += 3;
                    }
                    return if e == 0 {
                        write!(f, "{sign}{m}")
                    } else {
                        write!(f, "{sign}{m}e{e}")
                    };
                }
                QuantityFormat::DecimalSI => {}
            }
            for (name, e) in DECIMAL.iter().rev().filter(|(_, e)| *e > 0) {
                let div = 10u128.pow(*e as u32);
                if units % div == 0 {
                    return write!(f, "{sign}{}{name}", units / div);
                }
            }
            return write!(f, "{sign}{units}");
        }
        // Fractional amounts: milli, micro or nano.
        for (name, e) in DECIMAL.iter().rev().filter(|(_, e)| *e < 0) {
            let div = 10u128.pow((9 + e) as u32);
            if n % div == 0 {
                return if self.format == QuantityFormat::DecimalExponent {
                    write!(f, "{sign}{}e{e}", n / div)
                } else {
                    write!(f, "{sign}{}{name}", n / div)
                };
            }
        }
        unreachable!("every amount is a whole number of nano-units")
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    /// Quantities are equal when their amounts are: `1Gi == 1073741824`.
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}
impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.nanos, self.format).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(QuantityVisitor)
        } else {
            let (nanos, format) = <(i128, QuantityFormat)>::deserialize(d)?;
            if !(-MAX_NANOS..=MAX_NANOS).contains(&nanos) {
                return Err(de::Error::custom("quantity out of range"));
            }
            Ok(Quantity { nanos, format })
        }
    }
}

/// Manifests may write a quantity as a string or as a bare number (`cpu: 2`).
struct QuantityVisitor;

impl de::Visitor<'_> for QuantityVisitor {
    type Value = Quantity;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as \"500m\", \"128Mi\" or 2")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        Quantity::parse(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity::from_units(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        i64::try_from(v)
            .map(Quantity::from_units)
            .map_err(|_| E::custom("quantity out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        use core::fmt::Write;
        let mut s = String::new();
        let _ = write!(s, "{v}");
        Quantity::parse(&s).map_err(E::custom)
    }
}

#[cfg(any(test, feature = "arbitrary"))]
impl<'a> arbitrary::Arbitrary<'a> for Quantity {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Quantity {
            nanos: u.int_in_range(-MAX_NANOS..=MAX_NANOS)?,
            format: u.arbitrary()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_the_usual_spellings_exactly() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("1", NANO),
            ("500m", 500_000_000),
            ("0.5", 500_000_000),
            ("1.5", 1_500_000_000),
            ("100n", 100),
            ("7u", 7_000),
            ("128Mi", 128 * 1024 * 1024 * NANO),
            ("1Gi", 1024 * 1024 * 1024 * NANO),
            ("1.5Gi", 1_610_612_736 * NANO),
            ("2k", 2_000 * NANO),
            ("1M", 1_000_000 * NANO),
            ("1e3", 1_000 * NANO),
            ("5E-3", 5_000_000),
            ("+3", 3 * NANO),
            ("-250m", -250_000_000),
            ("7Ei", 7 * (1i128 << 60) * NANO),
            (".5", 500_000_000),
            ("0.1n", 1),
        ];
        for (text, nanos) in cases {
            assert_eq!(Quantity::parse(text).unwrap().nanos(), *nanos, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for bad in [
            "", "m", "abc", "1.2.3", "12Zi", "1 Gi", "1Gii", "1e", "1e99", "8Ei", "--1", "1ki",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            Quantity::parse("12Zi"),
            Err(QuantityError::Suffix(_))
        ));
        assert!(matches!(
            Quantity::parse("8Ei"),
            Err(QuantityError::Range(_))
        ));
    }

    #[test]
    fn prints_canonically_in_the_written_notation() {
        let cases = [
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1.5Gi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("2000", "2k"),
            ("1e3", "1e3"),
            ("1500e-3", "1500e-3"),
            ("-1Ki", "-1Ki"),
            ("0Gi", "0"),
            ("1.5Ki", "1536"),
        ];
        for (input, printed) in cases {
            assert_eq!(
                Quantity::parse(input).unwrap().to_string(),
                printed,
                "{input}"
            );
        }
    }

    #[test]
    fn rounds_up_to_millis_and_units() {
        let q = Quantity::parse("1500u").unwrap();
        assert_eq!(q.millis(), 2);
        assert_eq!(Quantity::parse("0.1").unwrap().value(), 1);
        assert_eq!(Quantity::parse("128Mi").unwrap().value(), 134_217_728);
        assert_eq!(Quantity::from_millis(250).to_string(), "250m");
    }

    #[test]
    fn equality_is_by_amount() {
        assert_eq!(
            Quantity::parse("1Gi").unwrap(),
            Quantity::parse("1073741824").unwrap()
        );
        assert!(Quantity::parse("1Gi").unwrap() > Quantity::parse("1G").unwrap());
    }

    #[test]
    fn manifests_may_use_bare_numbers() {
        let q: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(q, Quantity::from_units(2));
        let q: Quantity = serde_json::from_str("0.25").unwrap();
        assert_eq!(q.millis(), 250);
        assert!(serde_json::from_str::<Quantity>("\"12Zi\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn printed_form_parses_back(nanos in -MAX_NANOS..=MAX_NANOS, f in 0u8..3) {
            let format = [QuantityFormat::BinarySI, QuantityFormat::DecimalSI, QuantityFormat::DecimalExponent][f as usize];
            let q = Quantity { nanos, format };
            proptest::prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap().nanos(), nanos);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Quantity::parse(&s);
        }
    }
}
