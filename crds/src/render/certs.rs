//! The federation CA and server certificate of a workspace.
//!
//! The operator issues both and keeps them in Secrets; every reconcile reads
//! them back and decides from the certificates themselves (not from a note
//! of its own) whether to keep them or issue new ones: a missing, unreadable
//! or soon-expiring certificate, or one for other names or from another CA,
//! is replaced. Pure apart from key generation: the clock is a parameter.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use x509_parser::{extensions::GeneralName, pem::parse_x509_pem};

/// Lifetime of a CA: partners pin it, so it lives long and is renewed early.
pub const CA_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// PEM texts as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// What a workspace's federation TLS needs.
pub struct Wanted<'a> {
    /// DNS names the server certificate must carry; the first is the identity.
    pub names: &'a [String],
    pub organisation: &'a str,
    pub lifetime_seconds: i64,
    pub renew_before_seconds: i64,
}

/// The outcome: what to store, and what changed.
#[derive(Clone, Debug)]
pub struct Issued {
    pub ca: Pair,
    pub server: Pair,
    /// Unix seconds.
    pub server_not_after: i64,
    pub new_ca: bool,
    pub new_server: bool,
}

/// Keeps what is still good, issues what is not.
pub fn ensure(
    stored_ca: Option<Pair>,
    stored_server: Option<Pair>,
    wanted: &Wanted,
    now: i64,
) -> Result<Issued, String> {
    let usable_ca = stored_ca.filter(|ca| {
        read(&ca.cert).is_some_and(|c| c.is_ca && c.not_after - wanted.renew_before_seconds > now)
            && KeyPair::from_pem(&ca.key).is_ok()
    });
    let (ca, new_ca) = match usable_ca {
        Some(ca) => (ca, false),
        None => (new_ca(wanted.organisation, now)?, true),
    };
    let ca_subject = read(&ca.cert).map(|c| c.subject).unwrap_or_default();
    let usable_server = stored_server.filter(|server| {
        !new_ca
            && read(&server.cert).is_some_and(|c| {
                !c.is_ca
                    && c.issuer == ca_subject
                    && c.not_after - wanted.renew_before_seconds > now
                    && c.dns_names == wanted.names
            })
            && KeyPair::from_pem(&server.key).is_ok()
    });
    let (server, new_server) = match usable_server {
        Some(server) => (server, false),
        None => (new_server(&ca, wanted, now)?, true),
    };
    let server_not_after = read(&server.cert)
        .map(|c| c.not_after)
        .ok_or("the issued certificate cannot be read back")?;
    Ok(Issued {
        ca,
        server,
        server_not_after,
        new_ca,
        new_server,
    })
}

fn time(unix: i64) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| e.to_string())
}

fn new_ca(organisation: &str, now: i64) -> Result<Pair, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, organisation);
    name.push(DnType::CommonName, format!("{organisation} federation CA"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time(now - 300)?;
    params.not_after = time(now + CA_LIFETIME_SECONDS)?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn new_server(ca: &Pair, wanted: &Wanted, now: i64) -> Result<Pair, String> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(|e| e.to_string())?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key).map_err(|e| e.to_string())?;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(wanted.names.to_vec()).map_err(|e| e.to_string())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, wanted.organisation);
    name.push(DnType::CommonName, wanted.names[0].clone());
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Mutual TLS: the same certificate serves and, towards partners, authenticates.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = time(now - 300)?;
    params.not_after = time(now + wanted.lifetime_seconds)?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// What matters of a stored certificate.
pub struct Facts {
    pub is_ca: bool,
    pub not_after: i64,
    pub subject: String,
    pub issuer: String,
    pub dns_names: Vec<String>,
}

pub fn read(pem: &str) -> Option<Facts> {
    let (_, pem) = parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Facts {
        is_ca: cert.is_ca(),
        not_after: cert.validity().not_after.timestamp(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        dns_names,
    })
}

