//! Random identifiers the apiserver hands out: object uids (UUID v4 text),
//! the suffix of a `generateName`, and bearer tokens. All from the
//! kernel's random source.

/// Random bytes from the kernel; failing to get them is not recoverable
/// (the server would otherwise hand out predictable uids and tokens).
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the kernel's random source failed: {e}");
    }
    bytes
}

/// A UUID v4 (`8-4-4-4-12` hex digits).
pub fn new_uid() -> String {
    let mut b = random::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The characters Kubernetes uses for generated name suffixes: no vowels
/// (no accidental words) and no look-alikes.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters for a `generateName`.
pub fn name_suffix() -> String {
    random::<5>()
        .iter()
        .map(|b| char::from(SUFFIX_ALPHABET[usize::from(*b) % SUFFIX_ALPHABET.len()]))
        .collect()
}

/// A bearer token: 32 random bytes as hex.
pub fn new_token() -> String {
    random::<32>().iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4', "{uid}");
        assert_ne!(new_uid(), uid);
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        assert_eq!(new_token().len(), 64);
    }
}
