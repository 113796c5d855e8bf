//! WPA-PSK from a passphrase, as `wpa_passphrase` computes it: PBKDF2-HMAC-SHA1 over the
//! passphrase with the SSID as salt, 4096 iterations, 32 bytes, in hex (IEEE 802.11i).

/// Why a Wi-Fi passphrase was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PskError {
    /// WPA passphrases are 8 to 63 printable ASCII characters.
    #[error("a WPA passphrase has 8 to 63 printable ASCII characters (this one has {0})")]
    Length(usize),
    /// Non-printable or non-ASCII character.
    #[error("a WPA passphrase may only hold printable ASCII characters")]
    Charset,
    /// SSIDs are 1 to 32 bytes.
    #[error("an SSID has 1 to 32 bytes (this one has {0})")]
    Ssid(usize),
}

/// The 64-hex-digit PSK for `ssid` and `passphrase`.
pub fn psk(ssid: &str, passphrase: &str) -> Result<String, PskError> {
    if !(8..=63).contains(&passphrase.len()) {
        return Err(PskError::Length(passphrase.len()));
    }
    if !passphrase.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(PskError::Charset);
    }
    if !(1..=32).contains(&ssid.len()) {
        return Err(PskError::Ssid(ssid.len()));
    }
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase.as_bytes(), ssid.as_bytes(), 4096, &mut out);
    Ok(hex::encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ieee_802_11i_test_vectors() {
        // IEEE 802.11i-2004, Annex H.4.
        assert_eq!(
            psk("IEEE", "password").unwrap(),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        assert_eq!(
            psk("ThisIsASSID", "ThisIsAPassword").unwrap(),
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
        );
        assert_eq!(psk("x", "short"), Err(PskError::Length(5)));
        assert_eq!(psk("", "longenough"), Err(PskError::Ssid(0)));
        assert_eq!(psk("x", "tab\there!"), Err(PskError::Charset));
    }
}
