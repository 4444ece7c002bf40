//! Subject distinguished names (RFC 5280 §4.1.2.4, §4.1.2.6) as a typed
//! view, and the DirectoryString decoding shared by names and PKCS#9
//! attributes (RFC 5280 §4.1.2.4, RFC 2985 §5.4.1).
//!
//! Only the attributes a device certificate may carry are typed:
//! commonName, organizationName, organizationalUnitName, countryName,
//! stateOrProvinceName, localityName, serialNumber and emailAddress
//! (RFC 5280 §4.1.2.4, Appendix A.1; emailAddress from PKCS#9, RFC 2985
//! §5.2.1). Other attributes are not dropped silently: their OIDs are kept
//! in [`SubjectDn::unknown`] so a profile that copies the subject from a
//! CSR can refuse it rather than issue a different name than asked for.

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Tag, Tagged};
use rcgen::{DistinguishedName, DnType, DnValue};
use x509_cert::name::Name;

/// A subject attribute type ironseal understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnAttribute {
    /// commonName, 2.5.4.3 (ub-common-name 64).
    CommonName,
    /// organizationName, 2.5.4.10 (ub-organization-name 64).
    Organization,
    /// organizationalUnitName, 2.5.4.11 (ub-organizational-unit-name 64).
    OrganizationalUnit,
    /// countryName, 2.5.4.6: two-letter ISO 3166 code, PrintableString.
    Country,
    /// stateOrProvinceName, 2.5.4.8 (ub-state-name 128).
    StateOrProvince,
    /// localityName, 2.5.4.7 (ub-locality-name 128).
    Locality,
    /// serialNumber, 2.5.4.5: PrintableString (ub-serial-number 64).
    SerialNumber,
    /// emailAddress, 1.2.840.113549.1.9.1 (RFC 2985 §5.2.1): IA5String
    /// (ub-emailaddress-length 255). Subject to rfc822Name constraints
    /// (RFC 5280 §4.2.1.10).
    EmailAddress,
}

const ALL: [DnAttribute; 8] = [
    DnAttribute::CommonName,
    DnAttribute::Organization,
    DnAttribute::OrganizationalUnit,
    DnAttribute::Country,
    DnAttribute::StateOrProvince,
    DnAttribute::Locality,
    DnAttribute::SerialNumber,
    DnAttribute::EmailAddress,
];

impl DnAttribute {
    /// The attribute type OID.
    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            DnAttribute::CommonName => "2.5.4.3",
            DnAttribute::Organization => "2.5.4.10",
            DnAttribute::OrganizationalUnit => "2.5.4.11",
            DnAttribute::Country => "2.5.4.6",
            DnAttribute::StateOrProvince => "2.5.4.8",
            DnAttribute::Locality => "2.5.4.7",
            DnAttribute::SerialNumber => "2.5.4.5",
            DnAttribute::EmailAddress => "1.2.840.113549.1.9.1",
        })
    }

    /// The attribute for `oid`, if typed.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<DnAttribute> {
        ALL.into_iter().find(|a| a.oid() == *oid)
    }

    /// The short name used in messages (`CN`, `O`, … as in RFC 4514).
    pub fn short_name(self) -> &'static str {
        match self {
            DnAttribute::CommonName => "CN",
            DnAttribute::Organization => "O",
            DnAttribute::OrganizationalUnit => "OU",
            DnAttribute::Country => "C",
            DnAttribute::StateOrProvince => "ST",
            DnAttribute::Locality => "L",
            DnAttribute::SerialNumber => "serialNumber",
            DnAttribute::EmailAddress => "emailAddress",
        }
    }

    /// Upper bound on the value length in characters (RFC 5280 Appendix A.1).
    pub fn max_len(self) -> usize {
        match self {
            DnAttribute::Country => 2,
            DnAttribute::StateOrProvince | DnAttribute::Locality => 128,
            DnAttribute::EmailAddress => 255,
            _ => 64,
        }
    }

    fn rcgen_type(self) -> DnType {
        match self {
            DnAttribute::CommonName => DnType::CommonName,
            DnAttribute::Organization => DnType::OrganizationName,
            DnAttribute::OrganizationalUnit => DnType::OrganizationalUnitName,
            DnAttribute::Country => DnType::CountryName,
            DnAttribute::StateOrProvince => DnType::StateOrProvinceName,
            DnAttribute::Locality => DnType::LocalityName,
            DnAttribute::SerialNumber => DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnAttribute::EmailAddress => DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
        }
    }
}

