//! Subjects with several organizations (groups), which rcgen 0.14 cannot express: its `DistinguishedName`
//! keeps one value per attribute type (rustls/rcgen#418). Kubernetes reads every `O` of a client
//! certificate as a group, so a user in two groups needs two `O` attributes.
//!
//! rcgen issues the certificate as usual; the subject is then replaced in the to-be-signed part and the
//! result re-signed with the same CA key and algorithm. Everything else (serial, dates, extensions,
//! signature algorithm identifiers) is copied byte for byte.

use rcgen::SigningKey;

/// id-at-commonName (2.5.4.3).
const OID_CN: [u8; 3] = [0x55, 0x04, 0x03];
/// id-at-organizationName (2.5.4.10).
const OID_O: [u8; 3] = [0x55, 0x04, 0x0a];

/// DER `Name` with one RDN per organization, then the common name: the order Go's `pkix.Name` writes,
/// so our certificates print like kubeadm's (`O = system:masters, CN = system:admin`).
pub(crate) fn encode_subject(cn: &str, orgs: &[String]) -> Vec<u8> {
    let attr = |oid: &[u8], value: &str| {
        let mut seq = tlv(0x06, oid);
        seq.extend(tlv(0x0c, value.as_bytes()));
        tlv(0x31, &tlv(0x30, &seq))
    };
    let mut rdns = Vec::new();
    for org in orgs {
        rdns.extend(attr(&OID_O, org));
    }
    rdns.extend(attr(&OID_CN, cn));
    tlv(0x30, &rdns)
}

/// `cert_der` with its subject replaced by `subject` (a DER `Name`), re-signed by `signer`, which must
/// be the key that signed `cert_der` so that the copied signature algorithm identifiers stay true.
pub(crate) fn replace_subject(cert_der: &[u8], subject: &[u8], signer: &impl SigningKey) -> Result<Vec<u8>, String> {
    let bad = || "rcgen produced a certificate this module cannot walk".to_owned();
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let outer = content(cert_der).ok_or_else(bad)?;
    let tbs_len = element_len(outer).ok_or_else(bad)?;
    let (tbs, rest) = outer.split_at(tbs_len);
    let alg = &rest[..element_len(rest).ok_or_else(bad)?];

    // TBSCertificate ::= SEQUENCE { [0] version, serialNumber, signature, issuer, validity, subject, ... }
    let fields = content(tbs).ok_or_else(bad)?;
    let mut pos = 0;
    let skip = if fields.first() == Some(&0xa0) { 5 } else { 4 };
    for _ in 0..skip {
        pos += element_len(fields.get(pos..).ok_or_else(bad)?).ok_or_else(bad)?;
    }
    let old_subject_len = element_len(fields.get(pos..).ok_or_else(bad)?).ok_or_else(bad)?;
    let mut new_fields = fields[..pos].to_vec();
    new_fields.extend_from_slice(subject);
    new_fields.extend_from_slice(fields.get(pos + old_subject_len..).ok_or_else(bad)?);
    let new_tbs = tlv(0x30, &new_fields);

    let signature = signer.sign(&new_tbs).map_err(|e| format!("cannot sign: {e}"))?;
    let mut bits = vec![0u8]; // no unused bits
    bits.extend(signature);
    let mut cert = new_tbs;
    cert.extend_from_slice(alg);
    cert.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &cert))
}

/// Encodes one DER element.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// (header length, content length) of the DER element at the start of `der`.
fn header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > std::mem::size_of::<usize>() {
        return None;
    }
    let len = der.get(2..2 + n)?.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

/// Total length (header and content) of the DER element at the start of `der`, if it fits.
fn element_len(der: &[u8]) -> Option<usize> {
    let (h, l) = header(der)?;
    let total = h.checked_add(l)?;
    (total <= der.len()).then_some(total)
}

/// The content of the DER element at the start of `der`.
fn content(der: &[u8]) -> Option<&[u8]> {
    let (h, l) = header(der)?;
    der.get(h..h.checked_add(l)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let el = tlv(0x04, &vec![7u8; len]);
            assert_eq!(element_len(&el), Some(el.len()));
            assert_eq!(content(&el).map(<[u8]>::len), Some(len));
        }
        assert_eq!(element_len(&[0x30, 0x05, 0x00]), None, "truncated");
    }

    #[test]
    fn subject_parses_back_with_every_organization() {
        use x509_parser::prelude::FromDer;
        let der = encode_subject("alice", &["dev".into(), "ops".into(), "system:authenticated".into()]);
        let (rest, name) = x509_parser::x509::X509Name::from_der(&der).expect("name");
        assert!(rest.is_empty());
        let orgs: Vec<&str> = name.iter_organization().map(|a| a.as_str().expect("utf8")).collect();
        assert_eq!(orgs, ["dev", "ops", "system:authenticated"]);
        assert_eq!(name.iter_common_name().next().map(|a| a.as_str().expect("utf8")), Some("alice"));
    }
}