/// A Go-style duration of hours, minutes and seconds ("2160h", "1h30m") in
/// seconds; the CRD's CEL rule admits only this form.
pub fn duration_seconds(text: &str) -> Result<i64, String> {
    let mut total = 0i64;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' if !number.is_empty() => {
                let n: i64 = number
                    .parse()
                    .map_err(|_| format!("{text:?} is too large"))?;
                let unit = match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                total = n
                    .checked_mul(unit)
                    .and_then(|v| total.checked_add(v))
                    .ok_or_else(|| format!("{text:?} is too large"))?;
                number.clear();
            }
            _ => return Err(format!("{text:?} is not a duration such as 2160h or 90m")),
        }
    }
    if !number.is_empty() || total == 0 {
        return Err(format!("{text:?} is not a duration such as 2160h or 90m"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;
    const NOW: i64 = 1_800_000_000;

    fn names() -> Vec<String> {
        vec!["ws.ns.entente.local".into(), "ws-federation.ns.svc".into()]
    }

    fn wanted(names: &[String]) -> Wanted<'_> {
        Wanted {
            names,
            organisation: "Nation A",
            lifetime_seconds: 90 * DAY,
            renew_before_seconds: 30 * DAY,
        }
    }

    #[test]
    fn first_issue_makes_a_ca_and_a_certificate_it_signed() {
        let names = names();
        let issued = ensure(None, None, &wanted(&names), NOW).unwrap();
        assert!(issued.new_ca && issued.new_server);
        let ca = read(&issued.ca.cert).unwrap();
        let server = read(&issued.server.cert).unwrap();
        assert!(ca.is_ca && !server.is_ca);
        assert_eq!(server.issuer, ca.subject);
        assert_eq!(server.dns_names, names);
        assert_eq!(issued.server_not_after, server.not_after);
        assert!((server.not_after - (NOW + 90 * DAY)).abs() <= 1);
    }

    #[test]
    fn good_certificates_are_kept() {
        let names = names();
        let first = ensure(None, None, &wanted(&names), NOW).unwrap();
        let again = ensure(
            Some(first.ca.clone()),
            Some(first.server.clone()),
            &wanted(&names),
            NOW + DAY,
        )
        .unwrap();
        assert!(!again.new_ca && !again.new_server);
        assert_eq!(again.server, first.server);
    }

    #[test]
    fn a_certificate_inside_the_renewal_window_is_replaced_by_the_same_ca() {
        let names = names();
        let first = ensure(None, None, &wanted(&names), NOW).unwrap();
        let later = NOW + 61 * DAY; // 29 days left, renew 30 days before
        let renewed = ensure(
            Some(first.ca.clone()),
            Some(first.server.clone()),
            &wanted(&names),
            later,
        )
        .unwrap();
        assert!(!renewed.new_ca && renewed.new_server);
        assert_eq!(renewed.ca, first.ca);
        assert!(renewed.server_not_after > first.server_not_after);
    }

    #[test]
    fn new_names_or_garbage_get_a_new_certificate() {
        let names = names();
        let first = ensure(None, None, &wanted(&names), NOW).unwrap();
        let other = vec!["other.ns.entente.local".to_string()];
        let renamed = ensure(
            Some(first.ca.clone()),
            Some(first.server.clone()),
            &wanted(&other),
            NOW,
        )
        .unwrap();
        assert!(renamed.new_server && !renamed.new_ca);
        assert_eq!(read(&renamed.server.cert).unwrap().dns_names, other);
        let garbage = Pair {
            cert: "not a certificate".into(),
            key: "nor a key".into(),
        };
        let replaced = ensure(Some(garbage.clone()), Some(garbage), &wanted(&names), NOW).unwrap();
        assert!(replaced.new_ca && replaced.new_server);
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration_seconds("2160h"), Ok(2160 * 3600));
        assert_eq!(duration_seconds("1h30m5s"), Ok(5405));
        assert!(duration_seconds("").is_err());
        assert!(duration_seconds("10").is_err());
        assert!(duration_seconds("3d").is_err());
        assert!(duration_seconds("99999999999999999999h").is_err());
    }
}