/// A subject DN as typed attributes, in the order they appear (multi-valued
/// RDNs flattened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectDn {
    /// The typed attributes and their decoded values.
    pub attributes: Vec<(DnAttribute, String)>,
    /// OIDs of attributes that are not typed (kept out of `attributes`).
    pub unknown: Vec<ObjectIdentifier>,
}

impl SubjectDn {
    /// A subject with only a commonName.
    pub fn common_name_only(cn: &str) -> SubjectDn {
        SubjectDn {
            attributes: vec![(DnAttribute::CommonName, cn.to_string())],
            unknown: Vec::new(),
        }
    }

    /// The first value of `attr`.
    pub fn get(&self, attr: DnAttribute) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// The first commonName.
    pub fn common_name(&self) -> Option<&str> {
        self.get(DnAttribute::CommonName)
    }

    /// Whether the DN has no attribute at all (typed or not).
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.unknown.is_empty()
    }

    /// Decodes `name`. Values must be DirectoryStrings (or IA5String for
    /// emailAddress); see [`directory_string`].
    pub(crate) fn from_name(name: &Name) -> Result<SubjectDn, String> {
        let mut out = SubjectDn::default();
        for atv in name.iter() {
            match DnAttribute::from_oid(&atv.oid) {
                Some(a) => {
                    let v = directory_string(atv.value.to_ref())
                        .map_err(|e| format!("subject {}: {e}", a.short_name()))?;
                    out.attributes.push((a, v));
                }
                None => out.unknown.push(atv.oid),
            }
        }
        Ok(out)
    }

    /// The DN as rcgen encodes it: countryName and serialNumber as
    /// PrintableString, emailAddress as IA5String (RFC 5280 Appendix A.1),
    /// everything else UTF8String (RFC 5280 §4.1.2.4). Refuses unknown
    /// attributes, repeated attribute types (rcgen holds one value per
    /// type), empty or overlong values and values the required string type
    /// cannot hold.
    pub(crate) fn to_rcgen(&self) -> Result<DistinguishedName, String> {
        if let Some(oid) = self.unknown.first() {
            return Err(format!("unsupported subject attribute {oid}"));
        }
        let mut dn = DistinguishedName::new();
        let mut seen: Vec<DnAttribute> = Vec::new();
        for (a, v) in &self.attributes {
            let name = a.short_name();
            if seen.contains(a) {
                return Err(format!("subject {name} appears more than once"));
            }
            seen.push(*a);
            if v.is_empty() || v.chars().count() > a.max_len() {
                return Err(format!(
                    "subject {name} must have 1 to {} characters",
                    a.max_len()
                ));
            }
            let value = match a {
                DnAttribute::Country | DnAttribute::SerialNumber => DnValue::PrintableString(
                    v.as_str()
                        .try_into()
                        .map_err(|_| format!("subject {name} must be a PrintableString"))?,
                ),
                DnAttribute::EmailAddress => DnValue::Ia5String(
                    v.as_str()
                        .try_into()
                        .map_err(|_| format!("subject {name} must be an IA5String"))?,
                ),
                _ => DnValue::Utf8String(v.clone()),
            };
            dn.push(a.rcgen_type(), value);
        }
        Ok(dn)
    }
}

fn printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// Decodes a DirectoryString (RFC 5280 §4.1.2.4: teletexString,
/// printableString, bmpString, utf8String; universalString is not supported
/// by the DER library and refused) or an IA5String (PKCS#9 emailAddress,
/// RFC 2985 §5.2.1). TeletexString is read as ISO 8859-1, as deployed
/// software writes it. Control characters are refused.
pub fn directory_string(v: AnyRef<'_>) -> Result<String, String> {
    let b = v.value();
    let s = match v.tag() {
        Tag::Utf8String => {
            String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8".to_string())?
        }
        Tag::PrintableString => {
            let s = String::from_utf8(b.to_vec()).map_err(|_| "invalid PrintableString")?;
            if !s.chars().all(printable) {
                return Err("invalid PrintableString character".into());
            }
            s
        }
        Tag::Ia5String => {
            if !b.is_ascii() {
                return Err("invalid IA5String".into());
            }
            String::from_utf8(b.to_vec()).map_err(|_| "invalid IA5String")?
        }
        Tag::TeletexString => b.iter().map(|&c| char::from(c)).collect(),
        Tag::BmpString => {
            if b.len() % 2 != 0 {
                return Err("BMPString of odd length".into());
            }
            let units = b.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| "invalid BMPString")?
        }
        t => return Err(format!("unsupported string type {t}")),
    };
    if s.chars().any(char::is_control) {
        return Err("control character in string".into());
    }
    Ok(s)
}
