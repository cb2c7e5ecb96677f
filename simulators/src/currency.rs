//! The currencies the simulators accept, and how many decimals each has (ISO 4217), for
//! amount checks and the stats' minor units.

/// The number of decimals of an ISO 4217 currency code (`MXN`: 2, `CLP`: 0); `None` for a
/// code that is not an upper-case ISO 4217 currency with minor units.
pub fn exponent(code: &str) -> Option<u32> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    iso_currency::Currency::from_code(code)?
        .exponent()
        .map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(exponent("MXN"), Some(2));
        assert_eq!(exponent("PHP"), Some(2));
        assert_eq!(exponent("CLP"), Some(0));
        assert_eq!(exponent("mxn"), None);
        assert_eq!(exponent("XXZ"), None);
    }
}
