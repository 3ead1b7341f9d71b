//! Kubernetes quantities (`100Mi`, `1Gi`, `512k`) as byte counts, for the
//! limits the operator renders into a RuntimeConfig.

/// Bytes in `quantity`, or a message naming what is wrong with it.
pub fn bytes(quantity: &str) -> Result<u64, String> {
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{quantity:?} is not a quantity such as 100Mi"))?;
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => {
            return Err(format!(
                "{quantity:?} has an unknown suffix {suffix:?} (use k, M, G, T, Ki, Mi, Gi or Ti)"
            ))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{quantity:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(bytes("100Mi"), Ok(100 * 1024 * 1024));
        assert_eq!(bytes("2Gi"), Ok(2 << 30));
        assert_eq!(bytes("512k"), Ok(512_000));
        assert_eq!(bytes("42"), Ok(42));
    }

    #[test]
    fn nonsense_is_named() {
        assert!(bytes("ten").unwrap_err().contains("not a quantity"));
        assert!(bytes("10Xi").unwrap_err().contains("unknown suffix"));
        assert!(bytes("99999999999Ti").unwrap_err().contains("too large"));
    }
}
